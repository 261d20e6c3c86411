"""Run folders read as untrusted data: every value checked, every size bounded, one short line and exit status 2.

One tiny real run is made per module; each case corrupts a copy of it and sends it through ``--evaluate`` and
``--continue-from`` (the command's ``main`` in-process) and through ``load_agents`` (a ``RunFolderError``).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.cli.train import main
from agents.storage import models
from agents.storage.files import DataLimits, read_data_file
from agents.storage.run_folder import MESSAGE_LIMIT, RunFolderError
from agents.sweep.runs import check_finished_run, read_metrics
from agents.training.config import RunConfig
from agents.training.experiment import load_agents, prepare

TINY = ["--timesteps", "256", "--n-envs", "2", "--eval-episodes", "10", "--final-episodes", "20", "--env-kwargs", "T=5"]
LINE = 500  # "mm-env-train: error: " and the path in front of a RunFolderError's message of at most MESSAGE_LIMIT


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    assert main([*TINY, "--no-progress-bar", "--log-dir", str(log_dir)]) == 0
    (run_dir,) = log_dir.iterdir()
    return run_dir


@pytest.fixture
def copy_of(trained, tmp_path) -> Callable[[], Path]:
    def make() -> Path:
        run_dir = tmp_path / f"run_{len(list(tmp_path.iterdir()))}"
        shutil.copytree(trained, run_dir)
        return run_dir

    return make


def refused(run_dir: Path, tmp_path: Path, capsys, expected: str) -> None:
    """``--evaluate`` and ``--continue-from`` exit 2 with one short line holding ``expected``; nothing is written."""
    out = tmp_path / "continued"
    before = sorted(path.name for path in run_dir.iterdir())
    for argv in (
        ["--evaluate", str(run_dir)],
        ["--continue-from", str(run_dir), "--timesteps", "256", "--no-progress-bar", "--log-dir", str(out)],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, (argv, lines)
        assert lines[0].startswith("mm-env-train: error: ") and expected in lines[0], (argv, lines[0])
        assert len(lines[0]) <= LINE, (argv, len(lines[0]))
    assert not out.exists()  # not even an empty --log-dir
    assert sorted(path.name for path in run_dir.iterdir()) == before
    with pytest.raises(RunFolderError):
        load_agents(run_dir, device="cpu")


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    payload = json.loads(path.read_text())
    change(payload)
    path.write_text(json.dumps(payload))


def edit_config(run_dir: Path, change: Callable[[dict], None]) -> None:
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    change(saved)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))


# ---------------------------------------------------------------------------------------------------------------------
# vecnormalize.json


STATISTICS_CASES = {
    "nan variance": (lambda p: p["ret_rms"].update(var=math.nan), "ret_rms has variances nan"),
    "inf variance": (lambda p: p["ret_rms"].update(var=math.inf), "ret_rms has variances inf"),
    "negative variance": (lambda p: p["ret_rms"].update(var=-1.0), "ret_rms has variances -1.0"),
    "nan mean": (lambda p: p["ret_rms"].update(mean=math.nan), "ret_rms has mean nan"),
    "negative count": (lambda p: p["ret_rms"].update(count=-5), "ret_rms has count -5.0"),
    "wrong shape": (lambda p: p["ret_rms"].update(mean=[1.0, 2.0]), "ret_rms has shape (2,)"),
    "nan gamma": (lambda p: p.update(gamma=math.nan), "gamma=nan is not a number in (0, 1]"),
    "gamma above 1": (lambda p: p.update(gamma=1.5), "gamma=1.5 is not a number in (0, 1]"),
    "negative clip_reward": (lambda p: p.update(clip_reward=-1), "clip_reward=-1 is not a number > 0"),
    "zero clip_obs": (lambda p: p.update(clip_obs=0), "clip_obs=0 is not a number > 0"),
    "zero epsilon": (lambda p: p.update(epsilon=0.0), "epsilon=0.0 is not a number in (0, 1]"),
}


@pytest.mark.parametrize("case", sorted(STATISTICS_CASES))
def test_corrupt_statistics_are_refused_with_one_line(copy_of, tmp_path, capsys, case):
    change, expected = STATISTICS_CASES[case]
    run_dir = copy_of()
    edit_json(run_dir / "vecnormalize.json", change)
    refused(run_dir, tmp_path, capsys, f"vecnormalize.json is damaged: {expected}")


def test_statistics_nested_100000_deep_are_refused(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    (run_dir / "vecnormalize.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(run_dir, tmp_path, capsys, "vecnormalize.json is damaged: nested more than 8 deep")


def test_huge_statistics_are_refused_before_reading(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    (run_dir / "vecnormalize.json").write_text(" " * (models.STATISTICS_LIMITS.bytes + 1))
    refused(run_dir, tmp_path, capsys, "1,048,577 bytes, more than the 1,048,576 allowed")


finite = st.floats(allow_nan=False, allow_infinity=False)
anything = st.one_of(st.floats(), st.integers(-(10**30), 10**30), st.booleans(), st.none(), st.text(max_size=5))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["clip_obs", "clip_reward", "gamma", "epsilon", "mean", "var", "count"]), value=anything)
def test_every_statistic_is_checked_against_its_range(trained, tmp_path, key, value):
    path = tmp_path / "vecnormalize.json"
    payload = json.loads((trained / "vecnormalize.json").read_text())
    (payload["ret_rms"] if key in ("mean", "var", "count") else payload)[key] = value
    path.write_text(json.dumps(payload))
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    allowed = {
        "clip_obs": number and value > 0,
        "clip_reward": number and value > 0,
        "gamma": number and 0 < value <= 1,
        "epsilon": number and 0 < value <= 1,
        "mean": number and abs(value) <= 1e100,
        "var": number and 0 <= value <= 1e100,
        "count": number and 0 < value <= 2**53,
    }[key]
    from mm_env.sb3_vec_env import MarketMakingVecEnv

    try:
        normalizer = models.restore_statistics(path, MarketMakingVecEnv(1))
    except RunFolderError as error:
        assert not allowed, (key, value, error)
        assert key in str(error) and len(str(error)) <= MESSAGE_LIMIT
    else:
        assert allowed, (key, value)
        assert math.isfinite(float(normalizer.ret_rms.var)) and normalizer.clip_reward > 0


# ---------------------------------------------------------------------------------------------------------------------
# config.yaml


CONFIG_CASES = {
    "nested feature list": (
        lambda c: c["env_kwargs"].update(observation_features=[["inventory"]]),
        "config.yaml: env_kwargs",  # the market's own check, or: "env_kwargs or params cannot build the env"
    ),
    "unknown policy": (lambda c: c["hyperparams"].update(policy="Foo"), "config.yaml"),
    "seed of the wrong type": (lambda c: c.update(seed="abc"), "seed='abc' is invalid: must be an integer"),
    "seed out of range": (lambda c: c.update(seed=2**40), "config.yaml: --seed 1099511627776 is invalid"),
    "hyperparameter out of range": (lambda c: c["hyperparams"].update(gamma=2), "gamma=2 is invalid"),
    "hyperparameter of the wrong type": (lambda c: c["hyperparams"].update(n_steps="many"), "n_steps='many'"),
    "episodes below 2": (lambda c: c.update(final_episodes=1), "config.yaml: --final-episodes 1 is invalid"),
    "algo a list": (lambda c: c.update(algo=["ppo"]), "algo=['ppo'] is not one of"),
    "hyperparams a list": (lambda c: c.update(hyperparams=[1]), "hyperparams must be a mapping"),
    "a key that is not a name": (lambda c: c["env_kwargs"].update({1: 2}), "env_kwargs has a key 1"),
    "a huge device": (lambda c: c.update(device="x" * 200_000), "config.yaml: device='xxxxxx"),
    "a huge env id": (lambda c: c.update(env_id="x" * 200_000), "config.yaml"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_settings_in_config_yaml_are_refused_with_one_line(copy_of, tmp_path, capsys, case):
    change, expected = CONFIG_CASES[case]
    run_dir = copy_of()
    edit_config(run_dir, change)
    refused(run_dir, tmp_path, capsys, expected)


def alias_bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        name, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_with_a_short_line(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    bomb = alias_bomb()
    assert len(bomb) < 700
    text = (
        (run_dir / "config.yaml")
        .read_text()
        .replace("device: auto\n", "device: auto\nbomb:\n  " + bomb.replace("\n", "\n  "))
    )
    (run_dir / "config.yaml").write_text(text)
    refused(run_dir, tmp_path, capsys, "more than 10,000 values (aliases expanded)")


def test_a_huge_or_deep_config_yaml_is_refused_before_parsing(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    (run_dir / "config.yaml").write_text("algo: ppo\n" + "#" * (256 * 1024))
    refused(run_dir, tmp_path, capsys, "more than the 262,144 allowed")
    (run_dir / "config.yaml").write_text("algo: " + "[" * 100_000 + "]" * 100_000 + "\n")
    refused(run_dir, tmp_path, capsys, "nested more than 32 deep")


def test_aliases_a_run_may_write_are_read(tmp_path):
    # yaml.safe_dump writes an alias where one list appears twice (the entry's env_kwargs in the run's): still read.
    shared = ["inventory"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"env_kwargs": {"f": shared}, "hyperparams": {"f": shared}}))
    assert "*id001" in (tmp_path / "config.yaml").read_text()
    data = read_data_file(tmp_path / "config.yaml", DataLimits(bytes=1024, values=20))
    assert data == {"env_kwargs": {"f": ["inventory"]}, "hyperparams": {"f": ["inventory"]}}


# ---------------------------------------------------------------------------------------------------------------------
# model.zip


def rewrite_zip(path: Path, change: Callable[[dict[str, bytes]], None], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    change(entries)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_a_zip_bomb_is_refused_before_it_is_inflated(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    for prefix in ("", "best_"):
        rewrite_zip(
            run_dir / f"{prefix}model.zip",
            lambda entries: entries.update({"policy.pth": bytes(1024**3)}),
            zipfile.ZIP_DEFLATED,
        )
    assert (run_dir / "model.zip").stat().st_size < 2 * 1024**2
    refused(run_dir, tmp_path, capsys, "would inflate to 1,073,")


def test_the_zip_bomb_never_makes_the_process_large(copy_of):
    # In a fresh process: the refusal leaves its peak resident memory far below the 1 GiB the file inflates to.
    run_dir = copy_of()
    rewrite_zip(run_dir / "model.zip", lambda e: e.update({"policy.pth": bytes(1024**3)}), zipfile.ZIP_DEFLATED)
    (run_dir / "best_model.zip").unlink()
    script = (
        "import resource, sys\n"
        "from agents.training.experiment import load_agents\n"
        "from agents.storage.run_folder import RunFolderError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    load_agents({str(run_dir)!r}, device='cpu')\n"
        "except RunFolderError as error:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    grown_kib, _, message = result.stdout.strip().partition(" ")
    assert "would inflate to" in message, result.stdout + result.stderr
    assert int(grown_kib) < 100 * 1024  # KiB: under 100 MiB grown (the file inflates to 1 GiB)


def test_policy_kwargs_come_from_config_yaml_not_the_zip(copy_of, tmp_path, capsys):
    run_dir = copy_of()

    def bigger_network(entries: dict[str, bytes]) -> None:
        data = json.loads(entries["data"])
        data["policy_kwargs"] = {"net_arch": {"pi": [4096, 4096], "vf": [4096, 4096]}}
        data["n_steps"] = 10**9
        entries["data"] = json.dumps(data).encode()

    rewrite_zip(run_dir / "model.zip", bigger_network)
    final, _ = load_agents(run_dir, device="cpu")[0]
    layers = [
        module.out_features for module in final.model.policy.mlp_extractor.policy_net if hasattr(module, "out_features")
    ]
    assert layers == [64, 64]  # config.yaml's net_arch, not the file's
    assert final.model.n_steps == 256


def test_weights_of_another_network_are_refused_with_one_line(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    edit_config(run_dir, lambda c: c["hyperparams"].update(policy_kwargs={"net_arch": {"pi": [32], "vf": [32]}}))
    refused(run_dir, tmp_path, capsys, "its weights do not fit the network that config.yaml's hyperparameters build")


def test_a_lying_entry_size_is_caught(copy_of, tmp_path, capsys):
    run_dir = copy_of()
    path = run_dir / "model.zip"
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("data")
    # Declare the data entry one byte shorter, in the local header and the central directory alike.
    for offset in range(len(raw) - 4):
        if raw[offset : offset + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
            name_at = offset + (30 if raw[offset + 2] == 3 else 46)
            if raw[name_at : name_at + 4] == b"data":
                size_at = offset + (22 if raw[offset + 2] == 3 else 24)
                raw[size_at : size_at + 4] = (info.file_size - 1).to_bytes(4, "little")
    for prefix in ("", "best_"):
        (run_dir / f"{prefix}model.zip").write_bytes(bytes(raw))
    refused(run_dir, tmp_path, capsys, "model.zip is damaged")


def test_a_sweep_reads_its_runs_within_the_same_limits(copy_of):
    # A sweep reads each finished run's config.yaml (to check its settings) and comparison.json (its figures).
    run_dir = copy_of()
    assert read_metrics(run_dir, "ppo").pct is not None  # the untouched run reads
    (run_dir / "comparison.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunFolderError, match="nested more than 32 deep"):
        read_metrics(run_dir, "ppo")
    (run_dir / "comparison.json").write_text("[]")
    with pytest.raises(RunFolderError, match="comparison.json is not a mapping"):
        read_metrics(run_dir, "ppo")
    (run_dir / "config.yaml").write_text(alias_bomb())
    prepared = prepare(RunConfig(env_kwargs={"T": 5}))
    for read in (lambda: read_metrics(run_dir, "ppo"), lambda: check_finished_run(run_dir, prepared)):
        with pytest.raises(RunFolderError, match="aliases expanded"):
            read()
    (run_dir / "config.yaml").write_text("env_id: 3\n")
    with pytest.raises(RunFolderError, match="env_id=3 is not an environment id"):
        read_metrics(run_dir, "ppo")
