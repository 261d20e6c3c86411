"""Exact judgement of joint Markov policies of two market makers.

Moments of each market maker's return, best responses, the certificates of §8, and the collusion index.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from agents.exact.game.model import Stage, Tree, game_unsolvable_reason
from mm_env.params import CompetitionParams

# --------------------------------------------------------------------------------------------------------------------
# results


class JointEvaluation(NamedTuple):
    """Exact moments of each market maker's episode return under a joint Markov policy, from ``(0, 0, 0)``."""

    mean: np.ndarray
    """``(2,)``."""
    std: np.ndarray
    """``(2,)``."""
    value: np.ndarray
    """``E[return from t | I_1, I_2]`` per market maker, ``(2, T + 1, N, N)``."""


class BestResponse(NamedTuple):
    """One market maker's exact best response to the other's fixed tables."""

    player: int
    bid: np.ndarray
    """Joint tables ``(2, T, N, N)``: the player's best response, the other's tables unchanged (on the grid)."""
    ask: np.ndarray
    value: np.ndarray
    """The player's value of its best response, ``(T + 1, N, N)``."""
    start_value: float
    """Its value at ``(0, 0, 0)``."""


class NashConv(NamedTuple):
    """The two certificates of ``MODEL.md`` §8 for a joint policy."""

    nash_conv: float
    """``Σ_j [V_j(best response_j) − V_j(policy)]`` at ``(0, 0, 0)``: zero for a Nash equilibrium from the start."""
    largest_gain: float
    """The largest ``V_j(best response_j) − V_j(policy)`` over every market maker and state ``(t, I_1, I_2)``: zero
    for a Markov perfect equilibrium."""
    largest_gain_at: tuple[int, int, int, int]
    """Where: ``(j, t, I_1, I_2)``."""
    policy_value: np.ndarray
    """``V_j(policy)`` at the start, ``(2,)``."""
    best_response_value: np.ndarray
    """``V_j(best response_j)`` at the start, ``(2,)``."""


# --------------------------------------------------------------------------------------------------------------------
# evaluation and best responses


def check_tables(tree: Tree, bid: Any, ask: Any) -> tuple[np.ndarray, np.ndarray]:
    """Joint tables ``(2, T, N, N)`` as each market maker's ticks per side, ``(T, 2, N²)`` each (``ValueError``)."""
    shape = tree.table_shape()
    bid, ask = np.asarray(bid, dtype=np.float64), np.asarray(ask, dtype=np.float64)
    if bid.shape != shape or ask.shape != shape:
        raise ValueError(
            f"joint tables must have shape (2, T, N, N) = {shape}, indexed [j, t, I_1 + I_max, I_2 + I_max]; got "
            f"{bid.shape} and {ask.shape}"
        )
    # Per side index (ask, bid) in whole ticks: (2 players, T, 2 sides, N²).
    n2 = tree.n_levels**2
    ticks = np.stack([tree.ticks(ask).reshape(2, tree.T, n2), tree.ticks(bid).reshape(2, tree.T, n2)], axis=2)
    return ticks[0], ticks[1]


