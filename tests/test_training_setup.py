"""The pieces of train.py that need no training: schedules, run folders, hyperparameters, env resolution."""

from __future__ import annotations

import re
import warnings

import pytest
import yaml
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import NStepReplayBuffer

from agents.training.algorithm import load_model
from agents.training.config import RunConfig
from agents.training.experiment import continued_config, next_run_dir, prepare, training_callbacks
from agents.training.hyperparameters import ALGORITHMS, _schedule, algorithm_kwargs, load_hyperparams
from agents.training.market import env_config
from mm_env.sb3_vec_env import MarketMakingVecEnv


def test_linear_schedule_decays_from_the_start_value_to_zero():
    rate = _schedule("lin_3e-4")
    assert rate(1.0) == pytest.approx(3e-4)
    assert rate(0.5) == pytest.approx(1.5e-4)
    assert rate(0.0) == 0.0
    assert _schedule(1e-3) == 1e-3


def test_restart_schedule_has_falling_peaks_and_decays_within_each_cycle():
    rate = _schedule("restarts_1e-3_4")
    # Progress remaining p: cycle k covers done = 1 - p in [k/4, (k+1)/4) and decays from 1e-3/(k+1) to 0.
    assert rate(1.0) == pytest.approx(1e-3)
    assert rate(1 - 0.125) == pytest.approx(0.5e-3)  # halfway through the first cycle
    assert rate(1 - 0.25) == pytest.approx(0.5e-3)  # the second cycle starts at 1e-3 / 2
    assert rate(1 - 0.5) == pytest.approx(1e-3 / 3)
    assert rate(1 - 0.875) == pytest.approx(1e-3 / 4 / 2)
    assert rate(0.0) == pytest.approx(0.0)


@pytest.mark.parametrize("text", ["lin_1e-3", "restarts_1e-3_4"])
def test_schedules_stay_at_zero_when_the_last_rollout_overshoots_the_budget(text):
    # SB3 collects whole rollouts: 5,005,312 steps of a 5,000,000 budget give a progress remaining of -0.00106.
    rate = _schedule(text)
    assert rate(1.0 - 5_005_312 / 5_000_000) == 0.0


@pytest.mark.parametrize("text", ["lin_", "lin_x", "restarts_1e-3", "restarts_1e-3_x", "cosine_1e-3", "fast"])
def test_unknown_schedules_are_rejected(text):
    with pytest.raises(ValueError, match="learning rate"):
        _schedule(text)


def test_run_folders_count_up_and_never_overwrite(tmp_path):
    first = next_run_dir(tmp_path, "ppo", "mm_env/MarketMaking-v0")
    second = next_run_dir(tmp_path, "ppo", "mm_env/MarketMaking-v0")
    assert (first.name, second.name) == ("ppo_MarketMaking-v0_1", "ppo_MarketMaking-v0_2")
    (tmp_path / "ppo_MarketMaking-v0_7").mkdir()
    (tmp_path / "ppo_MarketMaking-v0_x").mkdir()
    assert next_run_dir(tmp_path, "ppo", "mm_env/MarketMaking-v0").name == "ppo_MarketMaking-v0_8"
    assert next_run_dir(tmp_path, "sac", "mm_env:mm_env/ArticleMarketMaker-v0").name == "sac_ArticleMarketMaker-v0_1"


def test_hyperparameters_fall_back_to_the_default_entry_and_take_overrides(tmp_path):
    (tmp_path / "ppo.yml").write_text(yaml.safe_dump({"default": {"n_envs": 4, "gamma": 0.9}, "x/Y-v0": {"n_envs": 2}}))
    assert load_hyperparams("ppo", "x/Y-v0", {}, tmp_path) == {"n_envs": 2}
    assert load_hyperparams("ppo", "other", {"gamma": 0.5}, tmp_path) == {"n_envs": 4, "gamma": 0.5}
    with pytest.raises(ValueError, match="no hyperparameter file"):
        load_hyperparams("sac", "x/Y-v0", {}, tmp_path)


def test_algorithm_arguments_are_checked_against_the_algorithm():
    kwargs = algorithm_kwargs("td3", {"n_envs": 8, "noise_type": "normal", "noise_std": 0.2, "batch_size": 64}, 2)
    assert kwargs["batch_size"] == 64 and "n_envs" not in kwargs
    assert kwargs["action_noise"]().shape == (2,)
    with pytest.raises(ValueError, match="unknown td3 hyperparameters"):
        algorithm_kwargs("td3", {"clip_range": 0.2}, 2)
    with pytest.raises(ValueError, match="noise_type"):
        algorithm_kwargs("td3", {"noise_type": "ornstein"}, 2)


