"""The competing market makers' figures: ``python -m agents.cli.competition [--runs RUN_DIR ...] [--out docs]``.

Prints, for two market makers on the default market (or ``--env-kwargs``), the one-MM monopoly, the exact
equilibrium and cartel, every market maker quoting the one-MM optimum or the article's rule and, for each saved
``train.py`` run on ``mm_env/CompetingMarketMakers-v0``, its learned joint policy: each market maker's exact and
Monte Carlo return, the quoted spread at the start, NashConv, the collusion index Δ and ``mm_0``'s percentage of its
best response; and how many stage games of the equilibrium have no pure equilibrium, and whether its play reaches
any. With ``--out`` it also draws the first market maker's quotes against its inventory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agents.cli.arguments import integer, limits_problem, run_with_extra
from agents.cli.options import add_env_kwargs_argument, parse_key_values
from agents.evaluation.game import baseline_joint_policies, equilibrium_note, exact_reference, judge
from agents.evaluation.report import game_table
from agents.exact.dp import size_problem, solve_dp
from agents.training.experiment import load_agents
from mm_env.competition import make_competition_params
from mm_env.params import CompetitionParams

FINAL_SEED = 2_000_000  # the seed of train.py's final comparison (run seed 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; without matplotlib, one line naming the extra to install."""
    return run_with_extra(run, argv, "python -m agents.cli.competition", "render")


def run(argv: Sequence[str] | None = None) -> int:
    """The command (see the module's docstring)."""
    from agents.evaluation.figures import game_quotes_figure, save_figure
    from agents.storage.files import writable_problem

    parser = argparse.ArgumentParser(prog="python -m agents.cli.competition", description=__doc__)
    add_env_kwargs_argument(parser)
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="train.py run folders of the game")
    parser.add_argument("--episodes", type=integer, default=10_000, help="Monte Carlo episodes (default: %(default)s)")
    parser.add_argument("--seed", type=integer, default=FINAL_SEED, help="their seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="folder for game_quotes.png")
    args = parser.parse_args(argv)
    problem = limits_problem({"--seed": args.seed}, {"--episodes": args.episodes})
    if problem is not None:
        parser.error(problem)
    try:
        params = make_competition_params(**parse_key_values(args.env_kwargs))
    except ValueError as error:
        parser.error(str(error))
    problem = size_problem(params.market, args.episodes, makers=params.num_market_makers)
    if problem is not None:
        parser.error(problem)
    problem = None if args.out is None else writable_problem(args.out)  # before the work, which takes a while
    if problem is not None:
        parser.error(f"--out {problem}")
    print("solving the game exactly: the equilibrium and the cartel …", flush=True)
    reference = exact_reference(params)
    if reference is None:
        parser.error("the game has no exact solution here (see agents.exact.game.game_unsolvable_reason)")
    print(equilibrium_note(reference.equilibrium), flush=True)
    named = baseline_joint_policies(params, reference)
    policies, names = [policy for policy, _ in named], [name for _, name in named]
    for run in args.runs:
        try:
            agents, family, _ = load_agents(run)
        except ValueError as error:
            parser.error(str(error))
        if not isinstance(family.params, CompetitionParams):
            parser.error(f"{run} is not a run of the competing market makers' env")
        if family.params != params:
            parser.error(f"{run} was trained on another game; give its --env-kwargs")
        policies.append(agents[0])
        names.append(agents[0].name)
    print(f"judging {len(policies)} joint policies on {args.episodes:,} common-random-number episodes", flush=True)
    rows = []
    for number, (policy, name) in enumerate(zip(policies, names, strict=True), start=1):
        rows.append(judge(policy, params, args.episodes, args.seed, reference, name))
        print(f"  [{number}/{len(policies)}] {name}", flush=True)
    monopoly = solve_dp(params.market)
    i = params.market.I_max
    print(
        f"one market maker alone: {monopoly.expected_return:.2f} "
        f"(quotes {monopoly.bid[0, i]:.3f} / {monopoly.ask[0, i]:.3f} at t = 0, I = 0)\n"
    )
    print(f"{args.episodes:,} common-random-number episodes (seed {args.seed}):\n{game_table(rows)}")
    if args.out is not None:
        shown = [*zip(policies[:2], names[:2], strict=True), *zip(policies[4:], names[4:], strict=True)]
        path = save_figure(game_quotes_figure(shown, params), args.out / "game_quotes.png")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
