"""Every bad input gets one line naming it, before any work and before any file is written.

Each class of input goes through the commands (in-process ``main(argv)``: exit status 2, one ``error:`` line on stderr
naming the value, no run folder or output file) and through the Python API (``ValueError``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mm_env
from agents.cli import article, competition, evaluate, extensions, train
from agents.cli import sweep as sweep_cli
from agents.cli.options import parse_key_values
from agents.evaluation import tuning
from agents.evaluation.tuning import MAX_TUNING_WORK
from agents.exact.dp import MAX_DP_WORK, evaluate_tables, solve_dp, table_shape
from agents.sweep.spec import MAX_SEEDS, MAX_TRIALS, SweepSpec
from agents.training.config import RunConfig
from agents.training.experiment import prepare
from mm_env.competition import make_competition_params
from mm_env.limits import MAX_EPISODES, MAX_SIMULATED_STEPS, check_seed
from mm_env.model.checks import MAX_MAGNITUDE
from mm_env.presets import make_params

TINY = ["--timesteps", "64", "--n-envs", "2", "--eval-episodes", "2", "--final-episodes", "2", "--env-kwargs", "T=5"]
UNWRITABLE = "/dev/null/out"  # a folder below a file: no one can create it, root included


def refused(capsys, command, argv):
    """Run a command's ``main``; assert exit status 2 and exactly one error line; return that line."""
    with pytest.raises(SystemExit) as exit_info:
        command(argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    assert "Traceback" not in errors[0]
    return errors[0]


# --------------------------------------------------------------------------------------------------------------------
# class 1: values checked before anything runs


@pytest.mark.parametrize(
    ("hyperparam", "named"),
    [
        ("policy=Foo", "policy='Foo'"),
        ("policy_kwargs={'net_arch':'x'}", "policy_kwargs="),
        ("policy_kwargs={'net_arch':[-1]}", "policy_kwargs="),
        ("policy_kwargs=[1]", "policy_kwargs=[1]"),
        ("rollout_buffer_class=Foo", "rollout_buffer_class='Foo'"),
        ("rollout_buffer_kwargs={'foo':1}", "rollout_buffer_kwargs="),
        ("rollout_buffer_kwargs=3", "rollout_buffer_kwargs=3"),
        ("target_kl=abc", "target_kl='abc'"),
        ("target_kl=-1", "target_kl=-1"),
        ("clip_range_vf=abc", "clip_range_vf='abc'"),
        ("log_std_schedule=[1e308,1e308]", "log_std_schedule="),
        ("n_steps=1e12", "n_steps=1000000000000.0"),
    ],
)
def test_bad_hyperparameters_are_refused_before_the_run_folder(hyperparam, named, tmp_path, capsys):
    line = refused(capsys, train.main, [*TINY, "--log-dir", str(tmp_path / "runs"), "--hyperparams", hyperparam])
    assert named in line and "hyperparameter" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--final-episodes", "10000000000000"], "--final-episodes 10000000000000"),
        (["--eval-episodes", "1e13"], "--eval-episodes 10000000000000"),
        (["--seed", "-1"], "--seed -1"),
        (["--seed", str(2**32)], f"--seed {2**32}"),
        (["--device", "cpu:1"], "--device 'cpu:1'"),
        (["--env-kwargs", "lam={{}}"], "lam='{{}}'"),
        (["--env-kwargs", "lam=" + "+".join(["1"] * 20_000)], "--env-kwargs lam="),
        (["--env-kwargs", "lam=" + "[" * 50 + "]" * 50], "--env-kwargs lam="),
        (["--env-kwargs", "sigma=1e300", "reward=mtm"], "sigma=1e+300"),
        (["--env-kwargs", "P0=1e308"], "P0=1e+308"),
        (["--env-kwargs", "T=5", "sizes=[10000000000]"], "sizes="),
    ],
)
def test_bad_counts_devices_and_values_are_refused_by_train(argv, named, tmp_path, capsys):
    line = refused(capsys, train.main, [*TINY, "--log-dir", str(tmp_path / "runs"), *argv])
    assert named in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("command", "argv", "named"),
    [
        (article.main, ["--seed", "-1"], "--seed -1"),
        (article.main, ["--seed", str(2**32)], "--seed 4294967296"),
        (competition.main, ["--seed", "-1"], "--seed -1"),
        (competition.main, ["--episodes", "10000000000000"], "--episodes 10000000000000"),
        (competition.main, ["--episodes", "1"], "--episodes 1"),
        (competition.main, ["--env-kwargs", "tick=1e-310"], "tick=1e-310"),
        (competition.main, ["--env-kwargs", "sigma=1e300", "reward=mtm"], "sigma=1e+300"),
        (evaluate.main, ["--episodes", "1e13"], "--episodes 10000000000000"),
        (evaluate.main, ["--seed", "-1"], "--seed -1"),
        (evaluate.main, ["--env-kwargs", "lam={{}}"], "lam='{{}}'"),
        (evaluate.main, ["--env-kwargs", "tick=1e-310"], "'tick'"),
    ],
)
def test_bad_counts_and_values_are_refused_by_every_command(command, argv, named, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, command, [*argv, "--out", str(tmp_path / "out")])
    assert named in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_the_python_api_raises_value_error_for_the_same_values():
    for kwargs in ({"tick": 1e-310}, {"tick": 5e-324}, {"sigma": 1e300}, {"tick": math.inf}, {"T": 10**16}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            make_competition_params(**kwargs)
    with pytest.raises(ValueError, match="seed=-1"):
        check_seed(-1)
    for final in (1, 10**13):
        with pytest.raises(ValueError, match="--final-episodes"):
            prepare(RunConfig(env_kwargs={"T": 5}, final_episodes=final))
    with pytest.raises(ValueError, match="--seed -1"):
        prepare(RunConfig(env_kwargs={"T": 5}, seed=-1))
    with pytest.raises(ValueError, match="lam"):
        parse_key_values(["lam=" + "1+" * 600 + "1"])
    for features in ([["inventory"]], [3], [None], "inventory", []):
        with pytest.raises(ValueError, match="observation.feature"):
            gym.make(mm_env.MARKET_MAKING_ID, observation_features=features)


@pytest.mark.parametrize("options", ["x", 3, ["reset_mask"], {"unknown": 1}])
def test_reset_options_that_are_not_a_mapping_of_known_keys_are_refused_by_every_front_end(options):
    from mm_env.competition.parallel import CompetitionParallelEnv

    envs = [
        gym.make(mm_env.MARKET_MAKING_ID, T=5),
        gym.make_vec(mm_env.MARKET_MAKING_ID, num_envs=3, T=5),
        gym.make("mm_env/CompetingMarketMakers-v0", T=5),
        gym.make_vec("mm_env/CompetingMarketMakers-v0", num_envs=2, T=5),
        CompetitionParallelEnv(T=5),
    ]
    for env in envs:
        if isinstance(env, CompetitionParallelEnv) and isinstance(options, dict):
            continue  # PettingZoo's convention: any dict (its API test passes keys the env ignores)
        with pytest.raises(ValueError, match="options"):
            env.reset(options=options)
    from mm_env.sb3_vec_env import MarketMakingVecEnv

    venv = MarketMakingVecEnv(num_envs=2, T=5)
    venv.set_options(options if isinstance(options, dict) else None)
    if isinstance(options, dict):
        with pytest.raises(ValueError, match="options"):
            venv.reset()
    # a valid mask still works
    vector = gym.make_vec(mm_env.MARKET_MAKING_ID, num_envs=3, T=5)
    assert vector.reset(options={"reset_mask": np.ones(3, dtype=bool)})[0].shape[0] == 3


NUMERIC_FIELDS = [
    "P0", "delta_min", "delta_max", "pi", "p_buy", "momentum", "informed", "info_jump", "A", "k", "kappa",
    "impact_exponent", "transient_kappa", "transient_decay", "sigma", "jump_prob", "jump_size", "mean_reversion",
    "lam", "alpha", "T", "I_max",
]  # fmt: skip
ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from([1e308, -1e308, 1e-308, 5e-324, 1e9, 1e10, 0.0, -0.0, 0.5]),
    st.integers(min_value=-(10**20), max_value=10**20),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NUMERIC_FIELDS), value=ANY_FLOAT, reward=st.sampled_from(["spread", "mtm"]))
