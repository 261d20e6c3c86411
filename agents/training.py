"""Training Stable-Baselines3 agents on the batched env, and comparing them with the baselines (the main job)."""

from __future__ import annotations

import copy
import inspect
import json
import math
import platform
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
import yaml
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import HParam, configure
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

import mm_env
from agents.callbacks import MarketMetricsCallback, PolicyEvaluationCallback
from agents.cli import TRAIN_COMMAND
from agents.dp import exact_solution
from agents.env_setup import env_config
from agents.evaluate import PolicyReport, baseline_policies, compare, episode_history, markdown_table, write_report
from agents.plots import episode_figure, policy_figure, save_figure
from agents.sb3_policy import SB3Policy
from agents.tuning import best_tuned_heuristic
from mm_env.config import EnvConfig
from mm_env.sb3_vec_env import MarketMakingVecEnv

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3, "a2c": A2C}
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "leaky_relu": torch.nn.LeakyReLU}
# Keys of a hyperparameter entry that configure the run rather than the algorithm's constructor.
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "noise_type", "noise_std")
SCHEDULED_KEYS = {"learning_rate", "clip_range"}  # values that may name a schedule such as "lin_3e-4"
PERIODIC_EVAL_SEED = 1_000_000  # + the run's seed: the same episodes at every periodic evaluation
FINAL_EVAL_SEED = 2_000_000  # + the run's seed: episodes the agent was never selected on


@dataclass
class RunConfig:
    """Everything that defines a training run (saved as ``config.yaml`` in the run folder)."""

    algo: str = "ppo"
    env_id: str = mm_env.MARKET_MAKING_ID
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    timesteps: int | None = None
    seed: int = 0
    n_envs: int | None = None
    device: str = "auto"
    eval_freq: int | None = None
    eval_episodes: int = 1_000
    final_episodes: int = 10_000
    log_dir: str = "runs"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    # False: ``hyperparams`` override the shipped tuned file; True: they are a whole entry (a saved run's own), so that
    # a saved run continues with exactly its settings and needs no file outside its folder.
    hyperparams_complete: bool = False
    progress_bar: bool = False
    verbose: int = 0


def load_hyperparams(algo: str, env_id: str, overrides: dict[str, Any], directory: Path = HYPERPARAMS_DIR) -> dict:
    """The tuned hyperparameters of ``algo`` for ``env_id`` (or the file's ``default`` entry), with overrides."""
    path = directory / f"{algo}.yml"
    if not path.exists():
        raise ValueError(f"no hyperparameter file {path}")
    entries = yaml.safe_load(path.read_text()) or {}
    entry = entries.get(env_id, entries.get("default"))
    if entry is None:
        raise ValueError(f"{path} has no entry for {env_id!r} and no 'default' entry")
    return {**copy.deepcopy(entry), **overrides}


def _schedule(value: Any) -> Any:
    """Learning-rate schedules by name, as functions of SB3's progress remaining ``p`` (1 at the start, 0 at the end).

    * ``lin_X``: ``X·p``, linear decay to 0 (the RL Zoo's notation);
    * ``restarts_X_N``: ``N`` cycles; cycle ``k = 0 … N−1`` decays linearly from ``X/(k+1)`` to 0 (warm restarts
      with a falling peak: long stretches of small steps settle the quotes precisely, the restarts keep learning).
    """
    if not isinstance(value, str):
        return value
    name, _, rest = value.partition("_")
    try:
        if name == "lin":
            start = float(rest)
            return lambda p: start * p
        if name == "restarts":
            peak_text, _, cycles_text = rest.partition("_")
            peak, cycles = float(peak_text), int(cycles_text)
            return lambda p: _restart_rate(peak, cycles, 1.0 - p)
    except ValueError:
        pass
    raise ValueError(f"learning rate {value!r} is not a number, lin_X or restarts_X_N")


def _restart_rate(peak: float, cycles: int, done: float) -> float:
    cycle = min(int(done * cycles), cycles - 1)
    within = done * cycles - cycle
    return peak / (cycle + 1) * (1.0 - within)


