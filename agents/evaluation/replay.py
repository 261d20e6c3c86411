"""Replaying policies over a recorded market (``MODEL.md`` §10.5–10.6): the report of one replay, and a figure.

:func:`replay_policy` plays any one-market-maker policy (:class:`agents.policies.Policy`: the DP's tables, the
heuristics, the closed forms, a trained agent through :mod:`agents.policies.learned`) over a window of a
:class:`~mm_env.data.steps.SteppedTape` in :class:`mm_env.data.replay.ReplayEnv`, and returns a
:class:`ReplayReport`: the spread captured, both rewards, the P&L in currency, the fills, the volume, the steps with
fills on both sides and the inventory, plus the path for a figure (:func:`replay_figure`).

:class:`UnitSizeCompanion` is Guéant–Lehalle–Fernandez-Tapia applied to a model with other sizes than one lot
through its unit-size companion (``MODEL.md`` §10.6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.policies.base import Policy
from agents.policies.closed_forms import GueantLehalleFernandezTapia
from mm_env.config import EnvConfig
from mm_env.data.replay import ReplayConfig, ReplayTotals, replay_initial_state, replay_step
from mm_env.data.steps import SteppedTape
from mm_env.dynamics import MarketState
from mm_env.params import MarketParams

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ReplayPath", "ReplayReport", "UnitSizeCompanion", "replay_figure", "replay_policy", "replay_windows"]


@dataclass(frozen=True)
class ReplayPath:
    """One replay step by step: arrays over the window's steps.

    Attributes:
        time: ``t_n`` of each step's start and the window's end (exchange seconds), ``T + 1`` values.
        mid: the recorded mid ``P_n`` (ticks), ``T + 1`` values.
        bid: the bid price quoted in each step (ticks), ``T`` values.
        ask: the ask price quoted in each step (ticks), ``T`` values.
        inventory: the inventory at each step's start and at the end (lots), ``T + 1`` values.
        pnl: the mark-to-market P&L ``X + I·P`` in quote currency, ``T + 1`` values.
    """

    time: np.ndarray
    mid: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    inventory: np.ndarray
    pnl: np.ndarray


@dataclass(frozen=True)
class ReplayReport:
    """What one replay of a policy gave (``MODEL.md`` §10.5 step 6).

    Money is in model units (tick·lot) except ``pnl``, which is in quote currency.

    Attributes:
        policy: the policy's name.
        queue: the queue rule (``"first"`` or ``"strict"``).
        prices: the price rule (``"tick"`` or ``"continuous"``).
        start: the window's first tape step.
        T: the window's length in steps.
        captured: the spread captured, ``Σ Q'·δ'`` (tick·lot).
        spread_reward: the return under the spread reward (tick·lot).
        mtm_reward: the return under the mark-to-market reward (tick·lot).
        pnl: the mark-to-market wealth change without the penalty, in quote currency.
        fills: how many market orders filled a quote.
        volume: lots traded.
        both_sided_steps: steps with fills on both sides.
        final_inventory: the inventory at the end (lots).
        max_abs_inventory: the largest ``|I|`` over the window.
        path: the replay step by step (:class:`ReplayPath`).
    """

    policy: str
    queue: str
    prices: str
    start: int
    T: int
    captured: float
    spread_reward: float
    mtm_reward: float
    pnl: float
    fills: int
    volume: int
    both_sided_steps: int
    final_inventory: int
    max_abs_inventory: int
    path: ReplayPath = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """Every figure but the path, as plain Python values (for JSON)."""
        values = asdict(self)
        values.pop("path")
        return values


def replay_policy(
    policy: Policy,
    tape: SteppedTape,
    params: MarketParams,
    *,
    start: int = 0,
    queue: str = "first",
    prices: str = "tick",
) -> ReplayReport:
    """Replay ``policy`` over the window ``[start, start + params.T)`` of ``tape``.

    ``params`` is the model the policy quotes for (for example the calibrated one): its ``T`` is the window's length,
    and its ``I_max``, ``delta_min``, ``delta_max``, ``lam`` and ``alpha`` apply to the replay. Both rewards are
    reported whatever ``params.reward`` says. The steps are those of :class:`mm_env.data.replay.ReplayEnv`
    (:func:`~mm_env.data.replay.replay_step`); the policy quotes from the same state, as it would in the env.
    ``ValueError`` names an invalid argument.
    """
    if not isinstance(policy, Policy):
        raise ValueError(f"policy={policy!r} is invalid: must be a Policy (agents.policies)")
    if not isinstance(params, MarketParams):
        raise ValueError(f"params={params!r} is invalid: must be a MarketParams")
    config = ReplayConfig(tape, EnvConfig(params, normalize_actions=False), queue, prices, start)
    return _replay(policy, config, start)


def _replay(policy: Policy, config: ReplayConfig, start: int) -> ReplayReport:
    tape, params, queue, prices = config.tape, config.params, config.queue, config.prices
    state = replay_initial_state(config, start)
    T, low, high, currency = params.T, params.delta_min, params.delta_max, config.currency
    times = tape.t0 + (start + np.arange(T + 1)) * tape.units.dt
    mid, inventory, cash = np.empty(T + 1), np.empty(T + 1), np.empty(T + 1)
    bid, ask = np.empty(T), np.empty(T)
    mid[0], inventory[0], cash[0] = state.mid, state.inventory, state.cash
    totals = ReplayTotals()
    # One state of a batch of one, written in place step by step (policies quote batches and keep nothing).
    arrays = [np.zeros(1) for _ in range(len(state))]
    batch = MarketState(*arrays)
    for t in range(T):
        for array, value in zip(arrays, state, strict=True):
            array[0] = value
        quoted = policy.quote(batch, params)
        bid_offset = min(max(float(np.asarray(quoted[0]).reshape(-1)[0]), low), high)
        ask_offset = min(max(float(np.asarray(quoted[1]).reshape(-1)[0]), low), high)
        if not (math.isfinite(bid_offset) and math.isfinite(ask_offset)):
            raise ValueError(f"{policy.name} quoted {quoted!r} at step {t}: offsets must be finite")
        state, outcome = replay_step(config, start, state, bid_offset, ask_offset)
        totals.add(outcome, int(state.inventory))
        bid[t], ask[t] = outcome.bid, outcome.ask
        mid[t + 1], inventory[t + 1], cash[t + 1] = state.mid, state.inventory, state.cash
    assert outcome.terminated
    pnl = (cash + inventory * mid) * currency
    return ReplayReport(
        policy=policy.name,
        queue=queue,
        prices=prices,
        start=start,
        T=T,
        captured=totals.captured,
        spread_reward=totals.spread_reward,
        mtm_reward=totals.mtm_reward,
        pnl=float(pnl[-1]),
        fills=totals.fills,
        volume=totals.volume,
        both_sided_steps=totals.both_sided,
        final_inventory=int(state.inventory),
        max_abs_inventory=totals.max_abs_inventory,
        path=ReplayPath(times, mid, bid, ask, inventory, pnl),
    )


def replay_windows(
    policy: Policy, tape: SteppedTape, params: MarketParams, *, queue: str = "first", prices: str = "tick"
) -> list[ReplayReport]:
    """Replay ``policy`` over every whole window of ``params.T`` steps, one after the other: ``⌊N/T⌋`` of them."""
    if not isinstance(policy, Policy):
        raise ValueError(f"policy={policy!r} is invalid: must be a Policy (agents.policies)")
    if not isinstance(params, MarketParams):
        raise ValueError(f"params={params!r} is invalid: must be a MarketParams")
    config = ReplayConfig(tape, EnvConfig(params, normalize_actions=False), queue, prices)
    return [_replay(policy, config, start) for start in range(0, tape.N - params.T + 1, params.T)]


class UnitSizeCompanion(Policy):
    """Guéant–Lehalle–Fernandez-Tapia on the unit-size companion of a model with other sizes (``MODEL.md`` §10.6).

    With the mean size ``m̄ = E[Q]``, inventory is counted in units of ``m̄``: ``I_u = round(I/m̄)``,
    ``I_max,u = ⌊I_max/m̄⌋`` (at least 1) and ``λ_u = λ·m̄``, with the same ``π``, ``A``, ``k`` and ``p_buy``, unit
    sizes and no momentum. The quotes are GLFT's at ``I_u`` in the companion. With unit sizes and no momentum this is
    GLFT itself.
    """

    def __init__(self) -> None:
        self.name = "GLFT (unit-size companion)"
        self._glft = GueantLehalleFernandezTapia()
        self._cache: tuple[MarketParams, MarketParams, float] | None = None

    def companion(self, params: MarketParams) -> tuple[MarketParams, float]:
        """The unit-size companion of ``params`` and the mean size ``m̄`` (``ValueError`` where GLFT cannot apply)."""
        if self._cache is not None and self._cache[0] == params:
            return self._cache[1], self._cache[2]
        mean = float(np.dot(params.flow.sizes, params.flow.probs))
        units = max(1, math.floor(params.I_max / mean))
        model = params.replace(sizes=(1,), size_probs=None, I_max=units, lam=params.lam * mean, momentum=0.0)
        self._glft.check(model)
        self._cache = (params, model, mean)
        return model, mean

    def quote(self, state: MarketState, params: MarketParams) -> tuple[np.ndarray, np.ndarray]:
        """GLFT's offsets at the inventory counted in mean sizes."""
        model, mean = self.companion(params)
        units = np.clip(np.rint(np.asarray(state.inventory, dtype=np.float64) / mean), -model.I_max, model.I_max)
        return self._glft.offsets(np.asarray(state.t), units, model)


