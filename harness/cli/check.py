"""``herdlab check [FILES or FOLDERS]``: simulate every scenario that states expectations,
over the available cores, and print one summary (optionally JUnit XML); exit 1 on any
failure.

``herdlab check --mode both [--scale F]``: the fidelity suite. Every scenario that states
a ``fidelity:`` block (default folder ``scenarios/``) is simulated and run for real at
one scale (``--scale``, else the block's ``scale``), as ``herdlab run --mode both`` does
(:func:`harness.cli.run.on_the_bench`); one fidelity table over them all, the real runs'
expectations; exit 1 when a fidelity row fails, an expectation fails or a real run was
degraded, 3 when a real component does not start."""

from __future__ import annotations

import argparse
import json
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
        " or a figure regressed past the baseline's tolerance; with --mode both also a"
        " fidelity row failed or a real run was degraded), 2 bad input, 3 could not run (a"
        " real component did not start), 130 interrupted",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or folders")
    p.add_argument(
        "--mode",
        choices=("sim", "both"),
        default="sim",
        help="sim: simulate the scenarios with expectations; both: the fidelity suite, every"
        " scenario with a fidelity: block simulated and run for real at one scale, one"
        " fidelity table",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        metavar="F",
        help="--mode both: shrink clients, rates and capacity by F (0 < F <= 1); default:"
        " each scenario's fidelity.scale",
    )
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="--mode both: the real clients reuse connections",
    )
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


def find_scenarios(
    paths: list[str], key: str = "expect"
) -> tuple[list[Path], list[Path], list[Problem]]:
    """(files to load, files skipped for having no ``key`` block, problems).

    A file named on the command line is always loaded. In a folder (searched recursively),
    a YAML file is a scenario to check when its top level has ``key`` (``expect:``, or
    ``fidelity:`` for the fidelity suite); others (policy files, scenarios without it,
    files that cannot be read as a scenario is, e.g. nested too deep) are skipped. Each
    file is read by the scenario loader's hardened reader: bounded size and nesting."""
    from sim.scenario.errors import Problem
    from sim.scenario.loader import top_level

    chosen: list[Path] = []
    skipped: list[Path] = []
    problems: list[Problem] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for ext in ("*.yaml", "*.yml") for p in path.rglob(ext))
            for f in found:
                top = top_level(f)
                if top is not None and key in top:
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


def load_found(
    paths: list[str], key: str = "expect"
) -> tuple[list[Scenario], list[Path], list[Problem]]:
    """:func:`find_scenarios`, each file found loaded: (scenarios, skipped, problems)."""
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import load_scenario

    files, skipped, problems = find_scenarios(paths, key)
    scenarios: list[Scenario] = []
    for f in files:
        try:
            scenarios.append(load_scenario(f))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    return scenarios, skipped, problems


def main(args: argparse.Namespace) -> int:
    from sim.decide.checks import BaselineError, open_baseline, parse_tolerances
    from sim.decide.figures import UnknownFigure

    if args.replications < 1:
        return usage_error("--replications must be >= 1")
    if args.jobs is not None and args.jobs < 1:
        return usage_error("--jobs must be >= 1")
    if args.mode == "both":
        return _main_both(args)
    if args.scale is not None or args.keep_alive:
        return usage_error("--scale and --keep-alive apply to --mode both only")
    try:
        tolerances = parse_tolerances(args.tolerance or [])
    except (ValueError, UnknownFigure) as exc:
        return usage_error(str(exc))
    scenarios, skipped, problems = load_found(args.paths or ["scenarios"])
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    checked = [s for s in scenarios if s.expect or args.baseline]
    skipped += [Path(s.source) for s in scenarios if s not in checked]
    refused = _refusal(checked, args.paths, "expectations")
    if refused:
        return usage_error(refused)
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


def _refusal(scenarios: list[Scenario], paths: list[str], what: str) -> str:
    """Why ``scenarios`` cannot be checked: none found (with ``what``), or two whose
    results would share a folder; '' when they can."""
    if not scenarios:
        return f"no scenario with {what} in {' '.join(paths or ['scenarios'])}"
    seen: dict[str, str] = {}
    for s in scenarios:
        if s.name in seen:
            return (
                f"{s.source}: scenario name {s.name!r} is also {seen[s.name]}'s:"
                " their results would share one folder"
            )
        seen[s.name] = s.source
    return ""


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


# ------------------------------------------------------------------ --mode both


def _main_both(args: argparse.Namespace) -> int:
    """The fidelity suite: find, load and check every scenario before anything runs."""
    from harness.faults import check_realizable
    from sim.scenario.scale import scale_scenario

    for flag, given in (
        ("--replications", args.replications != 1),
        ("--jobs", args.jobs is not None),
        ("--baseline", args.baseline is not None),
        ("--tolerance", bool(args.tolerance)),
    ):
        if given:
            return usage_error(f"{flag} applies to --mode sim only")
    if args.scale is not None and not 0 < args.scale <= 1:
        return usage_error("--scale must be in (0, 1]")
    scenarios, skipped, problems = load_found(args.paths or ["scenarios"], key="fidelity")
    for s in scenarios:  # every one must run for real, before the first one starts
        problems += check_realizable(scale_scenario(s, _scale_of(args, s)))
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    refused = _refusal(scenarios, args.paths, "a fidelity: block")
    if refused:
        return usage_error(refused)
    return _run_both(args, scenarios, skipped)


