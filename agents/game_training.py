"""Training on competing market makers: ``mm-env-train --env mm_env/CompetingMarketMakers-v0``.

Two set-ups, chosen by ``--env-kwargs``: one learner (``mm_0``) against a fixed ``opponent`` (default
``"equilibrium"``; see :data:`agents.opponents.OPPONENTS`), judged as a percentage of its exact best response; or
``self_play=True``, where the market makers share one policy, judged by each one's exact return, NashConv, the
collusion index and the quoted spread, against the exact equilibrium and cartel (:mod:`agents.game`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import HParam, configure
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from agents import run_folder
from agents.callbacks import NOT_IN_TEXT_LOGS, PeriodicEvaluation
from agents.dp import unsolvable_reason
from agents.game_eval import ExactReference, GameReport, LearnedJointPolicy, exact_reference, game_table, judge
from agents.opponents import OPPONENTS, opponent_policy
from agents.run_folder import RunFolderError
from agents.tb_layout import game_layout, write_layout
from agents.training import (
    ALGORITHMS,
    FINAL_EVAL_SEED,
    PERIODIC_EVAL_SEED,
    RunConfig,
    _vecnormalize,
    check_table_memory,
    conduct_run,
    hparams_of,
    load_model,
    model_on,
    next_run_dir,
    normalises_observations,
    run_settings,
    versions,
    with_entry_env_kwargs,
)
from mm_env.competition.batch import CompetitionConfig
from mm_env.competition.params import CompetitionParams, make_competition_params
from mm_env.competition.sb3_vec_env import CompetitionVecEnv
from mm_env.params import make_params

GAME_ENTRY_POINT = "mm_env.competition.single:CompetingMarketMakersEnv"


def is_game(env_id: str) -> bool:
    """Whether ``env_id`` is registered as the competing market makers' env."""
    try:
        return gym.spec(env_id).entry_point == GAME_ENTRY_POINT
    except gym.error.Error:
        return False


@dataclass(frozen=True)
class GameSetup:
    """The game, and who the learner plays: a named opponent, or itself."""

    config: CompetitionConfig
    opponent: str | None
    self_play: bool

    @property
    def label(self) -> str:
        """``self-play`` or ``against <opponent>``."""
        return "self-play" if self.self_play else f"against {self.opponent}"


def game_setup(env_kwargs: dict[str, Any]) -> GameSetup:
    """The set-up from ``--env-kwargs``: ``opponent=NAME`` or ``self_play=True``, plus the game's keywords."""
    kwargs = dict(env_kwargs)
    self_play = kwargs.pop("self_play", False)
    if not isinstance(self_play, bool):
        raise ValueError(f"self_play={self_play!r} is invalid: must be True or False")
    opponent = kwargs.pop("opponent", None if self_play else "equilibrium")
    if self_play and opponent is not None:
        raise ValueError("self_play=True has no opponent: every market maker is the learner")
    if not self_play and opponent not in OPPONENTS:
        raise ValueError(f"opponent={opponent!r} is invalid: must be one of {list(OPPONENTS)}")
    config = CompetitionConfig.from_kwargs(**kwargs)
    if not self_play and config.num_market_makers < 2:
        raise ValueError(f"opponent={opponent!r} needs num_market_makers >= 2 (one market maker alone: use self_play)")
    if not config.params.market.fill.quotes_matter:
        raise ValueError("article mode has nothing to learn: every order fills whatever the quotes")
    if not self_play:
        opponent_policy(opponent, config.params)  # a solved opponent fails here, with the reason, if it cannot
    return GameSetup(config, opponent, self_play)


@dataclass(frozen=True)
class PreparedGame:
    """A game run whose every setting has been checked, before anything is built or written."""

    config: RunConfig
    setup: GameSetup
    hyperparams: dict[str, Any]
    n_envs: int
    timesteps: int
    eval_freq: int


