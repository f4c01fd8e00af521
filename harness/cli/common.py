"""What every command shares: exit codes and how a user's mistakes are printed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.execute import Executor
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


def add_executor_arguments(p: Any) -> None:
    """``--workers N`` and ``--dask ADDRESS``: where a batch of simulations runs."""
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="simulations at once: 1 runs in this process; default: every core"
        " (a local process pool), or the Dask cluster's size",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="run on Dask distributed: 'local' starts a LocalCluster of --workers processes"
        " (stopped at the end); an address (tcp://host:8786) joins that scheduler",
    )


def make_executor(args: Any, units: int, progress: Any = None) -> Executor | str:
    """The executor the flags ask for, or a usage message. A pool is not worth starting
    for a single unit, nor for ``--workers 1``."""
    import os

    from sim.execute import DaskExecutor, InProcess, ProcessPool

    if args.workers is not None and args.workers < 1:
        return "--workers must be >= 1"
    if args.dask is not None:
        if args.dask != "local" and "://" not in args.dask and ":" not in args.dask:
            return f"--dask: {args.dask!r} is neither 'local' nor a scheduler address (host:port)"
        return DaskExecutor(args.dask, args.workers)
    workers = args.workers or os.cpu_count() or 1
    if workers == 1 or units <= 1:
        return InProcess(progress)
    return ProcessPool(workers)