def replay_figure(reports: Sequence[ReplayReport], title: str = "") -> Figure:
    """The replayed window: the mid with each policy's quotes, its inventory and its P&L in currency.

    One colour per policy. The first replay of each policy draws its quotes, its inventory and its P&L (solid); its
    replays under other queue rules add their P&L, dashed.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not reports:
        raise ValueError("reports is empty: nothing to draw")
    figure = Figure(figsize=(14, 9), dpi=100)
    figure.subplots_adjust(left=0.07, right=0.76, bottom=0.06, top=0.94, hspace=0.08)  # the legend on the right
    prices, inventory, pnl = figure.subplots(3, 1, sharex=True)
    first = reports[0].path
    seconds = first.time - first.time[0]
    prices.plot(seconds, first.mid, color="black", lw=1.6, drawstyle="steps-post", zorder=3)
    palette = [colormaps["tab20"](i) for i in range(20)]
    seen: dict[str, tuple[Any, str]] = {}
    for report in reports:
        path = report.path
        if report.policy in seen:
            pnl.plot(seconds, path.pnl, color=seen[report.policy][0], lw=0.9, ls="--")
            continue
        color = palette[(2 * len(seen)) % 20 + (len(seen) // 10) % 2]
        seen[report.policy] = (color, report.queue)
        # The quotes hold for a whole step: steps drawn from each step's start (the last one repeated to the end).
        prices.plot(seconds, np.append(path.bid, path.bid[-1]), color=color, lw=0.7, drawstyle="steps-post")
        prices.plot(seconds, np.append(path.ask, path.ask[-1]), color=color, lw=0.7, drawstyle="steps-post")
        inventory.step(seconds, path.inventory, where="post", color=color, lw=1.1)
        pnl.plot(seconds, path.pnl, color=color, lw=1.3)
    prices.set_ylabel("mid (black) and quotes (ticks)")
    prices.ticklabel_format(axis="y", useOffset=False)
    inventory.axhline(0.0, color="grey", lw=0.6)
    inventory.set_ylabel("inventory (lots)")
    pnl.axhline(0.0, color="grey", lw=0.6)
    pnl.set_ylabel("P&L (quote currency)")
    pnl.set_xlabel("seconds into the window")
    handles = [Line2D([], [], color=color, lw=2) for color, _ in seen.values()]
    labels = list(seen)
    queues = sorted({report.queue for report in reports}, key=[r.queue for r in reports].index)
    if len(queues) > 1:
        handles += [Line2D([], [], color="grey"), Line2D([], [], color="grey", ls="--")]
        labels += [f"P&L, queue {queues[0]}", "P&L, queue " + " / ".join(queues[1:])]
    figure.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.77, 0.94), fontsize="small", frameon=False)
    figure.suptitle(title or "replay: mid and quotes, inventory, P&L")
    return figure
