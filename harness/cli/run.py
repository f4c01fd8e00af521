"""``herdlab run SCENARIO``: simulate (or run for real) every policy, write results and report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_check_options,
    add_executor_arguments,
    make_executor,
    report_problems,
    usage_error,
)

if TYPE_CHECKING:
    from sim.decide.checks import Tolerances
    from sim.policies.policy import Policy
    from sim.scenario.model import Scenario

    Baseline = tuple[Path, dict[str, Any]] | None


MAX_SEED = 2**63 - 1  # as the scenario's seed (sim/scenario/schema.py)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="simulate a scenario, write results (and a report), check its expectations",
        description="Simulate (or run for real) every policy of a scenario, write results.json,"
        " CSVs and a report, and check the scenario's expectations (and a baseline, if given).",
        epilog="exit codes: 0 every expectation holds, 1 one failed (or was inconclusive,"
        " or a figure regressed past the baseline's tolerance), 2 bad input, 3 could not run"
        " (a real component did not start), 130 interrupted",
    )
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
    add_check_options(p)
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="real mode: reuse connections (default: one per request, as in the model);"
        " about half the CPU per request",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run even when the cost estimate exceeds this machine's memory or the time"
        " ceiling (sim mode)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.cli.progress import ProgressDisplay
    from sim.decide.checks import BaselineError, open_baseline, parse_tolerances
    from sim.decide.figures import UnknownFigure
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
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        return usage_error(f"--seed must be within 0..{MAX_SEED}, got {args.seed}")
    try:
        tolerances = parse_tolerances(args.tolerance or [])
        baseline = (
            open_baseline(Path(args.baseline), scenario, args.mode) if args.baseline else None
        )
    except (ValueError, UnknownFigure, BaselineError) as exc:
        return usage_error(str(exc))
    if not 0 < args.scale <= 1:
        return usage_error("--scale must be in (0, 1]")
    if args.mode != "sim" and (args.workers is not None or args.dask is not None):
        return usage_error("--workers and --dask apply to --mode sim only")
    if args.mode == "real":
        return _run_real(args, scenario, policies, baseline, tolerances)
    if args.mode == "both":
        return _run_both(args, scenario, policies)
    if args.keep_alive:
        return usage_error("--keep-alive applies to --mode real and --mode both only")
    from sim.scenario.scale import scale_scenario

    if args.scale != 1.0:
        scenario = scale_scenario(scenario, args.scale)
    if _refused_by_cost(args, scenario, policies):
        return EXIT_USAGE
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
    if args.scale != 1.0:
        title += f", scale {args.scale:g}"
    return _finish(args, scenario, title, record, out_dir, baseline, tolerances)


def _refused_by_cost(args: argparse.Namespace, scenario: Scenario, policies: list[Policy]) -> bool:
    """Estimate the run's cost; True (after saying why) when it would exceed this machine
    and ``--force`` was not given."""
    from sim.cost import Limits, estimate, refusals
    from sim.scenario.errors import Problem
    from sim.scenario.grammar import line_of

    cost = estimate(scenario, policies, args.replications)
    if not args.quiet:
        print(f"estimate: {cost.describe()}", file=sys.stderr, flush=True)
    found = refusals(cost, Limits.of_this_machine())
    if not found:
        return False
    problems = [
        Problem(scenario.source, line_of(scenario.lines, r.knob.path), r.knob.path, r.message)
        for r in found
    ]
    if args.force:
        for p in problems:
            print(f"{p} (--force: running anyway)", file=sys.stderr)
        return False
    report_problems(problems)
    print(
        f"refused before running: {cost.describe()}; --force runs it anyway",
        file=sys.stderr,
    )
    return True


def _finish(
    args: argparse.Namespace,
    scenario: Scenario,
    title: str,
    record: dict[str, Any],
    out_dir: Path,
    baseline: Baseline,
    tolerances: Tolerances,
) -> int:
    """Check the run, keep the verdicts in results.json, print the tables, write the report;
    the exit code says whether every check held."""
    from reports.checks import checks_text
    from reports.data import load_results
    from reports.html import write_report
    from reports.terminal import summary_table, verdict_lines
    from sim.decide.checks import check_run
    from sim.decide.decision import decide
    from sim.decide.expect import checks_record
    from sim.decide.verdict import Status
    from sim.results import write_results

    checked = bool(scenario.expect) or baseline is not None
    status = Status.PASS
    if checked:
        evaluation = check_run(scenario, record, baseline, tolerances)
        where = str(baseline[0]) if baseline is not None else None
        record["checks"] = checks_record(evaluation, args.accept_inconclusive, where)
        status = evaluation.status(args.accept_inconclusive)
        write_results(out_dir, record)
    decision = decide(record)
    print(title)
    print(summary_table(record, decision))
    print("\n".join(verdict_lines(record, decision)))
    if checked:
        print()
        print(checks_text(record["checks"]))
    print(f"results: {out_dir}/results.json")
    if not args.no_report:
        print(f"report:  {write_report(load_results(out_dir), out_dir / 'report.html')}")
    return EXIT_OK if status is Status.PASS else EXIT_FAILED


def on_the_bench(
    scenario: Scenario,
    policies: list[Policy],
    run: Callable[..., dict[str, Any]],
    out_dir: Path,
    *,
    scale: float,
    seed: int | None,
    keep_alive: bool,
    quiet: bool,
    kept: str,
) -> tuple[dict[str, Any] | None, int]:
    """What a real run, a sim-and-real run and ``check --mode both`` share: the checks
    before anything starts, the run itself (``run_real`` or ``run_both``), and what an
    interruption or a bench that does not start prints. Returns the record (None when
    there is none) and the exit code so far."""
    from harness.faults import check_realizable
    from harness.procs import ProcessError
    from sim.scenario.scale import scale_scenario

    problems = check_realizable(scale_scenario(scenario, scale))
    if problems:
        report_problems(problems)
        return None, EXIT_USAGE
    progress = None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        record = run(
            scenario,
            out_dir,
            policies,
            seed=seed,
            scale=scale,
            progress=progress,
            keep_alive=keep_alive,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: every process stopped, Toxiproxy reset; partial results kept in"
            f" {out_dir}/{kept}",
            file=sys.stderr,
        )
        return None, EXIT_INTERRUPTED
    except ProcessError as exc:
        print(f"cannot start the real bench: {exc}", file=sys.stderr)
        return None, EXIT_CANNOT_RUN
    return record, EXIT_OK


def _on_the_bench(
    args: argparse.Namespace,
    scenario: Scenario,
    policies: list[Policy],
    run: Callable[..., dict[str, Any]],
    suffix: str,
    kept: str,
) -> tuple[dict[str, Any] | None, Path, int]:
    """:func:`on_the_bench` with ``run``'s flags; also the output folder."""
    out_dir = Path(args.out) if args.out else Path("out") / f"{scenario.name}-{suffix}"
    if args.replications != 1:
        return None, out_dir, usage_error("--replications applies to --mode sim only")
    record, code = on_the_bench(
        scenario,
        policies,
        run,
        out_dir,
        scale=args.scale,
        seed=args.seed,
        keep_alive=args.keep_alive,
        quiet=args.quiet,
        kept=kept,
    )
    return record, out_dir, code


def _run_real(
    args: argparse.Namespace,
    scenario: Scenario,
    policies: list[Policy],
    baseline: Baseline,
    tolerances: Tolerances,
) -> int:
    from harness.real import run_real

    record, out_dir, code = _on_the_bench(
        args, scenario, policies, run_real, "real", "results.json (marked incomplete)"
    )
    if record is None:
        return code
    title = f"{scenario.name} (real, scale {args.scale:g}): seed {record['seed']}"
    code = _finish(args, scenario, title, record, out_dir, baseline, tolerances)
    _print_self_check(record)
    return code


def _print_self_check(record: dict[str, Any]) -> None:
    from reports.fidelity import self_check_lines

    for line in self_check_lines(record):
        print(line)


def _run_both(args: argparse.Namespace, scenario: Scenario, policies: list[Policy]) -> int:
    """Simulate and run for real at one scale; print and write the fidelity table."""
    from harness.fidelity import run_both
    from reports.data import load_results
    from reports.fidelity import fidelity_table, write_all_reports
    from reports.terminal import summary_table

    record, out_dir, code = _on_the_bench(args, scenario, policies, run_both, "both", "")
    if record is None:
        return code
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