@pytest.mark.parametrize(
    "algo, extra, used", [("sac", {}, "sac"), ("td3", {}, "td3"), ("ppo", {"use_sde": True}, "ppo with use_sde")]
)
def test_a_log_std_schedule_is_refused_where_there_is_no_learned_log_std(algo, extra, used):
    with pytest.raises(ValueError, match=f"log_std_schedule is for PPO and A2C without use_sde, not {used}$"):
        algorithm_kwargs(algo, {"log_std_schedule": [-1.0, -3.0], **extra}, 2)


def test_a_log_std_schedule_of_none_leaves_the_log_std_learned_for_any_algorithm():
    assert training_callbacks({"log_std_schedule": None}) == []
    assert "log_std_schedule" not in algorithm_kwargs("sac", {"log_std_schedule": None}, 2)


def test_a_log_std_schedule_sets_the_noise_before_each_rollout_and_the_updates_leave_it():
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.training.callbacks import LogStdSchedule

    seen = []

    class Record(BaseCallback):  # runs after the schedule, at the start of each rollout and after the updates
        def _on_rollout_start(self) -> None:
            seen.append(float(self.model.policy.log_std[0]))

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            seen.append(float(self.model.policy.log_std[0]))

    model = PPO("MlpPolicy", MarketMakingVecEnv(4), n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(4 * 64 * 4, callback=[LogStdSchedule(-1.0, -3.0), Record()])
    # Four rollouts of 256 steps out of 1,024: they start at progress 0, 1/4, 1/2 and 3/4 of the run, and the last
    # updates leave the value of the last rollout.
    assert seen == pytest.approx([-1.0, -1.5, -2.0, -2.5, -2.5])
    assert not model.policy.log_std.requires_grad


def test_env_config_resolves_presets_overrides_and_features():
    config = env_config("mm_env/MarketMaking-v0", {"preset": "easy", "T": 50})
    assert (config.params.lam, config.params.T, config.features, config.normalize_actions) == (
        0.002,
        50,
        ("inventory", "time_left"),
        True,
    )
    # Adaptive traders: the default observation carries the last trade's side, so it stays Markov.
    assert env_config("mm_env/MarketMaking-v0", {"preset": "momentum"}).features == (
        "inventory",
        "time_left",
        "last_side",
    )
    # Any order of features works: policies read the state, learned agents their own observations.
    assert env_config("mm_env/MarketMaking-v0", {"observation_features": ["time_left", "inventory"]}).features == (
        "time_left",
        "inventory",
    )
    with pytest.raises(ValueError, match="observation feature"):
        env_config("mm_env/MarketMaking-v0", {"observation_features": ["inventory", "time_left", "nope"]})
    with pytest.raises(ValueError, match="not a registered"):
        env_config("mm_env/Nope-v0", {})
    with pytest.raises(ValueError, match="lam=-1"):
        env_config("mm_env/MarketMaking-v0", {"lam": -1})


def test_prepare_resolves_budgets_from_the_hyperparameters():
    prepared = prepare(RunConfig(algo="ppo", timesteps=None, eval_freq=None))
    assert prepared.n_envs == 32 and prepared.timesteps == 5_000_000 and prepared.eval_freq == 500_000
    with pytest.raises(ValueError, match="article mode"):
        prepare(RunConfig(env_id="mm_env/ArticleMarketMaker-v0"))


def test_an_entrys_env_kwargs_are_defaults_that_the_command_line_overrides_key_by_key():
    td3 = load_hyperparams("td3", "mm_env/MarketMaking-v0", {})
    assert td3["env_kwargs"] == {"observation_features": ["inventory"]}
    prepared = prepare(RunConfig(algo="td3", env_kwargs={"lam": 0.004}))
    # What config.yaml records:
    assert prepared.config.env_kwargs == {"observation_features": ["inventory"], "lam": 0.004}
    assert prepared.family.config.features == ("inventory",) and prepared.family.params.lam == 0.004
    mine = prepare(RunConfig(algo="td3", env_kwargs={"observation_features": ["inventory", "time_left"]}))
    assert mine.family.config.features == ("inventory", "time_left")
    assert prepare(RunConfig(algo="ppo")).config.env_kwargs == {}  # an entry without env_kwargs adds none
    # A saved run's own entry (--continue-from) is read, not the shipped file.
    own = {**td3, "env_kwargs": {"observation_features": ["time_left"]}}
    continued = prepare(RunConfig(algo="td3", hyperparams=own, hyperparams_complete=True))
    assert continued.family.config.features == ("time_left",)
    with pytest.raises(ValueError, match=r"env_kwargs=\['lam'\] is invalid: must be a dict"):
        prepare(RunConfig(algo="td3", hyperparams={"env_kwargs": ["lam"]}))
    with pytest.raises(ValueError, match="'nope' is not an environment keyword"):
        prepare(RunConfig(algo="td3", hyperparams={"env_kwargs": {"nope": 1}}))


def test_continued_config_takes_the_saved_run_and_only_run_level_changes(tmp_path):
    saved = {"algo": "sac", "env_id": "mm_env/MarketMaking-v0", "env_kwargs": {"lam": 0.003}, "seed": 4, "n_envs": 8}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**saved, "params": {}, "versions": {}}))
    config = continued_config(tmp_path, timesteps=1000)
    assert (config.algo, config.env_kwargs, config.seed, config.n_envs, config.timesteps) == (
        "sac",
        {"lam": 0.003},
        4,
        8,
        1000,
    )


