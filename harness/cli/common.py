"""What every command shares: exit codes and how a user's mistakes are printed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.policies.policy import Policy
    from sim.scenario.errors import Problem

EXIT_OK = 0
#: an expectation failed (or a regression beyond tolerance)
EXIT_FAILED = 1
#: bad input: a scenario, a flag, a file
EXIT_USAGE = 2
#: could not run: a real component did not start
EXIT_CANNOT_RUN = 3
EXIT_INTERRUPTED = 130


def report_problems(problems: Sequence[Problem]) -> None:
    for p in problems:
        print(str(p), file=sys.stderr)
    n = len(problems)
    print(f"{n} problem{'s' if n != 1 else ''} found", file=sys.stderr)


def usage_error(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_USAGE


def resolve_all(names: Sequence[str]) -> tuple[list[Policy], list[Problem]]:
    """Presets and policy files, in order, with every problem found among them."""
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import resolve_policy

    policies: list[Policy] = []
    problems: list[Problem] = []
    for name in names:
        try:
            policies.extend(resolve_policy(name))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    return policies, problems


def add_check_options(p: argparse.ArgumentParser) -> None:
    """The options of ``run`` and ``check`` that decide what a run is checked against."""
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="compare every figure with an earlier run's results (DIR/results.json, or"
        " DIR/SCENARIO_NAME/results.json); worse beyond tolerance fails",
    )
    p.add_argument(
        "--tolerance",
        action="append",
        metavar="[FIGURE=]AMOUNT",
        help="how much worse than the baseline a figure may get: N%% of its value or, per"
        " figure, an amount in its unit (success_rate=0.01); repeatable; default 5%%",
    )
    p.add_argument(
        "--accept-inconclusive",
        action="store_true",
        help="an expectation whose 95%% CI straddles its bound passes (by default it fails)",
    )
