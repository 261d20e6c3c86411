"""Exact tools for two competing market makers (``MODEL.md`` §8) on the state ``(t, I_1, I_2)``.

Two market makers share the mid and one trader per step. On the trader's side ``S`` the market makers that can trade
there (capacity ``I_max + S·I_j > 0``) compete by price priority: the lowest offset in whole ticks wins, a tie is split
½–½, and the trader accepts that offset ``δ°`` with probability ``p(δ°) = A·e^{−kδ°}``. Everything a market maker is
paid is a function of ``(t, I_1, I_2)`` and the step's outcome (under ``mtm`` through the mean mid move, as in the
one-MM DP of §7.3), so the game's value tables live on that grid.

Per state and side the game is a two-player stage game. With ``c_j^win`` (``c_j^lose``) the expected change of
``j``'s step reward plus continuation value when ``j`` (the other) executes, relative to no trade, and ``m_j`` the
mean size ``j`` executes, ``j`` winning at ``δ`` earns ``W_j(δ) = p(δ)·(m_j·δ + c_j^win)``, the other winning at
``δ'`` gives ``j`` the externality ``L_j(δ') = p(δ')·c_j^lose``, and a tie ``(W_j + L_j)/2``. ``W_j`` is unimodal in
``δ`` with its peak at ``1/k − c_j^win/m_j``, so the best tick below any bound is one of the two ticks around that
peak, clipped: best responses are exact in closed form.

* :func:`evaluate_joint` — each market maker's exact mean and standard deviation of a joint Markov policy;
* :func:`best_response` — one market maker's exact best response to the other's fixed tables;
* :func:`nash_conv` — the two certificates of §8 (NashConv from the start, the largest gain over all states);
* :func:`solve_equilibrium` — backward induction through pure stage-game equilibria (the selection rule of §8);
* :func:`solve_cartel` — the joint optimum of ``V_1 + V_2``;
* :func:`collusion_index` — ``Δ = (Π − Π_eq)/(Π_cartel − Π_eq)``.

A solution's tables quote in the environment as :class:`agents.policies.joint.GamePolicy`.

Tables are indexed ``[j, t, I_1 + I_max, I_2 + I_max]`` (absolute inventories, not own/other).
"""

from agents.exact.game.evaluation import (
    BestResponse,
    JointEvaluation,
    NashConv,
    best_response,
    collusion_index,
    evaluate_joint,
    nash_conv,
)
from agents.exact.game.model import TOLERANCE, game_unsolvable_reason
from agents.exact.game.solve import GameSolution, solve_cartel, solve_equilibrium

__all__ = [
    "TOLERANCE",
    "BestResponse",
    "GameSolution",
    "JointEvaluation",
    "NashConv",
    "best_response",
    "collusion_index",
    "evaluate_joint",
    "game_unsolvable_reason",
    "nash_conv",
    "solve_cartel",
    "solve_equilibrium",
]