def moments(tree: Tree, ticks: tuple[np.ndarray, np.ndarray], second: bool) -> tuple[np.ndarray, np.ndarray]:
    """Means (and second moments) of both market makers' returns from every state, ``(2, T + 1, N²)`` each.

    Per side the trader goes to the best quote (a tie: to either with probability ½), accepts with ``p(δ°)``, and
    every size leads to a next state; the executing market maker also earns ``Q'·δ°``. Second moments add the
    variance of the zero-mean mid moves that the rewards see, as in :func:`agents.exact.dp.evaluate_tables`.
    """
    n2 = tree.n_levels**2
    mean = np.empty((2, tree.T + 1, n2))
    moment = np.empty_like(mean)
    mean[:, tree.T] = tree.terminal
    moment[:, tree.T] = tree.terminal**2
    empty = np.zeros((2, 2, n2))
    stage = Stage(tree, tree.mean_executed, empty, empty, tree.can)
    for t in range(tree.T - 1, -1, -1):
        value, value2 = mean[:, t + 1], moment[:, t + 1]
        share0, share1, best = stage.shares(ticks[0][t], ticks[1][t])
        p = stage.prob(best)
        offset = best * tree.tick
        filled = (p * share0, p * share1)
        declined = 1.0 - filled[0] - filled[1]
        for j in range(2):
            first = declined * tree.stay(value, j)
            if second:
                stay_reward = tree.stay_reward[j]
                squares = declined * (stay_reward * (stay_reward + 2.0 * value[j]) + value2[j] + tree.stay_var[j])
            for w in range(2):
                after = value[j][tree.next_state[w]]
                outcome = tree.fill_mean[w, j] + np.einsum("q,qsn->sn", tree.probs, after)
                if w == j:
                    outcome = outcome + offset * tree.mean_executed[w]
                first = first + filled[w] * outcome
                if second:
                    after2 = value2[j][tree.next_state[w]]
                    outcome2 = (
                        tree.fill_square[w, j]
                        + 2.0 * np.einsum("qsn,qsn->sn", tree.weighted_reward[w, j], after)
                        + np.einsum("q,qsn->sn", tree.probs, after2)
                    )
                    if w == j:
                        # r = base + Q'·δ: (base + Q'·δ)² + 2·(base + Q'·δ)·V' expands into t-independent sums.
                        outcome2 = outcome2 + offset * tree.fill_cross[w] + offset**2 * tree.executed_square[w]
                        outcome2 = outcome2 + 2.0 * offset * np.einsum("qsn,qsn->sn", tree.weighted_executed[w], after)
                    squares = squares + filled[w] * outcome2
            mean[j, t] = tree.combine(value, j, first)
            if second:
                idle = tree.idle_reward[j]
                moment[j, t] = tree.arrive[0] * squares[0] + tree.arrive[1] * squares[1]
                if tree.idle > 0.0:
                    moment[j, t] += tree.idle * (idle * (idle + 2.0 * value[j]) + value2[j] + tree.idle_var[j])
    return mean, moment