def algorithm_kwargs(algo: str, hyperparams: dict[str, Any], n_actions: int) -> dict[str, Any]:
    """Constructor arguments of the SB3 algorithm from a hyperparameter entry (unknown names raise ValueError)."""
    kwargs = {key: value for key, value in hyperparams.items() if key not in RUN_KEYS}
    for key in SCHEDULED_KEYS & kwargs.keys():
        kwargs[key] = _schedule(kwargs[key])
    managed = {"self", "policy", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}
    accepted = set(inspect.signature(ALGORITHMS[algo].__init__).parameters) - managed
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"unknown {algo} hyperparameters {unknown}; allowed: {sorted(accepted | set(RUN_KEYS))}")
    policy_kwargs = dict(kwargs.pop("policy_kwargs", None) or {})
    if isinstance(policy_kwargs.get("activation_fn"), str):
        name = policy_kwargs["activation_fn"]
        if name not in ACTIVATIONS:
            raise ValueError(f"activation_fn={name!r} is not one of {sorted(ACTIVATIONS)}")
        policy_kwargs["activation_fn"] = ACTIVATIONS[name]
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    noise_type = hyperparams.get("noise_type")
    if noise_type == "normal":
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), hyperparams["noise_std"] * np.ones(n_actions))
    elif noise_type is not None:
        raise ValueError(f"noise_type={noise_type!r} is not supported (use 'normal')")
    return kwargs


def next_run_dir(log_dir: Path, algo: str, env_id: str) -> Path:
    """``runs/<algo>_<env>_<n>`` with ``n`` one more than any existing run of that name (never overwrites)."""
    name = f"{algo}_{env_id.split('/')[-1].split(':')[-1]}"
    pattern = re.compile(rf"^{re.escape(name)}_(\d+)$")
    log_dir.mkdir(parents=True, exist_ok=True)
    number = max((int(m.group(1)) for p in log_dir.iterdir() if (m := pattern.match(p.name))), default=0) + 1
    while True:
        run_dir = log_dir / f"{name}_{number}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:  # another run started at the same moment took this number
            number += 1


def make_training_env(env: EnvConfig, n_envs: int, seed: int, normalize: dict | bool | None) -> VecEnv:
    """The batched SB3 env, monitored, and normalised if the hyperparameters say so."""
    venv: VecEnv = MarketMakingVecEnv(
        n_envs, env.params, observation_features=env.features, normalize_actions=env.normalize_actions
    )
    venv.seed(seed)
    venv = VecMonitor(venv)
    if normalize:
        options = normalize if isinstance(normalize, dict) else {}
        venv = VecNormalize(venv, **options)
    return venv