def prepare_game(config: RunConfig) -> PreparedGame:
    """Check every setting of a game run; any problem raises ``ValueError`` with a message for the command line."""
    hyperparams, n_envs, timesteps, eval_freq = run_settings(config)
    config = with_entry_env_kwargs(config, hyperparams)
    setup = game_setup(config.env_kwargs)
    check_table_memory(setup.config.params.market)
    m = setup.config.num_market_makers
    if setup.self_play and n_envs % m:
        raise ValueError(f"n_envs={n_envs} is invalid for self-play: must be a multiple of M={m} (one view per MM)")
    return PreparedGame(config, setup, hyperparams, n_envs, timesteps, eval_freq)


def make_game_env(setup: GameSetup, n_envs: int, seed: int, normalize: dict | bool | None) -> VecEnv:
    """The batched SB3 env of the set-up, monitored, and normalised if the hyperparameters say so."""
    venv: VecEnv = CompetitionVecEnv(
        n_envs,
        setup.opponent,
        self_play=setup.self_play,
        params=setup.config.params,
        normalize_actions=setup.config.normalize_actions,
    )
    venv.seed(seed)
    venv = VecMonitor(venv)
    if normalize:
        venv = VecNormalize(venv, **(normalize if isinstance(normalize, dict) else {}))
    return venv


def learned_policy(setup: GameSetup, model: Any, normalizer: Any | None, name: str) -> LearnedJointPolicy:
    """The trained model as a joint policy: in every seat (self-play), or in ``mm_0``'s against the opponent."""
    m = setup.config.num_market_makers
    seats = range(m) if setup.self_play else (0,)
    others = None if setup.self_play else opponent_policy(setup.opponent, setup.config.params)
    return LearnedJointPolicy(model, setup.config, seats, others, normalizer, name)


class GameEvaluationCallback(PeriodicEvaluation):
    """Every ``eval_freq`` steps, judges the deterministic policy and logs it under ``eval/``.

    ``eval/mean_return_mm_j`` (Monte Carlo on fixed seeds) always; with an exact solution of the game also
    ``eval/exact_return_mm_j``, ``eval/nash_conv``, ``eval/collusion_index``, ``eval/pct_of_best_response`` (of
    ``mm_0``), ``eval/spread`` (``mm_0``'s quoted spread at the start) and, for comparison on the same charts,
    ``eval/equilibrium_return`` and ``eval/cartel_return`` (per MM).
    """

    def __init__(
        self,
        setup: GameSetup,
        eval_freq: int,
        episodes: int,
        seed: int,
        reference: ExactReference | None,
        obs_normalizer_getter: Any = lambda: None,
    ) -> None:
        super().__init__()
        self.setup, self.eval_freq, self.episodes, self.seed = setup, eval_freq, episodes, seed
        self.reference, self.obs_normalizer_getter = reference, obs_normalizer_getter
        self.history: list[dict[str, Any]] = []
        self._next = eval_freq

    def evaluate(self) -> GameReport:
        """Judge the current policy now, log it and return the report."""
        policy = learned_policy(self.setup, self.model, self.obs_normalizer_getter(), "agent")
        report = judge(policy, self.setup.config.params, self.episodes, self.seed, self.reference)
        for j, mean in enumerate(report.mean_return):
            self.logger.record(f"eval/mean_return_mm_{j}", mean)
        if report.exact_return is not None and self.reference is not None:
            for j, value in enumerate(report.exact_return):
                self.logger.record(f"eval/exact_return_mm_{j}", value)
            self.logger.record("eval/nash_conv", report.nash_conv)
            self.logger.record("eval/collusion_index", report.collusion_index)
            if report.pct_of_best_response is not None:
                self.logger.record("eval/pct_of_best_response", report.pct_of_best_response)
            self.logger.record("eval/equilibrium_return", self.reference.equilibrium.mean_return)
            self.logger.record("eval/cartel_return", self.reference.cartel.mean_return)
        self.logger.record("eval/spread", report.spread[0])
        self.history.append({"timesteps": self.num_timesteps, **asdict(report)})
        self.logger.dump(self.num_timesteps)
        return report


def build_game_model(prepared: PreparedGame, continue_from: Path | None = None) -> BaseAlgorithm:
    """The training env and the algorithm on it: new, or loaded from a saved run to continue it."""
    config, hyperparams = prepared.config, prepared.hyperparams
    venv = make_game_env(prepared.setup, prepared.n_envs, config.seed, hyperparams.get("normalize"))
    return model_on(venv, config, hyperparams, continue_from)


