"""``herdlab check [FILES or FOLDERS]``: simulate every scenario that states expectations,
over the available cores, and print one summary (optionally JUnit XML); exit 1 on any
failure."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_check_options,
    report_problems,
    usage_error,
)

if TYPE_CHECKING:
    from sim.scenario.errors import Problem
    from sim.scenario.model import Scenario


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="simulate every scenario with expectations and report PASS/FAIL (CI)",
        description="Simulate every scenario that states expectations (in the files and"
        " folders given; default scenarios/), using the available cores, check them (and a"
        " baseline, if given), print one summary and optionally write JUnit XML.",
        epilog="exit codes: 0 every expectation holds, 1 one failed (or was inconclusive,"
        " or a figure regressed past the baseline's tolerance), 2 bad input, 130 interrupted",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or folders")
    p.add_argument(
        "--out",
        metavar="DIR",
        default="out",
        help="results go to DIR/SCENARIO_NAME/ (default out/); such a DIR is a baseline",
    )
    p.add_argument("--junit-xml", metavar="FILE", help="write JUnit XML: one test per verdict")
    p.add_argument(
        "--replications",
        type=int,
        default=1,
        metavar="R",
        help="replications per policy; bounds then hold only when the 95%% CI is inside",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="simulations at once (default: the available cores)",
    )
    p.add_argument("--report", action="store_true", help="also write each scenario's report")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="list every verdict, not only failures"
    )
    add_check_options(p)
    p.set_defaults(func=main)


def find_scenarios(paths: list[str]) -> tuple[list[Path], list[Path], list[Problem]]:
    """(files to load, files skipped for having no expectations, problems).

    A file named on the command line is always loaded. In a folder (searched recursively),
    a YAML file is a scenario to check when its top level has ``expect:``; others (policy
    files, scenarios without expectations) are skipped."""
    import yaml

    from sim.scenario.errors import Problem

    chosen: list[Path] = []
    skipped: list[Path] = []
    problems: list[Problem] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for ext in ("*.yaml", "*.yml") for p in path.rglob(ext))
            for f in found:
                try:
                    top = yaml.safe_load(f.read_text())
                except (OSError, UnicodeDecodeError, yaml.YAMLError):
                    top = None
                if isinstance(top, dict) and "expect" in top:
                    chosen.append(f)
                else:
                    skipped.append(f)
        elif path.exists():
            chosen.append(path)
        else:
            problems.append(Problem(text, 0, "", "no such file or folder"))
    unique = {p.resolve(): p for p in reversed(chosen)}  # a file named twice runs once
    chosen = [p for p in chosen if unique.get(p.resolve()) is p]
    return chosen, skipped, problems


def main(args: argparse.Namespace) -> int:
    from sim.decide.checks import BaselineError, open_baseline, parse_tolerances
    from sim.decide.figures import UnknownFigure
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import load_scenario

    if args.replications < 1:
        return usage_error("--replications must be >= 1")
    if args.jobs is not None and args.jobs < 1:
        return usage_error("--jobs must be >= 1")
    try:
        tolerances = parse_tolerances(args.tolerance or [])
    except (ValueError, UnknownFigure) as exc:
        return usage_error(str(exc))
    files, skipped, problems = find_scenarios(args.paths or ["scenarios"])
    scenarios: list[Scenario] = []
    for f in files:
        try:
            scenarios.append(load_scenario(f))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    checked = [s for s in scenarios if s.expect or args.baseline]
    skipped += [Path(s.source) for s in scenarios if s not in checked]
    if not checked:
        where = " ".join(args.paths or ["scenarios"])
        return usage_error(f"no scenario with expectations in {where}")
    seen: dict[str, str] = {}
    for s in checked:
        if s.name in seen:
            return usage_error(
                f"{s.source}: scenario name {s.name!r} is also {seen[s.name]}'s:"
                " their results would share one folder"
            )
        seen[s.name] = s.source
    baselines: dict[str, Any] = {}
    missing: list[str] = []
    if args.baseline:
        from sim.decide.baseline import baseline_file

        for s in checked:
            if not baseline_file(Path(args.baseline), s.name).exists():
                missing.append(s.name)
                continue
            try:
                baselines[s.name] = open_baseline(Path(args.baseline), s, "sim")
            except BaselineError as exc:
                return usage_error(str(exc))
    return _run(args, checked, skipped, baselines, missing, tolerances)


def _run(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    skipped: list[Path],
    baselines: dict[str, Any],
    missing: list[str],
    tolerances: Any,
) -> int:
    from reports.checks import summary_text
    from reports.junit import Suite, junit_xml
    from sim.batch import ScenarioRun, available_cores, simulate_scenarios
    from sim.decide.checks import check_run
    from sim.decide.expect import checks_record
    from sim.decide.verdict import Status
    from sim.results import write_results

    out_root = Path(args.out)
    jobs = args.jobs or available_cores()

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    for name in missing:
        log(f"{name}: no baseline in {args.baseline}: its expectations only")
    log(
        f"checking {len(scenarios)} scenario(s), "
        f"{sum(len(s.policies) for s in scenarios)} policy runs, {jobs} at a time"
    )
    suites: dict[str, Suite] = {}

    def done(run: ScenarioRun) -> None:
        scenario = run.scenario
        baseline = baselines.get(scenario.name)
        evaluation = check_run(scenario, run.record, baseline, tolerances)
        where = str(baseline[0]) if baseline is not None else None
        run.record["checks"] = checks_record(evaluation, args.accept_inconclusive, where)
        write_results(run.out_dir, run.record)
        status = run.record["checks"]["status"]
        suites[scenario.name] = Suite(
            scenario.name, scenario.source, run.record["checks"], run.time_s
        )
        log(
            f"{status:<12}  {scenario.name} ({len(evaluation.verdicts)} checks, {run.time_s:.1f} s)"
        )

    from sim.execute import InProcess, ProcessPool

    start = time.perf_counter()
    executor = ProcessPool(jobs) if jobs > 1 else InProcess()
    try:
        runs = simulate_scenarios(
            [(s, out_root / s.name) for s in scenarios],
            replications=args.replications,
            executor=executor,
            on_done=done,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: results of finished policies kept under {out_root}/ (incomplete"
            " scenarios marked so)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        executor.close()  # the pool's processes
    elapsed = time.perf_counter() - start
    ordered = [suites[r.scenario.name] for r in runs]
    print(summary_text([(s.scenario, s.checks) for s in ordered], verbose=args.verbose))
    for path in skipped:
        print(f"skipped (no expectations): {path}")
    if args.junit_xml:
        Path(args.junit_xml).write_text(junit_xml(ordered))
        print(f"junit:   {args.junit_xml}")
    if args.report:
        from reports.data import load_results
        from reports.html import write_report

        for r in runs:
            write_report(load_results(r.out_dir), r.out_dir / "report.html")
        print(f"reports: {out_root}/*/report.html")
    verdicts = [v for s in ordered for v in s.checks["verdicts"]]
    counts = {st: sum(v["status"] == st.value for v in verdicts) for st in Status}
    statuses = [Status(s.checks["status"]) for s in ordered]
    failed = any(st is not Status.PASS for st in statuses)
    inconclusive = (
        f", {counts[Status.INCONCLUSIVE]} inconclusive" if counts[Status.INCONCLUSIVE] else ""
    )
    print(
        f"{'FAIL' if failed else 'PASS'}: {len(ordered)} scenario(s), {len(verdicts)} checks:"
        f" {counts[Status.PASS]} passed, {counts[Status.FAIL]} failed{inconclusive}"
        f" in {elapsed:.1f} s ({jobs} at a time)"
    )
    return EXIT_FAILED if failed else EXIT_OK