def test_a_continued_run_uses_its_own_hyperparameters_and_reads_no_file_outside_its_folder(tmp_path, monkeypatch):
    own = {**load_hyperparams("ppo", "mm_env/MarketMaking-v0", {}), "n_steps": 64, "n_epochs": 3}
    saved = {"algo": "ppo", "env_id": "mm_env/MarketMaking-v0", "seed": 1, "hyperparams": own}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**saved, "params": {}, "versions": {}}))

    def no_file(*args, **kwargs):
        raise AssertionError("a continued run read the shipped hyperparameter file")

    monkeypatch.setattr("agents.training.config.load_hyperparams", no_file)
    prepared = prepare(continued_config(tmp_path))
    assert prepared.hyperparams == own
    assert prepared.timesteps == 5_000_000  # the saved entry's n_timesteps


def test_only_learning_rates_and_clip_ranges_are_read_as_schedules():
    kwargs = algorithm_kwargs("sac", {"ent_coef": "auto_0.01", "learning_rate": "lin_1e-3"}, 2)
    assert kwargs["ent_coef"] == "auto_0.01"
    assert kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert algorithm_kwargs("ppo", {"clip_range": "lin_0.2"}, 2)["clip_range"](1.0) == pytest.approx(0.2)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_shipped_hyperparameters_build_their_algorithm(algo):
    hyperparams = load_hyperparams(algo, "mm_env/MarketMaking-v0", {})
    kwargs = algorithm_kwargs(algo, hyperparams, n_actions=2)
    if "action_noise" in kwargs:
        kwargs["action_noise"] = kwargs["action_noise"]()
    env = MarketMakingVecEnv(hyperparams["n_envs"], **hyperparams.get("env_kwargs", {}))
    model = ALGORITHMS[algo](hyperparams["policy"], env, device="cpu", **kwargs)
    assert model.gamma == hyperparams["gamma"]


def test_an_n_step_model_reloads_with_its_n_step_buffer_and_no_warning(tmp_path):
    model = SAC("MlpPolicy", MarketMakingVecEnv(2), n_steps=3, buffer_size=100, device="cpu")
    model.save(tmp_path / "model.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = MarketMakingVecEnv(2)
        hyperparams = {"n_steps": 3, "buffer_size": 100}
        path = tmp_path / "model.zip"
        loaded = load_model("sac", path, hyperparams, env.observation_space, env.action_space, env=env, device="cpu")
    assert loaded.replay_buffer_class is NStepReplayBuffer
    assert loaded.replay_buffer_kwargs == {"n_steps": 3, "gamma": 0.99}
    loaded.learn(64)  # the reloaded buffer fills and trains with n-step returns
    assert isinstance(loaded.replay_buffer, NStepReplayBuffer) and loaded.replay_buffer.n_steps == 3


def test_command_line_values_are_literals_and_true_false_in_any_case_are_booleans():
    from agents.cli.options import parse_key_values

    parsed = parse_key_values(["a=0.5", "b=[1, 2]", "c=false", "d=TRUE", "e=False", "f=word", "g=10**3"])
    assert parsed == {"a": 0.5, "b": [1, 2], "c": False, "d": True, "e": False, "f": "word", "g": "10**3"}


def test_a_bracketed_list_of_bare_words_on_the_command_line_is_a_list_of_strings():
    from agents.cli.options import parse_key_values

    parsed = parse_key_values(
        ["features=[inventory,time_left]", "mixed=[1, x]", "quoted=['a', b]", "empty=[]", "flags=[true,FALSE]"]
    )
    assert parsed == {
        "features": ["inventory", "time_left"],
        "mixed": [1, "x"],
        "quoted": ["a", "b"],
        "empty": [],
        "flags": [True, False],  # the same words as on their own
    }


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("n_steps", 0, "an integer >= 1"),
        ("n_steps", 2.5, "an integer >= 1"),
        ("batch_size", "abc", "an integer >= 2"),
        ("gamma", 1.5, "a number in [0, 1]"),
        ("gae_lambda", float("nan"), "a number in [0, 1]"),
        ("learning_rate", 0, "a number > 0, lin_X"),
        ("learning_rate", "lin_-1e-3", "a number > 0, lin_X"),
        ("clip_range", "lin_abc", "a number > 0, lin_X"),
        ("normalize", "yes", "True, False or a dict"),
        ("normalize", {"norm_obs": False, "gamma": 2.0}, "gamma: a number in (0, 1]"),
        ("normalize", {"unknown": True}, "True, False or a dict"),
        ("ent_coef", -0.1, "'auto' or 'auto_X'"),
        ("gradient_steps", 0, "or -1"),
        ("train_freq", [1, "minute"], "[n, 'episode']"),
        ("use_sde", "no", "True or False"),
        ("policy_kwargs", "dict(net_arch=[8])", "a dict"),
        ("log_std_schedule", -1.0, "two numbers [start, end]"),
        ("log_std_schedule", [-1.0, float("inf")], "two numbers [start, end]"),
        ("log_std_schedule", [-1.0, -2.0, -3.0], "two numbers [start, end]"),
        ("env_kwargs", ["observation_features"], "a dict of environment keywords"),
        ("env_kwargs", {1: 2}, "a dict of environment keywords"),
    ],
)
def test_hyperparameter_values_are_checked_with_what_is_allowed(key, value, allowed):
    from agents.training.hyperparameters import check_hyperparams

    with pytest.raises(
        ValueError, match=re.escape(f"{key}={value!r} is invalid: must be ") + ".*" + re.escape(allowed)
    ):
        check_hyperparams({key: value})


