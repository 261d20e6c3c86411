"""PPO on JAX: the environment, the rollouts, GAE and the updates of a whole chunk of training under one ``jax.jit``.

A compact PPO for the JAX environment (:class:`mm_env.jax.env.MarketMakingEnv`, gymnax's interface), written out with
``jax.numpy`` and ``optax`` only, and the same algorithm as Stable-Baselines3's PPO with the settings of
``agents/training/hyperparams/ppo.yml``:

* a Gaussian policy whose mean is an MLP of the observation and whose log standard deviation is one number per
  action, independent of the state (learned, or held on a schedule: :attr:`PPOConfig.log_std_schedule`); a separate
  MLP critic; orthogonal initialisation (hidden layers ``√2``, the policy's output ``0.01``, the critic's ``1``);
* rollouts of ``n_steps`` in each of ``n_envs`` environments (the sampled action clipped to the action box before the
  step, its log-probability that of the unclipped sample), rewards scaled by a running estimate of the discounted
  return's standard deviation (as SB3's ``VecNormalize(norm_reward=True)``), and a time limit bootstrapped from the
  value of the final observation;
* generalised advantage estimation (:func:`gae`), then ``n_epochs`` passes over the rollout in shuffled minibatches of
  ``batch_size``: the clipped surrogate (:func:`clipped_surrogate`), the squared error of the value, the entropy, Adam
  with the global gradient norm clipped and a learning rate on a schedule.

Many seeds train at once: every function of a training state is ``vmap``-ped over a leading seed axis
(:class:`Trainer`), and the seeds are split into :attr:`PPOConfig.seed_groups` groups whose programs run side by side
on threads (by default one group per CPU core on a CPU, where XLA runs the small matrix products of one program on
about one core; one group on an accelerator). The same seeds in the same groups on the same machine give the same
parameters to the last bit; a seed trained alone and the same seed trained beside others differ in rounding (the
batched products round otherwise), which a long run amplifies into another policy of the same quality. A run of the
pipeline records its groups with its hyperparameters.

Training runs in chunks of updates, one jitted call each (:meth:`Trainer.train`), so that between chunks the caller
can evaluate, log and stop. The parameters are plain named arrays (:func:`named_leaves`,
:func:`params_from_named`), which :mod:`agents.storage.models` saves as ``.npz`` beside their hyperparameters.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = dict[str, Any]
"""The networks' parameters: ``{"actor": [...], "critic": [...], "log_std": (n_actions,)}``, each layer a dict of
``kernel`` and ``bias``."""

MAX_COUNT = 100_000_000
"""The largest value of an integer hyperparameter (environments, steps, epochs)."""
MAX_LOG_STD = 20.0
"""The log standard deviations of :attr:`PPOConfig.log_std_schedule` and ``log_std_init`` lie in ``[-20, 20]``."""
MAX_WIDTH = 4096
"""The widest hidden layer."""
MAX_LAYERS = 16
"""The most hidden layers."""
PARAMS_FORMAT = "mm_env JAX PPO parameters 1"
"""The ``format`` entry of the JSON header saved beside the parameters."""


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"hyperparameter {name}={value!r} is invalid: must be {allowed}")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_schedule(value: Any) -> tuple[str, float, int]:
    """A learning rate as ``(kind, peak, cycles)``: a number (``constant``), ``lin_X`` or ``restarts_X_N``.

    The notation of ``ppo.yml``: ``lin_X`` decays linearly from ``X`` to 0 over the run; ``restarts_X_N`` runs ``N``
    linear decays, the ``k``-th (from 1) from ``X/k`` to 0. ``ValueError`` for anything else.
    """
    allowed = "a number > 0, lin_X or restarts_X_N with X > 0 and N >= 1"
    if _is_real(value) and value > 0:
        return "constant", float(value), 1
    if isinstance(value, str):
        name, _, rest = value.partition("_")
        peak_text, _, cycles_text = rest.partition("_")
        try:
            peak = float(peak_text)
            if name == "lin" and not cycles_text and math.isfinite(peak) and peak > 0:
                return "lin", peak, 1
            if name == "restarts" and math.isfinite(peak) and peak > 0 and 1 <= int(cycles_text) <= MAX_COUNT:
                return "restarts", peak, int(cycles_text)
        except ValueError:
            pass
    _fail("learning_rate", value, allowed)
    raise AssertionError  # unreachable: _fail raises


def learning_rate_at(value: float | str, done: jax.Array | float) -> jax.Array:
    """The learning rate of the schedule ``value`` (see :func:`parse_schedule`) when ``done`` of the run is done."""
    kind, peak, cycles = parse_schedule(value)
    done = jnp.clip(jnp.asarray(done, dtype=jnp.float32), 0.0, 1.0)
    if kind == "constant":
        return jnp.asarray(peak, dtype=jnp.float32)
    if kind == "lin":
        return peak * (1.0 - done)
    cycle = jnp.minimum(jnp.floor(done * cycles), cycles - 1)
    within = done * cycles - cycle
    return peak / (cycle + 1.0) * (1.0 - within)


@dataclass(frozen=True)
class PPOConfig:
    """PPO's hyperparameters, each checked at construction (``ValueError`` naming the field, the value, the range).

    The defaults are ``ppo.yml``'s for the default preset, with 5 epochs per update instead of 10, 32×32 networks
    instead of 64×64 and a budget of 6M steps instead of 5M.
    """

    n_envs: int = 32
    """Environments stepped together in each seed's rollout."""
    n_steps: int = 256
    """Steps of each environment per rollout (an update learns from ``n_envs · n_steps`` steps)."""
    batch_size: int = 1024
    """Minibatch size; must divide ``n_envs · n_steps``."""
    n_epochs: int = 5
    """Passes over each rollout."""
    learning_rate: float | str = "restarts_1e-3_10"
    """Adam's step size: a number, ``lin_X`` or ``restarts_X_N`` (:func:`parse_schedule`)."""
    gamma: float = 0.999
    """Discount factor, in [0, 1]."""
    gae_lambda: float = 0.7
    """GAE's λ, in [0, 1]."""
    clip_range: float = 0.2
    """PPO's clip of the probability ratio, in (0, 1]."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus, >= 0."""
    vf_coef: float = 0.5
    """Weight of the value loss, >= 0."""
    max_grad_norm: float = 0.5
    """The gradient's global norm is clipped to this, > 0."""
    adam_eps: float = 1e-5
    """Adam's ε, > 0."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layers of the actor and of the critic (each its own network). 32×32 learns the default preset as well
    as ``ppo.yml``'s 64×64 in 60% of the CPU time: ``python benchmarks/bench_jax_train.py --at-once 4`` gave 99.57 ±
    0.03% of the DP in 104 CPU-s, with ``--hyperparams hidden_sizes=[64,64]`` 99.49 ± 0.10% in 173 CPU-s."""
    activation: str = "tanh"
    """``tanh`` or ``relu``."""
    log_std_init: float = 0.0
    """The log standard deviation at the start, where it is learned."""
    log_std_schedule: tuple[float, float] | None = (-1.0, -4.0)
    """``(start, end)``: the log standard deviation moves linearly from ``start`` to ``end`` over the run instead of
    being learned (why: :class:`agents.training.callbacks.LogStdSchedule`); ``None`` learns it."""
    normalize_reward: bool = True
    """Scale rewards by the running standard deviation of the discounted return (SB3's ``norm_reward``)."""
    clip_reward: float = 10.0
    """Scaled rewards are clipped to ``±clip_reward`` (> 0)."""
    normalize_advantage: bool = True
    """Standardise the advantages of each minibatch."""
    n_timesteps: int = 6_000_000
    """The training budget in environment steps (per seed), when the run gives none. At the default preset 6M steps
    took each of seeds 0–4 past 99.3% of the DP (5M left two of them at 99.0–99.1%)."""
    seed_groups: int | None = None
    """Into how many groups the seeds split, the groups' compiled programs running side by side on threads (more
    groups than seeds: one seed each). ``None``: :func:`default_groups`, one per CPU core. Only speed and rounding
    depend on it; the pipeline records the number it used."""

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "n_timesteps"):
            value = getattr(self, name)
            minimum = 2 if name == "batch_size" else 1
            if isinstance(value, bool) or not _is_real(value) or value != int(value):
                _fail(name, value, f"an integer in [{minimum}, {MAX_COUNT:,}]")
            if not minimum <= value <= MAX_COUNT:
                _fail(name, value, f"an integer in [{minimum}, {MAX_COUNT:,}]")
            object.__setattr__(self, name, int(value))
        if self.batch_size > self.rollout_size or self.rollout_size % self.batch_size:
            _fail("batch_size", self.batch_size, f"a divisor of n_envs · n_steps = {self.rollout_size:,}")
        parse_schedule(self.learning_rate)
        if isinstance(self.learning_rate, int):
            object.__setattr__(self, "learning_rate", float(self.learning_rate))
        ranges = {
            "gamma": (0.0, 1.0, False),
            "gae_lambda": (0.0, 1.0, False),
            "clip_range": (0.0, 1.0, True),
            "ent_coef": (0.0, 1e9, False),
            "vf_coef": (0.0, 1e9, False),
            "max_grad_norm": (0.0, 1e9, True),
            "adam_eps": (0.0, 1.0, True),
            "clip_reward": (0.0, 1e9, True),
            "log_std_init": (-MAX_LOG_STD, MAX_LOG_STD, False),
        }
        for name, (low, high, low_open) in ranges.items():
            value = getattr(self, name)
            inside = _is_real(value) and (value > low if low_open else value >= low) and value <= high
            if not inside:
                _fail(name, value, f"a number in {'(' if low_open else '['}{low:g}, {high:g}]")
            object.__setattr__(self, name, float(value))
        sizes = self.hidden_sizes
        if not (
            isinstance(sizes, (list, tuple))
            and 1 <= len(sizes) <= MAX_LAYERS
            and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_WIDTH for s in sizes)
        ):
            _fail("hidden_sizes", sizes, f"1 to {MAX_LAYERS} layer widths, each an integer in [1, {MAX_WIDTH}]")
        object.__setattr__(self, "hidden_sizes", tuple(sizes))
        if self.activation not in ACTIVATIONS:
            _fail("activation", self.activation, f"one of {sorted(ACTIVATIONS)}")
        schedule = self.log_std_schedule
        if schedule is not None:
            ok = isinstance(schedule, (list, tuple)) and len(schedule) == 2
            ok = ok and all(_is_real(x) and abs(x) <= MAX_LOG_STD for x in schedule)
            if not ok:
                _fail("log_std_schedule", schedule, f"None or two numbers [start, end] in [-{MAX_LOG_STD:g}, 20]")
            object.__setattr__(self, "log_std_schedule", (float(schedule[0]), float(schedule[1])))
        for name in ("normalize_reward", "normalize_advantage"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, getattr(self, name), "True or False")
        groups = self.seed_groups
        if groups is not None:
            if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or not 1 <= groups <= MAX_COUNT:
                _fail("seed_groups", groups, f"None or an integer in [1, {MAX_COUNT:,}]")
            object.__setattr__(self, "seed_groups", int(groups))

    def resolved(self) -> PPOConfig:
        """This configuration with ``seed_groups`` decided (:func:`default_groups` where it is ``None``)."""
        return self if self.seed_groups is not None else replace(self, seed_groups=default_groups())

    @property
    def rollout_size(self) -> int:
        """Steps per update: ``n_envs · n_steps``."""
        return self.n_envs * self.n_steps

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PPOConfig:
        """The configuration of these hyperparameters over the defaults; an unknown name is a ``ValueError``."""
        names = [field.name for field in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown JAX PPO hyperparameters {unknown}; allowed: {names}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Every hyperparameter as plain JSON/YAML values (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"tanh": jnp.tanh, "relu": jax.nn.relu}


# ---------------------------------------------------------------------------------------------------------------------
# The networks


def _layer(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict[str, jax.Array]:
    kernel = jax.nn.initializers.orthogonal(scale)(key, (n_in, n_out), jnp.float32)
    return {"kernel": kernel, "bias": jnp.zeros(n_out, dtype=jnp.float32)}


def _mlp(key: jax.Array, sizes: list[int], out_scale: float) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    scales = [math.sqrt(2.0)] * (len(sizes) - 2) + [out_scale]
    return [_layer(k, n_in, n_out, s) for k, n_in, n_out, s in zip(keys, sizes[:-1], sizes[1:], scales, strict=True)]


def init_params(key: jax.Array, config: PPOConfig, obs_size: int, n_actions: int) -> Params:
    """New networks: orthogonal weights, zero biases, the log standard deviation at its start."""
    actor_key, critic_key = jax.random.split(key)
    hidden = list(config.hidden_sizes)
    log_std = config.log_std_schedule[0] if config.log_std_schedule is not None else config.log_std_init
    return {
        "actor": _mlp(actor_key, [obs_size, *hidden, n_actions], 0.01),
        "critic": _mlp(critic_key, [obs_size, *hidden, 1], 1.0),
        "log_std": jnp.full(n_actions, log_std, dtype=jnp.float32),
    }


def _forward(layers: list[dict[str, jax.Array]], x: jax.Array, activation: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for layer in layers[:-1]:
        x = act(x @ layer["kernel"] + layer["bias"])
    return x @ layers[-1]["kernel"] + layers[-1]["bias"]


def policy_mean(params: Params, obs: jax.Array, activation: str = "tanh") -> jax.Array:
    """The Gaussian policy's mean action of observations ``(..., d)``: ``(..., n_actions)``, not clipped."""
    return _forward(params["actor"], obs, activation)


def value(params: Params, obs: jax.Array, activation: str = "tanh") -> jax.Array:
    """The critic's value of observations ``(..., d)``: ``(...)``."""
    return _forward(params["critic"], obs, activation)[..., 0]


def gaussian_log_prob(action: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """The log-density of ``action`` under independent normals ``N(mean, exp(log_std)²)``, summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2.0 * math.pi), axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """The entropy of independent normals with these log standard deviations, summed."""
    return jnp.sum(log_std + 0.5 * (1.0 + math.log(2.0 * math.pi)))


# ---------------------------------------------------------------------------------------------------------------------
# The pieces of an update


def gae(
    rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array, gamma: float, gae_lambda: float
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and returns of a rollout, time on the first axis.

    ``dones[t]`` says that the episode ended with step ``t`` (so ``values[t + 1]`` belongs to another episode);
    ``last_value`` is the value of the observation after the last step. With ``δ_t = r_t + γ·V_{t+1}·(1 − d_t) − V_t``,
    ``A_t = δ_t + γ·λ·(1 − d_t)·A_{t+1}``; the returns are ``A_t + V_t``.
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    not_done = 1.0 - dones.astype(values.dtype)
    deltas = rewards + gamma * next_values * not_done - values

    def backwards(advantage: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, keep = step
        advantage = delta + gamma * gae_lambda * keep * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backwards, jnp.zeros_like(last_value), (deltas, not_done), reverse=True)
    return advantages, advantages + values


def clipped_surrogate(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip_range: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """PPO's policy loss ``−mean(min(ρ·A, clip(ρ, 1 − ε, 1 + ε)·A))``, with the approximate KL and the clip fraction.

    ``ρ = exp(log_prob − old_log_prob)``; the KL estimate is ``mean((ρ − 1) − log ρ)``; the clip fraction is the share
    of samples with ``|ρ − 1| > ε``.
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -jnp.mean(jnp.minimum(unclipped, clipped))
    approx_kl = jnp.mean((ratio - 1.0) - log_ratio)
    clip_fraction = jnp.mean((jnp.abs(ratio - 1.0) > clip_range).astype(jnp.float32))
    return loss, approx_kl, clip_fraction


class RunningMoments(NamedTuple):
    """A running mean and variance (SB3's ``RunningMeanStd``: it starts at mean 0, variance 1, weight 1e-4)."""

    mean: jax.Array
    var: jax.Array
    weight: jax.Array
    """The number of values merged in (plus the start's 1e-4)."""


def update_moments(moments: RunningMoments, batch: jax.Array) -> RunningMoments:
    """The moments with a batch of values merged in (the parallel algorithm of Chan et al.)."""
    batch_mean, batch_var, batch_count = jnp.mean(batch), jnp.var(batch), batch.size
    delta = batch_mean - moments.mean
    total = moments.weight + batch_count
    mean = moments.mean + delta * batch_count / total
    m2 = moments.var * moments.weight + batch_var * batch_count + delta**2 * moments.weight * batch_count / total
    return RunningMoments(mean, m2 / total, total)


# ---------------------------------------------------------------------------------------------------------------------
# Training


class TrainState(NamedTuple):
    """Everything one seed's training carries from update to update."""

    params: Params
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    updates: jax.Array
    """Updates done so far."""
    return_moments: RunningMoments
    """The running moments of the discounted return (reward scaling)."""
    discounted: jax.Array
    """Each environment's discounted return so far in its episode (reward scaling)."""
    episode_return: jax.Array
    """Each environment's undiscounted return so far in its episode."""


TRAIN_METRICS = (
    "policy_gradient_loss",
    "value_loss",
    "entropy_loss",
    "approx_kl",
    "clip_fraction",
    "loss",
    "explained_variance",
    "learning_rate",
    "std",
)
"""What an update reports of its optimisation: SB3's ``train/`` scalars, averaged over a chunk's updates."""

METRICS = (
    *TRAIN_METRICS,
    "episode_return_sum",
    "episodes",
    "abs_inventory",
    "spread",
    "captured",
    "penalty",
    "fills",
    "arrivals",
    "steps",
)
"""What :meth:`Trainer.train` sums over a chunk's updates (per seed); see :meth:`Trainer.summary`."""


_THREAD_SETTINGS = ("jax_debug_nans", "jax_debug_infs", "jax_disable_jit")
"""JAX's settings under which :meth:`Trainer.train` keeps to the calling thread (they may be made for it alone)."""


def default_groups() -> int:
    """How many groups of seeds train side by side when :attr:`PPOConfig.seed_groups` is ``None``.

    On a CPU backend, one per core this process may use: the cores it may run on, fewer where a container's CPU quota
    (Linux cgroups) allows fewer. On an accelerator one, where one program of all the seeds keeps the device busy.
    """
    if jax.default_backend() != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, math.ceil(quota)) if quota is not None else cores)


def cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPUs a Linux cgroup quota allows this process (``quota / period``), or ``None`` without a quota.

    Reads cgroup v2's ``cpu.max`` (``"200000 100000"``, or ``"max 100000"`` for none), else cgroup v1's
    ``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us`` (a quota of ``-1`` for none); anything unreadable is no
    quota.
    """
    try:
        with open(os.path.join(root, "cpu.max")) as file:
            quota_text, period_text = file.read().split()[:2]
    except (OSError, ValueError):
        try:
            with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as file:
                quota_text = file.read().strip()
            with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as file:
                period_text = file.read().strip()
        except OSError:
            return None
    try:
        quota, period = float(quota_text), float(period_text)
    except ValueError:  # "max": no quota
        return None
    return quota / period if quota > 0 and period > 0 else None


class Trainer:
    """PPO on one JAX environment for a fixed budget, many seeds at once.

    Args:
        env: a gymnax-style environment (``reset``, ``step``, ``observation_space``, ``action_space``).
        env_params: its parameters (``env.default_params``).
        config: the hyperparameters.
        total_timesteps: the budget per seed; the schedules (learning rate, log standard deviation) run over
            ``ceil(total_timesteps / rollout_size)`` updates.

    ``config.seed_groups`` is decided once, here (:meth:`PPOConfig.resolved`); :attr:`config` holds the number used.
    """

    def __init__(self, env: Any, env_params: Any, config: PPOConfig, total_timesteps: int) -> None:
        config = config.resolved()
        self.env, self.env_params, self.config = env, env_params, config
        self.total_updates = max(1, math.ceil(total_timesteps / config.rollout_size))
        self.obs_size = int(np.prod(env.observation_space(env_params).shape))
        action_space = env.action_space(env_params)
        self.n_actions = int(np.prod(action_space.shape))
        self.action_low = jnp.asarray(action_space.low, dtype=jnp.float32)
        self.action_high = jnp.asarray(action_space.high, dtype=jnp.float32)
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), optax.scale_by_adam(eps=config.adam_eps)
        )
        self._init = jax.jit(jax.vmap(self._init_one))
        self._train = jax.jit(jax.vmap(self._train_one, in_axes=(0, None)))

    def init(self, seeds: list[int]) -> TrainState:
        """New training states, one per seed (stacked on a leading axis); ``ValueError`` without a seed."""
        if not seeds:
            raise ValueError("seeds=[] is invalid: training needs at least one seed")
        keys = jnp.stack([jax.random.PRNGKey(seed) for seed in seeds])
        return self._init(keys)

    def train(self, state: TrainState, n_updates: int) -> tuple[TrainState, dict[str, np.ndarray]]:
        """``n_updates`` more updates of every seed; the new state and the chunk's metric sums (per seed).

        The seeds are split into ``config.seed_groups`` contiguous groups (as equal as they can be; groups of two
        sizes compile a program each), one jitted call each, the calls running side by side on threads. JAX's
        settings made for the calling thread alone (``with jax.debug_nans(True):``, ``with jax.default_device(...):``
        and the like) do not reach those threads: with ``debug_nans``, ``debug_infs`` or ``disable_jit`` on, the
        seeds train as one group on the calling thread; for the others, set ``seed_groups=1`` or make the setting
        with ``jax.config.update``, which every thread sees.
        """
        count = jnp.asarray(n_updates, dtype=jnp.int32)
        n_seeds = int(state.updates.shape[0])
        n_groups = min(n_seeds, self.config.seed_groups or 1)
        if any(getattr(jax.config, name) for name in _THREAD_SETTINGS):
            n_groups = 1
        if n_groups == 1:
            new_state, sums = self._train(state, count)
            return new_state, {name: np.asarray(sums[name]) for name in METRICS}
        bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(n_seeds), n_groups)])
        parts = [jax.tree.map(lambda x, a=a, b=b: x[a:b], state) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

        def run(part: TrainState) -> Any:
            return jax.block_until_ready(self._train(part, count))

        with ThreadPoolExecutor(max_workers=n_groups) as pool:
            results = list(pool.map(run, parts))
        new_state = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[result[0] for result in results])
        sums = {name: np.concatenate([np.asarray(result[1][name]) for result in results]) for name in METRICS}
        return new_state, sums

    def _init_one(self, key: jax.Array) -> TrainState:
        params_key, reset_key, key = jax.random.split(key, 3)
        params = init_params(params_key, self.config, self.obs_size, self.n_actions)
        n = self.config.n_envs
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(reset_key, n), self.env_params)
        one = jnp.ones(())
        return TrainState(
            params=params,
            opt_state=self.optimizer.init(params),
            env_state=env_state,
            obs=obs,
            key=key,
            updates=jnp.zeros((), dtype=jnp.int32),
            return_moments=RunningMoments(0.0 * one, one, 1e-4 * one),
            discounted=jnp.zeros(n),
            episode_return=jnp.zeros(n),
        )

    def _log_std(self, updates: jax.Array) -> jax.Array | None:
        schedule = self.config.log_std_schedule
        if schedule is None:
            return None
        done = jnp.clip(updates / self.total_updates, 0.0, 1.0)
        return schedule[0] + (schedule[1] - schedule[0]) * done

    def _train_one(self, state: TrainState, n_updates: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        def body(_: jax.Array, carry: tuple[TrainState, dict[str, jax.Array]]) -> Any:
            state, sums = carry
            state, metrics = self._update(state)
            return state, {name: sums[name] + metrics[name] for name in METRICS}

        zeros = {name: jnp.zeros(()) for name in METRICS}
        return jax.lax.fori_loop(0, n_updates, body, (state, zeros))

    def _rollout(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array], jax.Array]:
        config, env, env_params = self.config, self.env, self.env_params
        activation = config.activation
        params = state.params

        def step(carry: TrainState, _: None) -> tuple[TrainState, dict[str, jax.Array]]:
            key, action_key, step_key = jax.random.split(carry.key, 3)
            mean = policy_mean(params, carry.obs, activation)
            noise = jax.random.normal(action_key, mean.shape)
            action = mean + jnp.exp(params["log_std"]) * noise
            log_prob = gaussian_log_prob(action, mean, params["log_std"])
            v = value(params, carry.obs, activation)
            clipped = jnp.clip(action, self.action_low, self.action_high)
            keys = jax.random.split(step_key, config.n_envs)
            obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                keys, carry.env_state, clipped, env_params
            )
            reward = reward.astype(jnp.float32)
            done = jnp.logical_or(terminated, truncated)
            # Reward scaling as VecNormalize: the running discounted return's moments, then reward / its std.
            discounted = carry.discounted * config.gamma + reward
            moments = carry.return_moments
            scaled = reward
            if config.normalize_reward:
                moments = update_moments(moments, discounted)
                scaled = jnp.clip(reward / jnp.sqrt(moments.var + 1e-8), -config.clip_reward, config.clip_reward)
            # A time limit is not the end of the task: its last reward is bootstrapped with the final state's value.
            final_obs = info.get("final_observation", obs)
            cut = jnp.logical_and(truncated, jnp.logical_not(terminated))
            scaled = scaled + config.gamma * cut * jax.lax.stop_gradient(value(params, final_obs, activation))
            episode_return = carry.episode_return + reward
            transition = {
                "obs": carry.obs,
                "action": action,
                "log_prob": log_prob,
                "value": v,
                "reward": scaled,
                "done": done,
                "finished_return": jnp.where(done, episode_return, 0.0),
                "finished": done.astype(jnp.float32),
                **_market_metrics(info),
            }
            new = carry._replace(
                env_state=env_state,
                obs=obs,
                key=key,
                return_moments=moments,
                discounted=jnp.where(done, 0.0, discounted),
                episode_return=jnp.where(done, 0.0, episode_return),
            )
            return new, transition

        state, rollout = jax.lax.scan(step, state, None, length=config.n_steps)
        last_value = value(params, state.obs, activation)
        return state, rollout, last_value

    def _loss(self, params: Params, batch: dict[str, jax.Array], fixed_log_std: bool) -> Any:
        config = self.config
        log_std = jax.lax.stop_gradient(params["log_std"]) if fixed_log_std else params["log_std"]
        mean = policy_mean(params, batch["obs"], config.activation)
        log_prob = gaussian_log_prob(batch["action"], mean, log_std)
        advantages = batch["advantage"]
        if config.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (jnp.std(advantages, ddof=1) + 1e-8)
        policy_loss, approx_kl, clip_fraction = clipped_surrogate(
            log_prob, batch["log_prob"], advantages, config.clip_range
        )
        value_loss = jnp.mean((batch["return"] - value(params, batch["obs"], config.activation)) ** 2)
        entropy_loss = -gaussian_entropy(log_std)
        loss = policy_loss + config.ent_coef * entropy_loss + config.vf_coef * value_loss
        return loss, (policy_loss, value_loss, entropy_loss, approx_kl, clip_fraction)

    def _update(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        config = self.config
        log_std = self._log_std(state.updates)
        if log_std is not None:  # held on its schedule: set before the rollout, as SB3's LogStdSchedule does
            state = state._replace(params={**state.params, "log_std": jnp.full(self.n_actions, log_std)})
        state, rollout, last_value = self._rollout(state)
        advantages, returns = gae(
            rollout["reward"], rollout["value"], rollout["done"], last_value, config.gamma, config.gae_lambda
        )
        size = config.rollout_size
        flat = {
            "obs": rollout["obs"].reshape(size, -1),
            "action": rollout["action"].reshape(size, -1),
            "log_prob": rollout["log_prob"].reshape(size),
            "advantage": advantages.reshape(size),
            "return": returns.reshape(size),
        }
        # The learning rate of SB3's progress after this rollout's steps.
        learning_rate = learning_rate_at(config.learning_rate, (state.updates + 1) / self.total_updates)
        grad = jax.grad(self._loss, has_aux=True)
        n_minibatches = size // config.batch_size

        def minibatch(carry: tuple[Params, Any], batch: dict[str, jax.Array]) -> Any:
            params, opt_state = carry
            grads, aux = grad(params, batch, log_std is not None)
            steps, opt_state = self.optimizer.update(grads, opt_state, params)
            params = jax.tree.map(lambda p, s: p - learning_rate * s, params, steps)
            loss = aux[0] + config.ent_coef * aux[2] + config.vf_coef * aux[1]
            return (params, opt_state), jnp.stack([loss, *aux])

        def epoch(carry: tuple[Params, Any, jax.Array], _: None) -> Any:
            params, opt_state, key = carry
            key, shuffle_key = jax.random.split(key)
            order = jnp.argsort(jax.random.uniform(shuffle_key, (size,)))  # a uniformly random order
            batches = jax.tree.map(lambda x: x[order].reshape(n_minibatches, config.batch_size, *x.shape[1:]), flat)
            (params, opt_state), losses = jax.lax.scan(minibatch, (params, opt_state), batches)
            return (params, opt_state, key), losses

        key, epochs_key = jax.random.split(state.key)
        (params, opt_state, _), losses = jax.lax.scan(
            epoch, (state.params, state.opt_state, epochs_key), None, length=config.n_epochs
        )
        losses = losses.reshape(-1, losses.shape[-1]).mean(axis=0)
        residual = jnp.var(flat["return"] - rollout["value"].reshape(size))
        explained = 1.0 - residual / jnp.maximum(jnp.var(flat["return"]), 1e-12)
        metrics = {
            "loss": losses[0],
            "policy_gradient_loss": losses[1],
            "value_loss": losses[2],
            "entropy_loss": losses[3],
            "approx_kl": losses[4],
            "clip_fraction": losses[5],
            "explained_variance": explained,
            "learning_rate": learning_rate,
            "std": jnp.mean(jnp.exp(params["log_std"])),
            "episode_return_sum": jnp.sum(rollout["finished_return"]),
            "episodes": jnp.sum(rollout["finished"]),
            **{name: jnp.sum(rollout[name]) for name in _MARKET_SUMS},
        }
        new_state = state._replace(params=params, opt_state=opt_state, key=key, updates=state.updates + 1)
        return new_state, metrics

    @staticmethod
    def summary(sums: dict[str, np.ndarray], n_updates: int, seed_index: int = 0) -> dict[str, float]:
        """A chunk's metrics for one seed: the losses' means per update, the episodes' mean return, market means.

        Keys: the loss terms, ``explained_variance``, ``learning_rate`` and ``std`` (the last update's schedule
        values averaged over the chunk), ``ep_rew_mean`` (NaN without a finished episode), and per environment step
        ``mean_abs_inventory``, ``quoted_spread``, ``spread_captured``, ``inventory_penalty``, and ``fill_rate``
        (fills per arriving trader; NaN without arrivals).
        """
        values = {name: float(total[seed_index]) for name, total in sums.items()}
        per_update = {name: values[name] / n_updates for name in TRAIN_METRICS}
        episodes, steps = values["episodes"], max(values.get("steps", 0.0), 0.0)
        result = {
            **per_update,
            "ep_rew_mean": values["episode_return_sum"] / episodes if episodes else math.nan,
        }
        if steps:
            result.update(
                mean_abs_inventory=values["abs_inventory"] / steps,
                quoted_spread=values["spread"] / steps,
                spread_captured=values["captured"] / steps,
                inventory_penalty=values["penalty"] / steps,
                fill_rate=values["fills"] / values["arrivals"] if values["arrivals"] else math.nan,
            )
        return result


_MARKET_SUMS = ("abs_inventory", "spread", "captured", "penalty", "fills", "arrivals", "steps")


def _market_metrics(info: dict[str, Any]) -> dict[str, jax.Array]:
    """What the market maker did in a step, from the env's ``info`` (zeros where the env does not say)."""
    needed = ("inventory", "bid", "ask", "spread_captured", "inventory_penalty", "fill_size", "trader_side")
    if not all(name in info for name in needed):
        zero = jnp.zeros(())
        return dict.fromkeys(_MARKET_SUMS, zero)
    inventory = jnp.asarray(info["inventory"], dtype=jnp.float32)
    return {
        "abs_inventory": jnp.abs(inventory),
        "spread": jnp.asarray(info["ask"] - info["bid"], dtype=jnp.float32),
        "captured": jnp.asarray(info["spread_captured"], dtype=jnp.float32),
        "penalty": jnp.asarray(info["inventory_penalty"], dtype=jnp.float32),
        "fills": (jnp.asarray(info["fill_size"]) > 0).astype(jnp.float32),
        "arrivals": (jnp.asarray(info["trader_side"]) != 0).astype(jnp.float32),
        "steps": jnp.ones_like(inventory),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Acting, saving and loading


def deterministic_actions(
    params: Params, obs: np.ndarray, activation: str = "tanh", normalized: bool = True
) -> np.ndarray:
    """The policy's mean actions of a batch of observations (the deterministic policy).

    ``normalized``: the actions are the ``[-1, 1]`` box's, where they are clipped; raw offsets are returned as they
    are (the environment clips offsets to ``[delta_min, delta_max]``).
    """
    mean = np.asarray(_mean_jit(params, jnp.asarray(obs, dtype=jnp.float32), activation), dtype=np.float64)
    return np.clip(mean, -1.0, 1.0) if normalized else mean


_mean_jit = jax.jit(policy_mean, static_argnames="activation")


def _leaf_name(path: tuple[Any, ...]) -> str:
    return "/".join(str(getattr(part, "key", getattr(part, "idx", part))) for part in path)


def named_leaves(params: Params) -> dict[str, np.ndarray]:
    """The parameters as named arrays: ``actor/0/kernel``, ``critic/2/bias``, ``log_std`` and so on."""
    return {_leaf_name(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def _template(config: PPOConfig, obs_size: int, n_actions: int) -> Any:
    return jax.eval_shape(lambda key: init_params(key, config, obs_size, n_actions), jax.random.PRNGKey(0))


def expected_shapes(config: PPOConfig, obs_size: int, n_actions: int) -> dict[str, tuple[int, ...]]:
    """The named arrays' shapes of networks with these hyperparameters (one seed)."""
    leaves = jax.tree_util.tree_flatten_with_path(_template(config, obs_size, n_actions))[0]
    return {_leaf_name(path): tuple(leaf.shape) for path, leaf in leaves}


def params_from_named(named: dict[str, np.ndarray], config: PPOConfig, obs_size: int, n_actions: int) -> Params:
    """The parameter tree of these hyperparameters filled with the named arrays (checked names, shapes, finiteness).

    Arrays may carry one leading seed axis (the same length for all). ``ValueError`` for anything else.
    """
    shapes = expected_shapes(config, obs_size, n_actions)
    if set(named) != set(shapes):
        missing, extra = sorted(set(shapes) - set(named)), sorted(set(named) - set(shapes))
        raise ValueError(f"the arrays do not fit the network of the hyperparameters (missing {missing}, extra {extra})")
    leading: set[tuple[int, ...]] = set()
    for name, shape in shapes.items():
        array = named[name]
        fits = array.ndim in (len(shape), len(shape) + 1) and array.shape[array.ndim - len(shape) :] == shape
        if array.dtype.kind != "f" or not fits:
            raise ValueError(f"array {name} has shape {array.shape} ({array.dtype}), the network needs {shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"array {name} holds values that are not finite")
        leading.add(array.shape[: array.ndim - len(shape)])
    if len(leading) != 1:
        raise ValueError(f"the arrays disagree on their number of seeds ({sorted(leading)})")
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(_template(config, obs_size, n_actions))
    names = [_leaf_name(path) for path, _ in leaves_with_paths]
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(named[name], dtype=jnp.float32) for name in names])
