"""Training Stable-Baselines3 agents on the batched env, and comparing them with the baselines (``train.py``)."""

from __future__ import annotations

import copy
import inspect
import json
import math
import platform
import re
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
from agents.evaluate import PolicyReport, compare, markdown_table, write_report
from agents.plots import episode_figure, policy_figure, save_figure
from agents.policies import ArticleRule, DPPolicy, LinearSkew, Policy
from agents.sb3_policy import SB3Policy
from agents.tuning import tune_article_rule, tune_linear_skew
from mm_env.params import MarketParams, make_params
from mm_env.sb3_vec_env import MarketMakingVecEnv
from mm_env.spaces import DEFAULT_FEATURES

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3, "a2c": A2C}
HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "leaky_relu": torch.nn.LeakyReLU}
# Keys of a hyperparameter entry that configure the run rather than the algorithm's constructor.
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "noise_type", "noise_std")
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
    progress_bar: bool = False
    verbose: int = 0


@dataclass(frozen=True)
class EnvSetup:
    """The market model behind an env id and its keyword arguments."""

    params: MarketParams
    features: tuple[str, ...]
    normalize_actions: bool


def env_setup(env_id: str, env_kwargs: dict[str, Any]) -> EnvSetup:
    """Resolve a registered market-making env id plus overrides into the model parameters."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(f"--env {env_id!r} is not a registered environment id ({error})") from None
    if spec.entry_point != "mm_env.env:MarketMakingEnv":
        raise ValueError(
            f"--env {env_id!r} is not a market-making environment of mm_env (entry point {spec.entry_point})"
        )
    kwargs = {**spec.kwargs, **env_kwargs}
    features = tuple(kwargs.pop("observation_features", DEFAULT_FEATURES))
    normalize_actions = bool(kwargs.pop("normalize_actions", True))
    kwargs.pop("render_mode", None)
    params = make_params(kwargs.pop("params", None) or kwargs.pop("preset", "default"), **kwargs)
    if features[:2] != DEFAULT_FEATURES:
        raise ValueError(f"observation_features must start with {DEFAULT_FEATURES} for the comparisons; got {features}")
    return EnvSetup(params, features, normalize_actions)


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
    # "lin_3e-4": a learning rate decaying linearly to 0 over training (the RL Zoo's notation).
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress_remaining: start * progress_remaining
    return value


def algorithm_kwargs(algo: str, hyperparams: dict[str, Any], n_actions: int) -> dict[str, Any]:
    """Constructor arguments of the SB3 algorithm from a hyperparameter entry (unknown names raise ValueError)."""
    kwargs = {key: _schedule(value) for key, value in hyperparams.items() if key not in RUN_KEYS}
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
    taken = [int(m.group(1)) for p in log_dir.glob(f"{name}_*") if (m := pattern.match(p.name))]
    run_dir = log_dir / f"{name}_{max(taken, default=0) + 1}"
    run_dir.mkdir(parents=True)
    return run_dir


def make_training_env(setup: EnvSetup, n_envs: int, seed: int, normalize: dict | bool | None) -> VecEnv:
    """The batched SB3 env, monitored, and normalised if the hyperparameters say so."""
    venv: VecEnv = MarketMakingVecEnv(
        n_envs, setup.params, observation_features=setup.features, normalize_actions=setup.normalize_actions
    )
    venv.seed(seed)
    venv = VecMonitor(venv)
    if normalize:
        options = normalize if isinstance(normalize, dict) else {}
        venv = VecNormalize(venv, **options)
    return venv


def _vecnormalize(venv: VecEnv) -> VecNormalize | None:
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


def train(config: RunConfig, continue_from: Path | None = None) -> Path:
    """Train an agent, log to TensorBoard, save it, and compare it with the baselines; returns the run folder."""
    if config.algo not in ALGORITHMS:
        raise ValueError(f"--algo {config.algo!r} is not one of {sorted(ALGORITHMS)}")
    setup = env_setup(config.env_id, config.env_kwargs)
    hyperparams = load_hyperparams(config.algo, config.env_id, config.hyperparams)
    n_envs = int(config.n_envs or hyperparams.get("n_envs", 1))
    timesteps = int(config.timesteps or float(hyperparams.get("n_timesteps", 1_000_000)))
    eval_freq = int(config.eval_freq or max(timesteps // 10, 1))
    run_dir = next_run_dir(Path(config.log_dir), config.algo, config.env_id)
    saved = {
        **asdict(config),
        "n_envs": n_envs,
        "timesteps": timesteps,
        "eval_freq": eval_freq,
        "hyperparams": hyperparams,
        "params": setup.params.as_dict(),
        "continue_from": str(continue_from) if continue_from else None,
        "versions": versions(),
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    venv = make_training_env(setup, n_envs, config.seed, hyperparams.get("normalize"))
    algo_class = ALGORITHMS[config.algo]
    if continue_from is not None:
        model = algo_class.load(continue_from / "model.zip", env=venv, device=config.device)
        stats = continue_from / "vecnormalize.pkl"
        if stats.exists():
            venv = VecNormalize.load(str(stats), venv.venv if isinstance(venv, VecNormalize) else venv)
            model.set_env(venv)
    else:
        kwargs = algorithm_kwargs(config.algo, hyperparams, n_actions=2)
        policy = hyperparams.get("policy", "MlpPolicy")
        model = algo_class(policy, venv, seed=config.seed, device=config.device, verbose=config.verbose, **kwargs)
    formats = ["tensorboard", "csv"] + (["stdout"] if config.verbose else [])
    model.set_logger(configure(str(run_dir), formats))
    evaluation = PolicyEvaluationCallback(
        setup.params,
        eval_freq,
        config.eval_episodes,
        PERIODIC_EVAL_SEED + config.seed,
        run_dir,
        obs_normalizer_getter=lambda: _vecnormalize(model.get_env()),
    )
    print(f"training {config.algo.upper()} on {config.env_id} for {timesteps:,} steps ({n_envs} envs); run: {run_dir}")
    interrupted = False
    try:
        model.learn(
            timesteps,
            callback=CallbackList([MarketMetricsCallback(), evaluation]),
            progress_bar=config.progress_bar,
            reset_num_timesteps=continue_from is None,
        )
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: saving what has been learned")
    model.save(run_dir / "model.zip")
    normalizer = _vecnormalize(model.get_env())
    if normalizer is not None:
        normalizer.save(str(run_dir / "vecnormalize.pkl"))
    if interrupted:
        print(f"saved {run_dir / 'model.zip'}; compare it with: python train.py --evaluate {run_dir}")
        return run_dir
    evaluation.evaluate()  # the final model, logged like the periodic evaluations
    (run_dir / "evaluations.json").write_text(json.dumps(evaluation.history, indent=2))
    rows = final_comparison(run_dir, config.final_episodes, FINAL_EVAL_SEED + config.seed, device=config.device)
    _log_summary(model, run_dir, rows, saved)
    return run_dir


def load_agents(run_dir: Path, device: str = "auto") -> tuple[list[SB3Policy], EnvSetup, dict]:
    """The saved final (and best, if any) agents of a run, with the run's model setup and configuration."""
    config_path = run_dir / "config.yaml"
    if not config_path.exists():
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml)")
    saved = yaml.safe_load(config_path.read_text())
    setup = env_setup(saved["env_id"], saved.get("env_kwargs") or {})
    algo_class = ALGORITHMS[saved["algo"]]
    label = saved["algo"].upper()
    agents = []
    for prefix, name in (("", f"{label} (final)"), ("best_", f"{label} (best evaluation)")):
        model_path = run_dir / f"{prefix}model.zip"
        if not model_path.exists():
            continue
        model = algo_class.load(model_path, device=device)
        stats = run_dir / f"{prefix}vecnormalize.pkl"
        normalizer = None
        if stats.exists():
            normalizer = VecNormalize.load(str(stats), MarketMakingVecEnv(1, setup.params))
            normalizer.training = False
        agents.append(SB3Policy(model, name, normalizer, setup.normalize_actions, setup.features))
    if not agents:
        raise ValueError(f"{run_dir} has no saved model")
    return agents, setup, saved