def test_any_number_builds_a_valid_model_or_raises_value_error(name, value, reward):
    base = {"T": 5, "reward": reward} if name != "T" else {"reward": reward}
    try:
        params = make_params(**base, **{name: value})
    except ValueError as error:
        assert name in str(error)
        return
    if params.T > 50:  # a valid long episode: its size is the work checks' business, not the model's
        return
    env = gym.make(mm_env.MARKET_MAKING_ID, params=params)
    env.reset(seed=0)
    for _ in range(params.T):
        obs, reward_value, terminated, _, info = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and math.isfinite(reward_value)
        assert all(math.isfinite(v) for v in info.values() if isinstance(v, float))
    assert terminated


@settings(max_examples=100, deadline=None)
@given(value=ANY_FLOAT)
def test_any_tick_builds_a_valid_game_or_raises_value_error(value):
    try:
        make_competition_params(tick=value, T=5)
    except ValueError as error:
        assert "tick" in str(error)


# --------------------------------------------------------------------------------------------------------------------
# class 2: memory and time checked up front


@pytest.mark.parametrize(
    ("command", "argv", "named"),
    [
        (evaluate.main, ["--env-kwargs", "I_max=100000000"], "GiB"),
        (evaluate.main, ["--env-kwargs", "T=1000000000000"], "GiB"),
        (evaluate.main, ["--env-kwargs", "T=100000", "I_max=5", "--episodes", "100000"], "steps per policy"),
        (evaluate.main, ["--env-kwargs", "T=10000", "I_max=1000", f"sizes={list(range(1, 101))}"], "cells × sizes"),
        (competition.main, ["--env-kwargs", "T=1000000000000"], "GiB"),
        # No exact optimum: the tuning runs Monte Carlo episodes for every candidate.
        (
            evaluate.main,
            ["--episodes", "2", "--env-kwargs", "reward=mtm", "mean_reversion=0.1", "T=100000", "I_max=5"],
            "--no-tuning",
        ),
        (evaluate.main, ["--env-kwargs", "T=20000", "I_max=50"], "tuning the heuristics by exact evaluations"),
    ],
)
def test_models_too_large_to_evaluate_are_refused_at_once(command, argv, named, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, command, [*argv, "--out", str(tmp_path / "out")])
    assert named in line
    assert not (tmp_path / "out").exists()