def _scale_of(args: argparse.Namespace, scenario: Scenario) -> float:
    return float(args.scale) if args.scale is not None else scenario.fidelity.scale


def _run_both(args: argparse.Namespace, scenarios: list[Scenario], skipped: list[Path]) -> int:
    """Each scenario simulated and run for real (``herdlab run --mode both``), one after
    the other; then one fidelity table, the expectations of the real runs and what was
    degraded."""
    from harness.cli.run import on_the_bench
    from harness.fidelity import run_both
    from reports.checks import summary_text
    from reports.fidelity import fidelity_suite_table, self_check_lines, write_all_reports
    from reports.junit import junit_xml
    from sim.decide.checks import check_run
    from sim.decide.expect import checks_record
    from sim.decide.verdict import Status
    from sim.results import write_results

    out_root = Path(args.out)
    done: list[tuple[Scenario, dict[str, Any], float]] = []
    start = time.perf_counter()
    for scenario in scenarios:
        scale = _scale_of(args, scenario)
        out_dir = out_root / scenario.name
        if not args.quiet:
            print(
                f"== {scenario.name}: herdlab run {scenario.source} --mode both --scale"
                f" {scale:g} --out {out_dir}",
                file=sys.stderr,
                flush=True,
            )
        began = time.perf_counter()
        record, code = on_the_bench(
            scenario,
            list(scenario.policies),
            run_both,
            out_dir,
            scale=scale,
            seed=None,
            keep_alive=args.keep_alive,
            quiet=args.quiet,
            kept="",
        )
        if record is None:
            return code  # interrupted (130: every process stopped) or no bench (3)
        # the real run's expectations, as `herdlab run --mode real` checks them: the
        # simulated side is scaled, and the full-scale simulation is `herdlab check`'s
        real_dir = out_dir / record["real"]
        real_record = json.loads((real_dir / "results.json").read_text())
        evaluation = check_run(scenario, real_record)
        real_record["checks"] = record["checks"] = checks_record(
            evaluation, args.accept_inconclusive
        )
        write_results(real_dir, real_record)
        write_results(out_dir, record)
        if args.report:
            write_all_reports(out_dir)
        done.append((scenario, record, time.perf_counter() - began))
        if not args.quiet:
            for line in self_check_lines(record):
                print(f"   {line}", file=sys.stderr)
            print(
                f"   fidelity {record['fidelity']['status']}, expectations"
                f" {record['checks']['status']}{', DEGRADED' if record['degraded'] else ''}"
                f" ({time.perf_counter() - began:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    elapsed = time.perf_counter() - start
    print(fidelity_suite_table([(s.name, r) for s, r, _ in done]))
    checked = [(s.name, r["checks"]) for s, r, _ in done if r["checks"]["verdicts"]]
    if checked:
        print()
        print(summary_text(checked, verbose=args.verbose))
    for path in skipped:
        print(f"skipped (no fidelity: block): {path}")
    degraded = [(s, r) for s, r, _ in done if r["degraded"]]
    for s, r in degraded:
        print(f"DEGRADED: {s.name}: the real run could not keep its schedule:")
        for reason in r["degraded_reasons"]:
            print(f"  {reason}")
    if args.junit_xml:
        suites = [_junit_suite(s, r, t) for s, r, t in done]
        Path(args.junit_xml).write_text(junit_xml(suites))
        print(f"junit:   {args.junit_xml}")
    if args.report:
        print(f"reports: {out_root}/*/report.html")
    rows = [row for _, r, _ in done for row in r["fidelity"]["rows"]]
    counted = [row for row in rows if not row["by_construction"]]
    fails = [s.name for s, r, _ in done if r["fidelity"]["status"] == Status.FAIL.value]
    broken = [s.name for s, r, _ in done if r["checks"]["status"] != Status.PASS.value]
    failed = bool(fails or broken or degraded)
    parts = [
        f"{sum(row['status'] == Status.PASS.value for row in counted)} of {len(counted)}"
        f" fidelity rows within tolerance ({len(rows) - len(counted)} n/a)"
        + (f", FAIL in {', '.join(fails)}" if fails else ""),
        f"expectations {'FAIL in ' + ', '.join(broken) if broken else 'PASS'}",
        f"{len(degraded)} degraded run(s)",
    ]
    print(
        f"{'FAIL' if failed else 'PASS'}: {len(done)} scenario(s), {'; '.join(parts)}"
        f" in {elapsed:.0f} s"
    )
    return EXIT_FAILED if failed else EXIT_OK


def _junit_suite(scenario: Scenario, record: dict[str, Any], time_s: float) -> Any:
    """One scenario of the fidelity suite as JUnit: its expectations, then its fidelity
    rows that count (those that cannot match by construction are left out); a degraded
    real run is an error of the suite."""
    from reports.junit import Suite

    rows = [r for r in record["fidelity"]["rows"] if not r["by_construction"]]
    checks = {**record["checks"], "verdicts": [*record["checks"]["verdicts"], *rows]}
    error = ""
    if record["degraded"]:
        error = "degraded real run: " + "; ".join(record["degraded_reasons"])
    return Suite(scenario.name, scenario.source, checks, time_s, error)