def reachable(tree: Tree, ticks: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The states that the joint policy reaches with positive probability from ``(0, 0, 0)``, ``(T, N²)`` bools.

    A forward pass over supports, not probabilities, so no tiny probability underflows to "unreached". From a state
    the next step keeps it (no trader, or the best quote refused) or moves it by a fill: of each market maker that
    executes at the best quote (both on a tie), of each size with positive probability.
    """
    n2 = tree.n_levels**2
    reached = np.zeros((tree.T, n2), dtype=bool)
    reached[0, start_index(tree)] = True
    empty = np.zeros((2, 2, n2))
    stage = Stage(tree, tree.mean_executed, empty, empty, tree.can)
    sides = np.flatnonzero(tree.arrive > 0.0)
    sizes = np.flatnonzero(tree.probs > 0.0)
    for t in range(tree.T - 1):
        here = reached[t]
        share0, share1, best = stage.shares(ticks[0][t], ticks[1][t])
        odds = stage.prob(best)
        refused = (share0 + share1 == 0.0) | (odds < 1.0)  # (2, N²): nobody can trade, or the quote may be refused
        stays = np.full(n2, tree.quiet) | refused[sides].any(axis=0)
        after = reached[t + 1]
        after |= here & stays
        for w, share in enumerate((share0, share1)):
            for s in sides:
                source = here & (share[s] > 0.0) & (odds[s] > 0.0)
                after[tree.next_state[w][np.ix_(sizes, [s], np.flatnonzero(source))].ravel()] = True
    return reached


def start_index(tree: Tree) -> int:
    """The flat index of the state ``(I_1, I_2) = (0, 0)``."""
    return tree.I_max * tree.n_levels + tree.I_max


def evaluate_joint(params: CompetitionParams, bid: Any, ask: Any) -> JointEvaluation | None:
    """Exact mean and standard deviation of each market maker's episode return under a joint Markov policy.

    Args:
        params: the game.
        bid: bid offsets ``(2, T, N, N)``, indexed ``[j, t, I_1 + I_max, I_2 + I_max]``; rounded to the tick grid
            as the environment rounds them.
        ask: ask offsets, the same shape.

    Returns:
        The moments from ``(0, 0, 0)`` and the value tables, or ``None`` when :func:`game_unsolvable_reason` says
        the tools do not cover the game.

    Raises:
        ValueError: on tables of the wrong shape.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = Tree(params)
    mean, moment = moments(tree, check_tables(tree, bid, ask), second=True)
    start = start_index(tree)
    expected = mean[:, 0, start]
    std = np.sqrt(np.maximum(moment[:, 0, start] - expected**2, 0.0))
    return JointEvaluation(expected.copy(), std, mean.reshape(2, tree.T + 1, tree.n_levels, tree.n_levels))


def best_response_ticks(tree: Tree, ticks: tuple[np.ndarray, np.ndarray], player: int) -> tuple[np.ndarray, np.ndarray]:
    """The player's best-response ticks ``(T, 2, N²)`` and values ``(T + 1, N²)`` against the other's ticks."""
    n2 = tree.n_levels**2
    value = np.zeros((2, tree.T + 1, n2))
    value[player, tree.T] = tree.terminal[player]
    response = np.empty((tree.T, 2, n2))
    other = ticks[1 - player]
    for t in range(tree.T - 1, -1, -1):
        following = value[:, t + 1]
        stage = tree.stage(following, players=(player,))
        response[t], payoff = stage.response(player, other[t])
        value[player, t] = tree.combine(following, player, tree.stay(following, player) + payoff)
    return response, value[player]


def joint_tables(tree: Tree, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset tables ``(2, T, N, N)`` (bid, ask) from ticks ``(T, 2, N²)`` per market maker."""
    ticks = np.stack([x0, x1])  # (2, T, 2, N²)
    offsets = ticks * tree.tick
    shape = tree.table_shape()
    return offsets[:, :, 1].reshape(shape), offsets[:, :, 0].reshape(shape)


def best_response(params: CompetitionParams, bid: Any, ask: Any, player: int) -> BestResponse | None:
    """The exact best response of market maker ``player`` (0 or 1) to the other's fixed Markov tables.

    Per state and side, against the other's quote ``d``: the best tick below ``d`` (one of the two ticks around the
    unconstrained optimum, clipped), a tie at ``d``, or letting the other trade (the highest tick); alone on a side,
    the best tick overall; unable to trade, the highest tick (the quote does not matter).

    Returns ``None`` when :func:`game_unsolvable_reason` says the tools do not cover the game.
    """
    if player not in (0, 1):
        raise ValueError(f"player={player!r} is invalid: must be 0 or 1")
    if game_unsolvable_reason(params) is not None:
        return None
    tree = Tree(params)
    ticks = check_tables(tree, bid, ask)
    response, value = best_response_ticks(tree, ticks, player)
    x0, x1 = (response, ticks[1]) if player == 0 else (ticks[0], response)
    joint_bid, joint_ask = joint_tables(tree, x0, x1)
    value = value.reshape(tree.T + 1, tree.n_levels, tree.n_levels)
    return BestResponse(player, joint_bid, joint_ask, value, float(value[0, tree.I_max, tree.I_max]))


def certificates(tree: Tree, ticks: tuple[np.ndarray, np.ndarray], policy_value: np.ndarray) -> NashConv:
    """The certificates of §8 for tables given in ticks, whose values from every state are ``policy_value``."""
    start = start_index(tree)
    gains = np.empty_like(policy_value)
    responses = np.empty(2)
    for j in range(2):
        _, value = best_response_ticks(tree, ticks, j)
        gains[j] = value - policy_value[j]
        responses[j] = value[0, start]
    where = np.unravel_index(int(np.argmax(gains)), gains.shape)
    j, t, state = (int(i) for i in where)
    at = (j, t, state // tree.n_levels - tree.I_max, state % tree.n_levels - tree.I_max)
    values = policy_value[:, 0, start].copy()
    return NashConv(float((responses - values).sum()), float(gains.max()), at, values, responses)


def nash_conv(params: CompetitionParams, bid: Any, ask: Any) -> NashConv | None:
    """The certificates of a joint Markov policy (tables as in :func:`evaluate_joint`): see :class:`NashConv`.

    Returns ``None`` when :func:`game_unsolvable_reason` says the tools do not cover the game.
    """
    if game_unsolvable_reason(params) is not None:
        return None
    tree = Tree(params)
    ticks = check_tables(tree, bid, ask)
    mean, _ = moments(tree, ticks, second=False)
    return certificates(tree, ticks, mean)


def collusion_index(profit: Any, equilibrium_profit: Any, cartel_profit: Any) -> float:
    """The collusion index ``Δ = (Π − Π_eq)/(Π_cartel − Π_eq)`` (Calvano et al., 2020).

    Each argument is the mean per-MM return, or the per-MM returns (their mean is taken): 0 at the equilibrium, 1 at
    the cartel, below 0 for policies worse than competing.
    """
    profit, equilibrium, cartel = (float(np.mean(value)) for value in (profit, equilibrium_profit, cartel_profit))
    if cartel == equilibrium:
        raise ValueError("the cartel and the equilibrium earn the same: the collusion index is undefined")
    return (profit - equilibrium) / (cartel - equilibrium)
