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
    p.add_argument("--out", metavar="DIR", help="output directory (default out/SCENARIO_NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--no-report", action="store_true", help="skip the charts and HTML report")
    p.add_argument(
        "--mode",
        choices=("sim", "real", "both"),
        default="sim",
        help="sim: the SimPy model; real: the job server through Toxiproxy; both: the two at"
        " one scale, and the fidelity table (sim against real)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="shrink clients, arrival rates and capacity together by F (0 < F <= 1)",
    )
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="real mode: reuse connections (default: one per request, as in the model);"
        " about half the CPU per request",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
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
    if not 0 < args.scale <= 1:
        return usage_error("--scale must be in (0, 1]")
    if args.mode == "real":
        return _run_real(args, scenario, policies)
    if args.mode == "both":
        return _run_both(args, scenario, policies)
    if args.keep_alive:
        return usage_error("--keep-alive applies to --mode real and --mode both only")
    from sim.scenario.scale import scale_scenario

    if args.scale != 1.0:
        scenario = scale_scenario(scenario, args.scale)
    out_dir = Path(args.out) if args.out else Path("out") / scenario.name
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))

    def done(entry: dict[str, Any]) -> None:
        if not args.quiet:
            print(f"{entry['name']}: done", file=sys.stderr, flush=True)

    try:
        record = run_scenario(
            scenario,
            out_dir,
            policies,
            seed=args.seed,
            replications=args.replications,
            progress=progress if len(policies) * (scenario.clients.count or 0) > 50_000 else None,
            on_policy_done=done,
        )
    except KeyboardInterrupt:
        print(f"interrupted: partial results kept in {out_dir}/results.json", file=sys.stderr)
        return EXIT_INTERRUPTED
    title = f"{scenario.name}: seed {record['seed']}, {record['replications']} replication(s)"
    if args.scale != 1.0:
        title += f", scale {args.scale:g}"
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
    code = _print_and_report(title, record, out_dir, args.no_report)
    _print_self_check(record)
    return code


def _print_self_check(record: dict[str, Any]) -> None:
    from reports.fidelity import self_check_lines

    for line in self_check_lines(record):
        print(line)


def _run_both(args: argparse.Namespace, scenario: Scenario, policies: list[Policy]) -> int:
    """Simulate and run for real at one scale; print and write the fidelity table."""
    from harness.faults import check_realizable
    from harness.fidelity import run_both
    from harness.procs import ProcessError
    from reports.data import load_results
    from reports.fidelity import fidelity_table, write_all_reports
    from reports.terminal import summary_table
    from sim.scenario.scale import scale_scenario

    if args.replications != 1:
        return usage_error("--replications applies to --mode sim only")
    problems = check_realizable(scale_scenario(scenario, args.scale))
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    out_dir = Path(args.out) if args.out else Path("out") / f"{scenario.name}-both"
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        record = run_both(
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
            f" {out_dir}/",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except ProcessError as exc:
        print(f"cannot start the real bench: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    for side in ("sim", "real"):
        side_record = load_results(out_dir / record[side]).record
        print(f"{scenario.name} ({side}, scale {args.scale:g}): seed {record['seed']}")
        print(summary_table(side_record))
    _print_self_check(record)
    print(fidelity_table(record))
    print(f"results: {out_dir}/results.json")
    if not args.no_report:
        print(f"report:  {write_all_reports(out_dir)}")
    return EXIT_OK