@pytest.mark.parametrize(
    "good",
    [
        {"gradient_steps": -1, "train_freq": [4, "episode"], "ent_coef": "auto_0.1", "normalize": True},
        {"learning_rate": "restarts_1e-3_10", "clip_range": 0.2, "gamma": 1, "normalize": {"norm_obs": False}},
        {"log_std_schedule": [-1, -4.0]},
        {"log_std_schedule": None},
    ],
)
def test_good_hyperparameter_values_pass(good):
    from agents.training.hyperparameters import check_hyperparams

    check_hyperparams(good)


def test_models_whose_exact_tables_would_not_fit_in_memory_are_refused_before_anything_starts():
    from agents.exact.dp import solve_dp, unsolvable_reason

    big = {"T": 10**12}
    with pytest.raises(ValueError, match="the exact tables would take .* GiB"):
        prepare(RunConfig(env_kwargs=big))
    params = env_config("mm_env/MarketMaking-v0", big).params
    assert "GiB" in unsolvable_reason(params)
    with pytest.raises(ValueError, match="GiB"):
        solve_dp(params)
    assert unsolvable_reason(env_config("mm_env/MarketMaking-v0", {}).params) is None


@pytest.mark.filterwarnings("ignore:rich is experimental")
def test_the_progress_bar_ends_at_the_budget_when_the_last_rollout_overshoots_it():
    from stable_baselines3 import PPO

    from agents.training.callbacks import ProgressBar

    model = PPO("MlpPolicy", MarketMakingVecEnv(3, T=20), n_steps=32, batch_size=48, n_epochs=1, device="cpu")
    bar = ProgressBar()
    model.learn(100, callback=bar)  # two rollouts of 3 x 32 steps: 192 steps for a budget of 100
    assert model.num_timesteps == 192 and bar.pbar.n == bar.pbar.total == 100


def test_env_kwargs_read_a_file_of_keywords_that_later_items_override(tmp_path):
    from agents.cli.options import parse_key_values

    model = tmp_path / "model.json"
    model.write_text('{"pi": 0.06, "sizes": [1, 2, 29], "size_probs": [0.6, 0.3, 0.1], "lam": 0.0001}')
    parsed = parse_key_values(["T=50", f"@{model}", "lam=0.002"])
    assert parsed == {"T": 50, "pi": 0.06, "sizes": [1, 2, 29], "size_probs": [0.6, 0.3, 0.1], "lam": 0.002}
    (tmp_path / "list.json").write_text("[1, 2]")
    for item, reason in [
        (f"@{tmp_path / 'missing.json'}", "cannot read the keywords"),
        (f"@{tmp_path / 'list.json'}", "one object of keywords"),
    ]:
        with pytest.raises(ValueError, match=reason) as error:
            parse_key_values([item])
        assert "\n" not in str(error.value) and "--env-kwargs @" in str(error.value)