def final_comparison(run_dir: Path, episodes: int, seed: int, device: str = "auto") -> list[PolicyReport]:
    """Compare the run's agents with the article's rule (published and tuned), the linear skew and the DP optimum.

    Runs ``episodes`` common-random-number episodes, prints the table and writes it and the figures into the run.
    """
    agents, setup, _ = load_agents(run_dir, device)
    params = setup.params
    best_rule = tune_article_rule(params).policy
    best_rule.name = f"{best_rule.name} (tuned)"
    best_skew = tune_linear_skew(params).policy
    best_skew.name = f"{best_skew.name} (tuned)"
    dp = DPPolicy(params)
    baselines: list[Policy] = [dp, ArticleRule(0.5, 0.1), best_rule, best_skew, LinearSkew(0.7, 0.06)]
    rows = compare([*agents, *baselines], params, episodes, seed, features=setup.features)
    table = markdown_table(rows)
    print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}")
    write_report(rows, params, run_dir, {"episodes": episodes, "seed": seed})
    save_figure(policy_figure([dp, ArticleRule(0.5, 0.1), best_skew, *agents], params), run_dir / "policies.png")
    history = _episode_history(agents[0], params, seed, setup.features)
    save_figure(episode_figure(history, title=f"{agents[0].name}, one episode (seed {seed})"), run_dir / "episode.png")
    print(f"wrote {run_dir / 'comparison.md'}, comparison.json, policies.png and episode.png")
    return rows


def _episode_history(policy: Policy, params: MarketParams, seed: int, features: tuple[str, ...]) -> dict:
    env = mm_env.MarketMakingEnv(params, observation_features=features, normalize_actions=False)
    obs, info = env.reset(seed=seed)
    history: dict[str, list[float]] = {"mid": [], "bid": [], "ask": [], "inventory": [], "reward": []}
    for _ in range(params.T):
        mid = info["mid"]
        obs, reward, _, _, info = env.step(policy.act(obs[None, :], params)[0])
        for key, value in zip(history, (mid, info["bid"], info["ask"], info["inventory"], reward), strict=True):
            history[key].append(value)
    return history


def _log_summary(model: BaseAlgorithm, run_dir: Path, rows: list[PolicyReport], saved: dict) -> None:
    final = rows[0]
    metrics = {
        "final/mean_return": final.mean_return,
        "final/return_se": final.return_se,
        "final/pct_of_dp": final.pct_of_dp if final.pct_of_dp is not None else math.nan,
        "final/diff_vs_article_rule": final.diff_vs_reference if final.diff_vs_reference is not None else math.nan,
    }
    for key, value in metrics.items():
        model.logger.record(key, value)
    hparams = {
        key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
        for key, value in {**saved["hyperparams"], "algo": saved["algo"], "seed": saved["seed"]}.items()
    }
    model.logger.record("hparams", HParam(hparams, metrics), exclude=("stdout", "log", "json", "csv"))
    model.logger.record("comparison", markdown_table(rows), exclude=("stdout", "log", "json", "csv"))
    model.logger.dump(model.num_timesteps)
    model.logger.close()
