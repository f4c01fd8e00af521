"""``herdlab run SCENARIO``: simulate (or run for real) every policy, write results and report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.common import (
    EXIT_CANNOT_RUN,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_executor_arguments,
    make_executor,
    report_problems,
    usage_error,
)

if TYPE_CHECKING:
    from sim.policies.policy import Policy
    from sim.scenario.model import Scenario


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="simulate a scenario and write results (and a report)")
    p.add_argument("scenario", metavar="SCENARIO")
    p.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help="run only this policy (a scenario policy or a preset); repeatable",
    )
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument(
        "--replications",
        type=int,
        default=1,
        metavar="R",
        help="independent replications; figures become mean and 95%% CI",
    )
    add_executor_arguments(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default out/SCENARIO_NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--no-report", action="store_true", help="skip the charts and HTML report")
    p.add_argument(
        "--mode",
        choices=("sim", "real"),
        default="sim",
        help="sim: the SimPy model; real: the job server through Toxiproxy",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="real mode: shrink clients and capacity together by F (0 < F <= 1)",
    )
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="real mode: reuse connections (default: one per request, as in the model);"
        " about half the CPU per request",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.cli.progress import ProgressDisplay
    from sim.results import run_scenario
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import load_scenario, resolve_policy

    try:
        scenario = load_scenario(args.scenario)
        policies = list(scenario.policies)
        if args.policy:
            known = {p.name: p for p in scenario.policies}
            policies = []
            for name in args.policy:
                policies.extend([known[name]] if name in known else resolve_policy(name))
    except ScenarioError as exc:
        report_problems(exc.problems)
        return EXIT_USAGE
    if args.replications < 1:
        return usage_error("--replications must be >= 1")
    if args.mode == "real" and (args.workers is not None or args.dask is not None):
        return usage_error("--workers and --dask apply to --mode sim only")
    if args.mode == "real":
        return _run_real(args, scenario, policies)
    if args.keep_alive or args.scale != 1.0:
        return usage_error("--keep-alive and --scale apply to --mode real only")

    out_dir = Path(args.out) if args.out else Path("out") / scenario.name
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    units = len(policies) * args.replications
    # one long simulation: its own "x% simulated" lines say more than a bar of one unit
    long_run = len(policies) * (scenario.clients.count or 0) > 50_000
    executor = make_executor(args, units, progress if long_run else None)
    if isinstance(executor, str):
        return usage_error(executor)
    display = None if args.quiet or units <= 1 else ProgressDisplay("simulations")

    def done(entry: dict[str, Any]) -> None:
        if not args.quiet and display is None:
            print(f"{entry['name']}: done", file=sys.stderr, flush=True)

    try:
        record = run_scenario(
            scenario,
            out_dir,
            policies,
            seed=args.seed,
            replications=args.replications,
            on_policy_done=done,
            executor=executor,
            on_progress=display,
        )
    except KeyboardInterrupt:
        if display is not None:
            display.close()
        print(f"interrupted: partial results kept in {out_dir}/results.json", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if display is not None:
            display.close()
        executor.close()  # the pool's or cluster's processes
    title = f"{scenario.name}: seed {record['seed']}, {record['replications']} replication(s)"
    return _print_and_report(title, record, out_dir, args.no_report)


def _print_and_report(title: str, record: dict[str, Any], out_dir: Path, no_report: bool) -> int:
    from reports.data import load_results
    from reports.html import write_report
    from reports.terminal import summary_table, verdict_lines
    from sim.decide.decision import decide

    decision = decide(record)
    print(title)
    print(summary_table(record, decision))
    print(f"results: {out_dir}/results.json")
    if not no_report:
        print(f"report:  {write_report(load_results(out_dir), out_dir / 'report.html')}")
    print("\n".join(verdict_lines(record, decision)))
    return EXIT_OK


def _run_real(args: argparse.Namespace, scenario: Scenario, policies: list[Policy]) -> int:
    from harness.faults import check_realizable
    from harness.procs import ProcessError
    from harness.real import run_real, scale_scenario

    if not 0 < args.scale <= 1:
        return usage_error("--scale must be in (0, 1]")
    if args.replications != 1:
        return usage_error("--replications applies to --mode sim only")
    problems = check_realizable(scale_scenario(scenario, args.scale))
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    out_dir = Path(args.out) if args.out else Path("out") / f"{scenario.name}-real"
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        record = run_real(
            scenario,
            out_dir,
            policies,
            seed=args.seed,
            scale=args.scale,
            progress=progress,
            keep_alive=args.keep_alive,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: every process stopped, Toxiproxy reset; partial results kept in"
            f" {out_dir}/results.json (marked incomplete)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except ProcessError as exc:
        print(f"cannot start the real bench: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    title = f"{scenario.name} (real, scale {args.scale:g}): seed {record['seed']}"
    return _print_and_report(title, record, out_dir, args.no_report)