def test_train_refuses_evaluations_too_long_for_the_model(tmp_path, capsys):
    argv = ["--env-kwargs", "T=300000", "I_max=2", "--final-episodes", "10000", "--log-dir", str(tmp_path / "runs")]
    line = refused(capsys, train.main, argv)
    assert "--final-episodes 10000 is too many for T=300,000" in line and f"{MAX_SIMULATED_STEPS:,}" in line


def test_train_refuses_a_model_whose_tuning_could_take_too_long(tmp_path, capsys):
    episodes = ["--eval-episodes", "2", "--final-episodes", "2"]
    argv = [*episodes, "--env-kwargs", "reward=mtm", "mean_reversion=0.1", "T=1000000", "I_max=5"]
    line = refused(capsys, train.main, [*argv, "--log-dir", str(tmp_path / "runs")])
    assert "tuning the heuristics by Monte Carlo episodes could take" in line and f"{MAX_TUNING_WORK:,}" in line
    assert not (tmp_path / "runs").exists()


def test_the_tuning_bound_holds_and_lets_the_usual_models_through():
    # The bound counts the grid and the most evaluations Nelder-Mead can make; the tuning itself makes fewer.
    counted = []
    original = tuning.expected_returns

    def counting(policies, params):
        counted.append(len(policies))
        return original(policies, params)

    for params in (make_params(T=30), make_params(T=30, reward="mtm", mean_reversion=0.1)):
        tuning.tune_article_rule.cache_clear()
        tuning.tune_linear_skew.cache_clear()
        counted.clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tuning, "expected_returns", counting)
            tuning.best_tuned_heuristic(params)
        exact = tuning.unsolvable_reason(params) is None
        per_candidate = tuning.tuning_work(params) // (2 * (11**2 + 3 + 4 * (400 if exact else 40)))
        assert sum(counted) * per_candidate <= tuning.tuning_work(params)
    for preset in mm_env.PRESETS:
        assert tuning.tuning_problem(make_params(preset)) is None