def start_game_run(prepared: PreparedGame, continue_from: Path | None = None) -> Path:
    """A new run folder with its ``config.yaml``: every setting, the full game parameters and the versions."""
    config, params = prepared.config, prepared.setup.config.params
    run_dir = next_run_dir(Path(config.log_dir), config.algo, config.env_id)
    saved = {
        **asdict(config),
        "n_envs": prepared.n_envs,
        "timesteps": prepared.timesteps,
        "eval_freq": prepared.eval_freq,
        "hyperparams": prepared.hyperparams,
        "params": recorded_game_params(params),
        "continue_from": str(continue_from) if continue_from else None,
        "versions": versions(),
    }
    run_folder.write_config(run_dir, saved)
    return run_dir


def recorded_game_params(params: CompetitionParams) -> dict[str, Any]:
    """The game's parameters as ``config.yaml`` records them: the market's flat keywords, ``M`` and the tick."""
    return {**params.market.as_dict(), "num_market_makers": params.num_market_makers, "tick": params.tick}


def game_env_kwargs(saved: dict[str, Any], run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The game run's env keywords that rebuild exactly its recorded game, and the parameters that needed it.

    As :func:`agents.training.run_env_kwargs`: the recorded ``params`` win over ``env_kwargs`` if they disagree;
    the set-up (``opponent``, ``self_play``) and ``normalize_actions`` are kept. Raises :class:`RunFolderError`.
    """
    env_kwargs = dict(saved.get("env_kwargs") or {})
    path = run_dir / run_folder.CONFIG_FILE
    setup_keys = ("opponent", "self_play", "normalize_actions")
    try:
        current = game_setup(env_kwargs).config.params
    except ValueError as error:
        raise RunFolderError(f"{path}: env_kwargs {env_kwargs} cannot build the game: {error}") from None
    recorded = saved.get("params")
    if not recorded:
        return env_kwargs, []
    market = {key: value for key, value in recorded.items() if key not in ("num_market_makers", "tick")}
    try:
        params = make_competition_params(
            make_params("default", **market), recorded.get("num_market_makers", 2), recorded.get("tick", 0.01)
        )
    except (TypeError, ValueError) as error:
        raise RunFolderError(f"{path}: the recorded params cannot build a game: {error}") from None
    if params == current:
        return env_kwargs, []
    kept = {key: value for key, value in env_kwargs.items() if key in setup_keys}
    full = recorded_game_params(params)
    now = recorded_game_params(current)
    differences = [f"{name}: {now.get(name)!r} → {value!r}" for name, value in full.items() if now.get(name) != value]
    return {**kept, **full}, differences


def train_game(prepared: PreparedGame, continue_from: Path | None = None) -> tuple[Path, bool]:
    """Train on the game, log to TensorBoard, save the model, and compare it with the exact solutions.

    Returns and raises as :func:`agents.training.train` (the run's status is recorded by ``conduct_run``).
    """
    config, setup = prepared.config, prepared.setup
    model = build_game_model(prepared, continue_from)
    reference = exact_reference(setup.config.params)  # seconds at the defaults: before the run folder exists
    run_dir = start_game_run(prepared, continue_from)

    def begin() -> PeriodicEvaluation:
        model.set_logger(configure(str(run_dir), ["tensorboard", "csv"] + (["stdout"] if config.verbose else [])))
        write_layout(model.logger, game_layout(setup.config.num_market_makers))
        evaluation = GameEvaluationCallback(
            setup,
            prepared.eval_freq,
            config.eval_episodes,
            PERIODIC_EVAL_SEED + config.seed,
            reference,
            lambda: _vecnormalize(model.get_env()),
        )
        print(
            f"training {config.algo.upper()} on {config.env_id} ({setup.label}) for {prepared.timesteps:,} steps "
            f"({prepared.n_envs} envs); run: {run_dir}"
        )
        return evaluation

    def compare() -> None:
        rows = game_comparison(run_dir, config.final_episodes, FINAL_EVAL_SEED + config.seed, device=config.device)
        saved = run_folder.read_config(run_dir, ALGORITHMS)
        metrics = {"eval/nash_conv": math.nan, "eval/collusion_index": math.nan, "eval/mean_return_mm_0": math.nan}
        model.logger.record("hparams", HParam(hparams_of(saved, run_dir.name), metrics), exclude=NOT_IN_TEXT_LOGS)
        model.logger.record("comparison", game_table(rows), exclude=NOT_IN_TEXT_LOGS)
        model.logger.dump(model.num_timesteps)
        model.logger.close()

    return conduct_run(
        model, run_dir, begin, compare, prepared.timesteps, prepared.hyperparams, config.progress_bar, continue_from
    )


def load_game_agent(run_dir: Path, device: str = "auto") -> tuple[LearnedJointPolicy, GameSetup, dict]:
    """The saved final model of a game run as a joint policy, with the run's set-up and configuration.

    Nothing is unpickled (see :mod:`agents.run_folder`); the game is the one recorded in ``config.yaml``
    (:func:`game_env_kwargs`). Raises :class:`RunFolderError` (a ``ValueError``) if the folder cannot be used.
    """
    run_dir = Path(run_dir)
    saved = run_folder.read_config(run_dir, ALGORITHMS)
    if not is_game(saved["env_id"]):
        raise RunFolderError(f"{run_dir} is not a run of the competing market makers' env")
    env_kwargs, _ = game_env_kwargs(saved, run_dir)
    try:
        setup = game_setup(env_kwargs)
    except ValueError as error:
        raise RunFolderError(f"{run_dir / run_folder.CONFIG_FILE}: {error}") from None
    hyperparams = saved.get("hyperparams") or {}
    shell = make_game_env(setup, setup.config.num_market_makers, 0, None)
    path = run_folder.model_path(run_dir)
    model = load_model(saved["algo"], path, hyperparams, shell.observation_space, shell.action_space, device=device)
    normalizer = run_folder.read_statistics(run_dir, shell, required=normalises_observations(hyperparams))
    label = f"{saved['algo'].upper()} ({setup.label})"
    return learned_policy(setup, model, normalizer, label), setup, saved


def game_comparison(
    run_dir: Path, episodes: int, seed: int, device: str = "auto", out_dir: Path | None = None
) -> list[GameReport]:
    """The learned joint policy next to the exact equilibrium, the cartel and the one-MM optimum played by all.

    ``episodes`` common-random-number episodes; prints the table and writes ``comparison.md`` and
    ``comparison.json`` into ``out_dir`` (default: the run folder).
    """
    from agents import game

    out_dir = out_dir or Path(run_dir)
    agent, setup, _ = load_game_agent(run_dir, device)
    params = setup.config.params
    reference = exact_reference(params)
    policies: list[Any] = [agent]
    if reference is not None:
        policies += [
            game.GamePolicy(reference.equilibrium.bid, reference.equilibrium.ask, name="equilibrium"),
            game.GamePolicy(reference.cartel.bid, reference.cartel.ask, name="cartel"),
        ]
    names = [agent.name, "equilibrium", "cartel"][: 1 + 2 * (reference is not None)]
    if unsolvable_reason(params.market) is None:  # the monopoly's quotes need the one-MM DP
        policies.append(opponent_policy("monopoly", params))
        names.append("each quotes the one-MM optimum")
    policies.append(opponent_policy("article", params))
    names.append("each quotes the article rule")
    print(f"final comparison: {len(policies)} joint policies on {episodes:,} common-random-number episodes", flush=True)
    rows = []
    for number, (policy, name) in enumerate(zip(policies, names, strict=True), start=1):
        rows.append(judge(policy, params, episodes, seed, reference, name))
        print(f"  [{number}/{len(policies)}] {name}", flush=True)
    table = game_table(rows)
    print(f"\n{episodes:,} common-random-number episodes (seed {seed}):\n{table}")
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"episodes": episodes, "seed": seed, "setup": setup.label, "rows": [asdict(row) for row in rows]}
    run_folder.write_json(out_dir / "comparison.json", payload)
    run_folder.atomic_write_text(out_dir / "comparison.md", table + "\n")
    return rows
