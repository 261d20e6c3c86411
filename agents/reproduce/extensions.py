"""The article's further steps for one market maker (``MODEL.md`` §7) in exact figures, and the informed-trader figure.

One row per preset — the exact optimum (or why there is none), its quotes at the start, the published article rule,
the best tuned heuristic and the continuous-time closed forms that apply — and the optimal quotes against inventory
with and without informed traders, under both rewards. Where a model has no exact evaluation, the figures are means
over common-random-number episodes (marked ``MC``). The command is ``python -m agents.cli.extensions``.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from agents.evaluation.compare import exact_return
from agents.evaluation.rollout import run_episodes
from agents.evaluation.tuning import best_tuned_heuristic
from agents.exact.dp import exact_solution, inventory_grid, solve_dp, unsolvable_reason
from agents.policies.base import Policy
from agents.policies.closed_forms import applicable_baselines
from agents.policies.heuristics import ArticleRule
from mm_env.params import MarketParams
from mm_env.presets import PRESETS, make_params

SHOWN = ("default", "mtm", "informed", "momentum", "sqrt_impact", "transient", "cartea_jaimungal")
MC_EPISODES, MC_SEED = 10_000, 0


def changes(params: MarketParams) -> str:
    """The parameters in which a model differs from the default, as ``name=value``."""
    default = PRESETS["default"].as_dict()
    return ", ".join(f"{key}={value}" for key, value in params.as_dict().items() if default.get(key) != value)


def _number(x: float) -> str:
    return f"{x:.2f}" if abs(x) >= 10 else f"{x:.4f}"


def value(policy: Policy, params: MarketParams) -> str:
    """The policy's exact expected return, else its Monte Carlo mean on common random numbers."""
    exact = exact_return(policy, params)
    if exact is not None:
        return _number(exact)
    return f"{_number(run_episodes(policy, params, MC_EPISODES, MC_SEED).returns.mean())} (MC)"


def summary_row(name: str) -> str:
    """One Markdown row of the summary table."""
    params = PRESETS[name]
    solution = exact_solution(params)
    if solution is None:
        dp, quotes = f"none: {unsolvable_reason(params)}", "–"
    else:
        zero = (0, params.I_max, 1) if solution.bid.ndim == 3 else (0, params.I_max)
        dp, quotes = _number(solution.expected_return), f"{solution.bid[zero]:.3f} / {solution.ask[zero]:.3f}"
    best = best_tuned_heuristic(params).policy
    closed = "; ".join(f"{policy.name} {value(policy, params)}" for policy in applicable_baselines(params)) or "–"
    cells = [name, changes(params) or "–", dp, quotes, value(ArticleRule(0.5, 0.1), params)]
    cells += [f"{best.name}: {value(best, params)}", closed]
    return "| " + " | ".join(cells) + " |"


def informed_quotes_figure(rho: float = 0.2, jump: float = 0.5) -> Figure:
    """The optimal quotes at ``t = 0`` against inventory with and without informed traders, under both rewards."""
    figure = Figure(figsize=(11, 4.6), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for axis, reward in zip(axes, ("spread", "mtm"), strict=True):
        # The ρ = 0 curves are drawn last and thinner, so that they stay visible where the two coincide.
        for informed, color, width in ((rho, "tab:red", 3.2), (0.0, "black", 1.4)):
            params = make_params(reward=reward, informed=informed, info_jump=jump if informed else 0.0)
            solution = solve_dp(params)
            label = f"ρ = {informed:g}" + (f", J = {jump:g}" if informed else "")
            levels = inventory_grid(params)
            axis.plot(levels, solution.bid[0], color=color, lw=width, label=f"{label}: bid δ_b")
            axis.plot(levels, solution.ask[0], color=color, lw=width, ls="--", label=f"{label}: ask δ_a")
        axis.set_title(f"reward = {reward}")
        axis.set_xlabel("inventory I")
        axis.set_xlim(-25, 25)
        axis.set_ylim(0.0, 2.0)
    axes[0].set_ylabel("optimal offset from the mid at t = 0")
    axes[0].legend(fontsize="small", loc="upper center")
    figure.suptitle("Informed traders: blind to the spread reward, costly under mark-to-market")
    return figure