def test_exact_solvers_refuse_tables_that_would_not_fit():
    many_sizes = make_params(T=10_000, I_max=1_000, sizes=list(range(1, 101)))
    for params in (make_params(I_max=10**8), many_sizes):
        with pytest.raises(ValueError, match="GiB|cells"):
            solve_dp(params)
    params = many_sizes
    assert params.T * table_shape(params)[1] * len(params.flow.sizes) > MAX_DP_WORK
    with pytest.raises(ValueError, match="cells"):
        evaluate_tables(params, np.zeros((1, 1)), np.zeros((1, 1)))


def sweep_data(**changes):
    return {"name": "s", "algos": ["ppo"], "seeds": [0], "timesteps": 64, "n_envs": 2, "eval_episodes": 2,
            "final_episodes": 2, "env_kwargs": {"T": 5}, **changes}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seeds": 100_000_000}, f"at most {MAX_SEEDS:,} seeds"),
        ({"seeds": list(range(MAX_SEEDS + 1))}, f"at most {MAX_SEEDS:,}"),
        ({"grid": {"lam": [i / 1e6 for i in range(100)], "kappa": [i / 1e6 for i in range(101)]}}, f"{MAX_TRIALS:,}"),
        ({"final_episodes": 10**13}, "final_episodes"),
        ({"hyperparams": {"policy": "Foo"}}, "policy='Foo'"),
        ({"hyperparams": {"policy_kwargs": {"net_arch": "x"}}}, "policy_kwargs"),
        ({"device": "cpu:1"}, "device='cpu:1'"),
    ],
)
def test_sweep_files_are_refused_at_once_with_one_line(changes, message):
    start = time.monotonic()
    with pytest.raises(ValueError) as error:
        SweepSpec.from_dict(sweep_data(**changes))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert time.monotonic() - start < 30  # at once: no trial is built (a generous bound on a loaded machine)


def test_a_large_grid_is_validated_in_linear_time():
    grid = {"lam": [round(0.001 + i * 1e-6, 9) for i in range(2_000)]}
    start = time.monotonic()
    spec = SweepSpec.from_dict(sweep_data(grid=grid))
    assert len(spec.trials()) == 2_000
    assert time.monotonic() - start < 15  # was 20 s; most of it is one model check per cell


# --------------------------------------------------------------------------------------------------------------------
# class 3: outputs checked before the work


@pytest.mark.parametrize("command", [article.main, extensions.main, competition.main, evaluate.main])
def test_an_unwritable_out_is_refused_before_the_work(command, capsys):
    start = time.monotonic()
    line = refused(capsys, command, ["--out", UNWRITABLE])
    assert UNWRITABLE in line
    assert time.monotonic() - start < 5  # before the work (the figures and the exact games take longer)


def test_sweep_refuses_an_unwritable_out_before_any_trial(tmp_path, capsys):
    spec = tmp_path / "s.yml"
    spec.write_text("name: s\nalgos: [ppo]\nseeds: [0]\ntimesteps: 64\nn_envs: 2\neval_episodes: 2\n"
                    "final_episodes: 2\nenv_kwargs: {T: 5}\n")  # fmt: skip
    line = refused(capsys, sweep_cli.main, [str(spec), "--out", UNWRITABLE])
    assert UNWRITABLE in line


def test_the_limits_page_states_the_limits_the_code_checks():
    page = (Path(__file__).resolve().parent.parent / "docs" / "when-things-go-wrong.md").read_text(encoding="utf-8")
    assert f"[2, {MAX_EPISODES:,}]" in page and f"at most {MAX_SIMULATED_STEPS:,} steps" in page
    assert f"±{MAX_MAGNITUDE:.0e}".replace("e+0", "e") in page and f"at most {MAX_DP_WORK:,}" in page
    assert f"at most {MAX_TRIALS:,} trials" in page and f"{MAX_SEEDS:,} seeds" in page
    from agents.cli.options import KEYWORDS_FILE_LIMITS
    from mm_env.data.readers import ReadLimits
    from mm_env.data.steps import MAX_STEPS

    assert f"at most {MAX_STEPS:,} steps" in page and f"{ReadLimits().rows:,} rows" in page
    assert ReadLimits().bytes == 2**30 and "1 GiB uncompressed" in page
    assert f"at most {KEYWORDS_FILE_LIMITS.bytes:,} bytes" in page