def _vecnormalize(venv: VecEnv | None) -> VecNormalize | None:
    while venv is not None:
        if isinstance(venv, VecNormalize):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def versions() -> dict[str, str]:
    """Library versions, recorded with every run."""
    return {
        "python": platform.python_version(),
        "numpy": str(np.__version__),
        "torch": str(torch.__version__),
        "gymnasium": gym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


@dataclass(frozen=True)
class PreparedRun:
    """A run whose every setting has been checked, before anything is built or written."""

    config: RunConfig
    env: EnvConfig
    hyperparams: dict[str, Any]
    n_envs: int
    timesteps: int
    eval_freq: int


def prepare(config: RunConfig) -> PreparedRun:
    """Check every setting of a run; any problem raises ``ValueError`` with a message for the command line."""
    if config.algo not in ALGORITHMS:
        raise ValueError(f"--algo {config.algo!r} is not one of {sorted(ALGORITHMS)}")
    env = env_config(config.env_id, config.env_kwargs)
    if not env.params.fill.quotes_matter:
        raise ValueError("article mode has nothing to learn: every order fills whatever the quotes")
    return PreparedRun(config, env, *run_settings(config))


def run_settings(config: RunConfig) -> tuple[dict[str, Any], int, int, int]:
    """The checked hyperparameters, number of envs, budget and evaluation period of a run (``ValueError`` if bad)."""
    if config.algo not in ALGORITHMS:
        raise ValueError(f"--algo {config.algo!r} is not one of {sorted(ALGORITHMS)}")
    if config.hyperparams_complete:
        hyperparams = copy.deepcopy(config.hyperparams)
    else:
        hyperparams = load_hyperparams(config.algo, config.env_id, config.hyperparams)
    algorithm_kwargs(config.algo, hyperparams, n_actions=2)
    n_envs = _count("n_envs", config.n_envs or hyperparams.get("n_envs", 1))
    timesteps = _count("timesteps", config.timesteps or float(hyperparams.get("n_timesteps", 1_000_000)))
    eval_freq = _count("eval_freq", config.eval_freq or max(timesteps // 10, 1))
    if not 0 <= config.seed < 2**32:
        raise ValueError(f"--seed {config.seed} is invalid: must be in [0, 2**32 - 1]")
    try:
        if config.device != "auto":
            torch.device(config.device)
    except RuntimeError as error:
        raise ValueError(f"--device {config.device!r} is invalid: {error}") from None
    return hyperparams, n_envs, timesteps, eval_freq


def _count(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 1 and number == int(number)):
        raise ValueError(f"{name}={value!r} is invalid: must be a positive integer")
    return int(number)


def continued_config(source: Path, **changes: Any) -> RunConfig:
    """The configuration of a saved run, to continue training it (with ``changes`` to the run-level settings)."""
    saved = yaml.safe_load((source / "config.yaml").read_text())
    fields = {name: saved[name] for name in RunConfig.__dataclass_fields__ if name in saved}
    return RunConfig(**{**fields, "hyperparams_complete": True, **changes})


def train(prepared: PreparedRun, continue_from: Path | None = None) -> tuple[Path, bool]:
    """Train an agent, log to TensorBoard, save it, and compare it with the baselines.

    Returns the run folder and whether training was interrupted (Ctrl-C), in which case what was learned is saved
    and the final comparison is skipped.
    """
    config = prepared.config
    model = build_model(prepared, continue_from)
    run_dir, saved = start_run(prepared, continue_from)
    formats = ["tensorboard", "csv"] + (["stdout"] if config.verbose else [])
    model.set_logger(configure(str(run_dir), formats))
    evaluation = evaluation_callback(prepared, model, run_dir)
    print(
        f"training {config.algo.upper()} on {config.env_id} for {prepared.timesteps:,} steps "
        f"({prepared.n_envs} envs); run: {run_dir}"
    )
    interrupted = learn(model, prepared, evaluation, resume=continue_from is not None)
    save_model(model, run_dir)
    if interrupted:
        (run_dir / "evaluations.json").write_text(json.dumps(evaluation.history, indent=2))
        print(f"saved {run_dir / 'model.zip'}; compare it with: {TRAIN_COMMAND} --evaluate {run_dir}")
        return run_dir, True
    evaluation.evaluate()  # the final model, logged like the periodic evaluations
    (run_dir / "evaluations.json").write_text(json.dumps(evaluation.history, indent=2))
    rows, benchmark = final_comparison(
        run_dir, config.final_episodes, FINAL_EVAL_SEED + config.seed, device=config.device
    )
    _log_summary(model, rows, benchmark, saved)
    return run_dir, False


def build_model(prepared: PreparedRun, continue_from: Path | None = None) -> BaseAlgorithm:
    """The training env and the algorithm on it: new, or loaded from a saved run to continue it."""
    config, hyperparams = prepared.config, prepared.hyperparams
    venv = make_training_env(prepared.env, prepared.n_envs, config.seed, hyperparams.get("normalize"))
    return model_on(venv, config, hyperparams, continue_from)


def model_on(
    venv: VecEnv, config: RunConfig, hyperparams: dict[str, Any], continue_from: Path | None = None
) -> BaseAlgorithm:
    """The algorithm on a training env: new, or loaded (with its normalisation statistics) from a saved run."""
    algo_class = ALGORITHMS[config.algo]
    if continue_from is not None:
        stats = continue_from / "vecnormalize.pkl"
        if stats.exists() and isinstance(venv, VecNormalize):
            venv = VecNormalize.load(str(stats), venv.venv)
        model = load_model(algo_class, continue_from / "model.zip", env=venv, device=config.device)
        model.set_random_seed(config.seed)
        return model
    kwargs = algorithm_kwargs(config.algo, hyperparams, n_actions=2)
    policy = hyperparams.get("policy", "MlpPolicy")
    return algo_class(policy, venv, seed=config.seed, device=config.device, verbose=config.verbose, **kwargs)


def start_run(prepared: PreparedRun, continue_from: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """A new run folder with its ``config.yaml``: every setting, the full model parameters and the versions."""
    config = prepared.config
    run_dir = next_run_dir(Path(config.log_dir), config.algo, config.env_id)
    saved = {
        **asdict(config),
        "n_envs": prepared.n_envs,
        "timesteps": prepared.timesteps,
        "eval_freq": prepared.eval_freq,
        "hyperparams": prepared.hyperparams,
        "params": prepared.env.params.as_dict(),
        "continue_from": str(continue_from) if continue_from else None,
        "versions": versions(),
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    return run_dir, saved


def evaluation_callback(prepared: PreparedRun, model: BaseAlgorithm, run_dir: Path) -> PolicyEvaluationCallback:
    """The periodic evaluations: against the DP where the model has one, else against the best tuned heuristic."""
    params = prepared.env.params
    heuristic = None if exact_solution(params) is not None else best_tuned_heuristic(params).policy
    return PolicyEvaluationCallback(
        prepared.env,
        prepared.eval_freq,
        prepared.config.eval_episodes,
        PERIODIC_EVAL_SEED + prepared.config.seed,
        run_dir,
        obs_normalizer_getter=lambda: _vecnormalize(model.get_env()),
        benchmark=heuristic,
    )


def learn(model: BaseAlgorithm, prepared: PreparedRun, evaluation: PolicyEvaluationCallback, resume: bool) -> bool:
    """Train for the run's budget; returns whether Ctrl-C interrupted it (what was learned stays in ``model``)."""
    try:
        model.learn(
            prepared.timesteps,
            callback=CallbackList([MarketMetricsCallback(), evaluation]),
            progress_bar=prepared.config.progress_bar,
            reset_num_timesteps=not resume,
        )
    except KeyboardInterrupt:
        print("\ninterrupted: saving what has been learned")
        return True
    return False


def save_model(model: BaseAlgorithm, run_dir: Path) -> None:
    """Save the model and, if the env normalises, its statistics into the run folder."""
    model.save(run_dir / "model.zip")
    normalizer = _vecnormalize(model.get_env())
    if normalizer is not None:
        normalizer.save(str(run_dir / "vecnormalize.pkl"))


def load_model(algo_class: type[BaseAlgorithm], path: Path, **kwargs: Any) -> BaseAlgorithm:
    """``algo_class.load(path, **kwargs)``, without Stable-Baselines3's spurious n-step warning.

    A model trained with ``n_steps > 1`` saves its ``NStepReplayBuffer`` class together with the ``n_steps`` and
    ``gamma`` it needs; on loading, SB3 sees both ``n_steps`` and a replay-buffer class and warns that ``n_steps`` is
    ignored, although the loaded buffer computes exactly those n-step returns.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom `replay_buffer_class`")
        return algo_class.load(path, **kwargs)


def load_agents(run_dir: Path, device: str = "auto") -> tuple[list[SB3Policy], EnvConfig, dict]:
    """The saved final (and best, if any) agents of a run, with the run's model setup and configuration."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.exists():
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml)")
    saved = yaml.safe_load(config_path.read_text())
    env = env_config(saved["env_id"], saved.get("env_kwargs") or {})
    algo_class = ALGORITHMS[saved["algo"]]
    label = saved["algo"].upper()
    agents = []
    for prefix, name in (("", f"{label} (final)"), ("best_", f"{label} (best evaluation)")):
        model_path = run_dir / f"{prefix}model.zip"
        if not model_path.exists():
            continue
        model = load_model(algo_class, model_path, device=device)
        stats = run_dir / f"{prefix}vecnormalize.pkl"
        normalizer = None
        if stats.exists():
            shell = MarketMakingVecEnv(
                1, env.params, observation_features=env.features, normalize_actions=env.normalize_actions
            )
            normalizer = VecNormalize.load(str(stats), shell)
            normalizer.training = False
        agents.append(SB3Policy(model, name, normalizer, env.normalize_actions, env.features))
    if not agents:
        raise ValueError(f"{run_dir} has no saved model")
    return agents, env, saved


def final_comparison(
    run_dir: Path, episodes: int, seed: int, device: str = "auto", out_dir: Path | None = None
) -> tuple[list[PolicyReport], str | None]:
    """Compare the run's agents with the baselines of :func:`agents.evaluate.baseline_policies`.

    The DP optimum where it exists, the article's rule (published and tuned), the linear skew (tuned and the
    reference), the closed forms where they apply. Runs ``episodes`` common-random-number episodes, prints the
    table and writes it and the figures into ``out_dir`` (default: the run folder). Returns the rows and the
    benchmark heuristic's name where there is no DP.
    """
    out_dir = out_dir or run_dir
    agents, env, _ = load_agents(run_dir, device)
    params = env.params
    baselines, benchmark = baseline_policies(params, strawmen=False)
    rows = compare([*agents, *baselines], params, episodes, seed, benchmark=benchmark)
    table = markdown_table(rows, benchmark)
    print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}")
    write_report(rows, params, out_dir, {"episodes": episodes, "seed": seed}, benchmark)
    markov_agents = [agent for agent, row in zip(agents, rows, strict=False) if row.exact_return is not None]
    shown = [*baselines[:5], *markov_agents]
    save_figure(policy_figure(shown, params), out_dir / "policies.png")
    history = episode_history(agents[0], params, seed)
    save_figure(episode_figure(history, title=f"{agents[0].name}, one episode (seed {seed})"), out_dir / "episode.png")
    print(f"wrote {out_dir / 'comparison.md'}, comparison.json, policies.png and episode.png")
    return rows, benchmark


def evaluate_saved_run(run_dir: Path, episodes: int | None, seed: int | None, device: str = "auto") -> Path:
    """``mm-env-train --evaluate``: the final comparison of a saved run again.

    With the run's own episode count and seed (the defaults) it reproduces the run's table in place; otherwise the
    new table goes into a subfolder, so the training-time comparison is kept.
    """
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    own_episodes, own_seed = saved.get("final_episodes", 10_000), saved.get("seed", 0)
    episodes, seed = episodes or own_episodes, own_seed if seed is None else seed
    same = (episodes, seed) == (own_episodes, own_seed)
    out_dir = run_dir if same else run_dir / f"evaluation_seed{seed}_episodes{episodes}"
    from agents.game_training import game_comparison, is_game  # it builds on this module

    compare_run = game_comparison if is_game(saved.get("env_id", "")) else final_comparison
    compare_run(run_dir, episodes, FINAL_EVAL_SEED + seed, device=device, out_dir=out_dir)
    return out_dir


def _log_summary(model: BaseAlgorithm, rows: list[PolicyReport], benchmark: str | None, saved: dict) -> None:
    final = rows[0]
    metrics = {
        "final/mean_return": final.mean_return,
        "final/return_se": final.return_se,
        f"final/pct_of_{'dp' if benchmark is None else 'best_heuristic'}": (
            final.pct_of_benchmark if final.pct_of_benchmark is not None else math.nan
        ),
        "final/diff_vs_article_rule": final.diff_vs_reference if final.diff_vs_reference is not None else math.nan,
    }
    for key, value in metrics.items():
        model.logger.record(key, value)
    hparams = {
        key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
        for key, value in {**saved["hyperparams"], "algo": saved["algo"], "seed": saved["seed"]}.items()
    }
    model.logger.record("hparams", HParam(hparams, metrics), exclude=("stdout", "log", "json", "csv"))
    model.logger.record("comparison", markdown_table(rows, benchmark), exclude=("stdout", "log", "json", "csv"))
    model.logger.dump(model.num_timesteps)
    model.logger.close()
