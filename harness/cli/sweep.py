"""``herdlab sweep FILE``: run a sweep's points (in-process, on a process pool or on Dask),
print the ranked table and the recommended policy, write sweep.json, points.csv and a report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_executor_arguments,
    make_executor,
    report_problems,
    usage_error,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep or search over policy and scenario parameters",
        description="Run every point of a sweep (a scenario with a sweep: block, or a sweep"
        " file naming one). Finished points are kept in OUT/points/: a re-run, or an"
        " extended sweep, computes only what is missing.",
    )
    p.add_argument("file", metavar="FILE")
    add_executor_arguments(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default out/SWEEP_NAME)")
    p.add_argument("--top", type=int, default=15, metavar="N", help="rows of the ranked table")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--no-report", action="store_true", help="skip the charts and HTML report")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.cli.progress import ProgressDisplay
    from sim.scenario.errors import ScenarioError
    from sim.sweep.run import SweepInterrupted, run_sweep
    from sim.sweep.spec import load_sweep

    try:
        spec = load_sweep(args.file)
    except ScenarioError as exc:
        report_problems(exc.problems)
        return EXIT_USAGE
    if args.top < 1:
        return usage_error("--top must be >= 1")
    out_dir = Path(args.out) if args.out else Path("out") / spec.name
    executor = make_executor(args, units=2)
    if isinstance(executor, str):
        return usage_error(executor)
    search = spec.strategy == "search"
    display = None if args.quiet else ProgressDisplay("trials" if search else "simulations")
    try:
        record = run_sweep(
            spec,
            out_dir,
            executor,
            on_progress=None if search else display,
            on_batch=display if search else None,
        )
    except ScenarioError as exc:
        report_problems(exc.problems)
        return EXIT_USAGE
    except SweepInterrupted as exc:
        if display is not None:
            display.close()
        n = len(exc.record["points"])
        print(
            f"interrupted: {n} finished point(s) kept in {out_dir}/points/ and written to"
            f" {out_dir}/sweep.json; run the same command again to compute only the rest",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        if display is not None:
            display.close()
        executor.close()  # the pool's or cluster's processes
    return _print_and_report(record, out_dir, args.top, args.no_report)


def _print_and_report(record: dict[str, Any], out_dir: Path, top: int, no_report: bool) -> int:
    from reports.sweep import ranked_table, show_value, write_sweep_report

    n = len(record["points"])
    feasible = sum(p["feasible"] for p in record["points"])
    print(
        f"{record['name']}: {n} points ({record['strategy']}), {feasible} meet every"
        f" constraint; ranked by {record['objective']}"
    )
    print(ranked_table(record, top))
    for path, best in record["best_by_value"].items():
        parts = ", ".join(f"{show_value(b['value'])}: {b['id']} (rank {b['rank']})" for b in best)
        print(f"best point per {path}: {parts}")
    rec = record["recommended"]
    if rec is not None:
        print(f"\nrecommended ({rec['why']}; point {rec['id']}):\n")
        print(rec["yaml"].rstrip())
    print(f"\nsweep:   {out_dir}/sweep.json, {out_dir}/points.csv")
    if not no_report:
        print(f"report:  {write_sweep_report(record, out_dir)}")
    return EXIT_OK
