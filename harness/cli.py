"""The ``herdlab`` command line.

A user's mistake (a bad scenario, a missing file, a wrong flag) prints
``FILE:LINE: path: rule`` lines and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reports.data import ResultsError, load_results
from reports.html import format_figure, write_report
from reports.policy_plot import policy_delays
from reports.style import save
from sim import __version__
from sim.policies.describe import delay_samples, describe_policy
from sim.policies.policy import Policy
from sim.results import run_scenario
from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.grammar import json_schema
from sim.scenario.loader import load_scenario, resolve_policy
from sim.scenario.model import Scenario
from sim.scenario.schema import SCENARIO

EXIT_USAGE = 2


def _report_problems(problems: Sequence[Problem]) -> None:
    for p in problems:
        print(str(p), file=sys.stderr)
    n = len(problems)
    print(f"{n} problem{'s' if n != 1 else ''} found", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    for file in args.files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        print(
            f"{file}: ok ({scenario.name}: {len(scenario.policies)} policies, "
            f"{len(scenario.faults)} faults)"
        )
    if problems:
        _report_problems(problems)
        return EXIT_USAGE
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "herdlab scenario",
        **json_schema(SCENARIO),
    }
    print(json.dumps(schema, indent=2))
    return 0


def _resolve_all(names: Sequence[str]) -> tuple[list[Policy], list[Problem]]:
    """Presets and policy files, in order, with every problem found among them."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    for name in names:
        try:
            policies.extend(resolve_policy(name))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    return policies, problems


def cmd_policy_show(args: argparse.Namespace) -> int:
    policies, problems = _resolve_all(args.policies)
    print("\n\n".join(describe_policy(p, draws=args.draws, seed=args.seed) for p in policies))
    if problems:
        _report_problems(problems)
        return EXIT_USAGE
    return 0


def summary_table(record: dict[str, Any]) -> str:
    """The per-policy summary as a fixed-width table."""
    cols: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("policy", lambda s: None),
        ("success", lambda s: s["success_rate"]),
        ("attempts/job", lambda s: s["attempts_per_job"]),
        ("p50 s", lambda s: s["completion_s"]["p50"]),
        ("p99 s", lambda s: s["completion_s"]["p99"]),
        ("peak/s", lambda s: s["peak_offered_per_s"]),
        ("peak/cap", lambda s: s["peak_load_ratio"]),
        ("recovery s", lambda s: s["recovery_s"]),
        ("gave up", lambda s: s["outcomes"]["gave_up"]),
        ("timed out", lambda s: s["outcomes"]["timed_out"]),
    ]
    if record["scenario"]["service_kind"] == "occ":
        cols.insert(3, ("server calls", lambda s: s["server_calls"]))
    rows = [[c[0] for c in cols]]
    for p in record["policies"]:
        s = p["summary"]
        rows.append([p["name"]] + [format_figure(get(s), missing="-") for _, get in cols[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
        policies = list(scenario.policies)
        if args.policy:
            known = {p.name: p for p in scenario.policies}
            policies = []
            for name in args.policy:
                policies.extend([known[name]] if name in known else resolve_policy(name))
    except ScenarioError as exc:
        _report_problems(exc.problems)
        return EXIT_USAGE
    if args.replications < 1:
        print("--replications must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if args.mode == "real":
        return _run_real(args, scenario, policies)
    if args.keep_alive or args.scale != 1.0:
        print("--keep-alive and --scale apply to --mode real only", file=sys.stderr)
        return EXIT_USAGE
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
        return 130
    title = f"{scenario.name}: seed {record['seed']}, {record['replications']} replication(s)"
    return _print_and_report(title, record, out_dir, args.no_report)


def _print_and_report(title: str, record: dict[str, Any], out_dir: Path, no_report: bool) -> int:
    print(title)
    print(summary_table(record))
    print(f"results: {out_dir}/results.json")
    if not no_report:
        print(f"report:  {write_report(load_results(out_dir), out_dir / 'report.html')}")
    return 0


def _run_real(args: argparse.Namespace, scenario: Scenario, policies: list[Policy]) -> int:
    from harness.faults import check_realizable
    from harness.procs import ProcessError
    from harness.real import run_real, scale_scenario

    if not 0 < args.scale <= 1:
        print("--scale must be in (0, 1]", file=sys.stderr)
        return EXIT_USAGE
    if args.replications != 1:
        print("--replications applies to --mode sim only", file=sys.stderr)
        return EXIT_USAGE
    problems = check_realizable(scale_scenario(scenario, args.scale))
    if problems:
        _report_problems(problems)
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
        return 130
    except ProcessError as exc:
        print(f"cannot start the real bench: {exc}", file=sys.stderr)
        return 1
    title = f"{scenario.name} (real, scale {args.scale:g}): seed {record['seed']}"
    return _print_and_report(title, record, out_dir, args.no_report)


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.server import ServerConfig, serve

    if args.host not in ("127.0.0.1", "::1", "localhost") and not args.allow_remote:
        print(
            f"refusing to listen on {args.host}: herdlab serves loopback only unless"
            " --allow-remote is given",
            file=sys.stderr,
        )
        return EXIT_USAGE
    config = ServerConfig(seed=args.seed)
    if args.scenario:
        try:
            config = ServerConfig.from_scenario(load_scenario(args.scenario), args.scale, args.seed)
        except ScenarioError as exc:
            _report_problems(exc.problems)
            return EXIT_USAGE
    serve(config, args.port, args.redis_url, args.admin, args.host)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    directory = Path(args.results_dir)
    try:
        results = load_results(directory)
    except ResultsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.output) if args.output else directory / "report.html"
    write_report(results, out)
    print(f"report: {out}")
    return 0


def cmd_policy_plot(args: argparse.Namespace) -> int:
    policies, problems = _resolve_all(args.policies)
    samples = {}
    for p in policies:
        retries = min(max(1, p.retry.max_attempts - 1), args.retries)
        samples[p.name] = delay_samples(p.retry.backoff, retries, args.draws, args.seed)
    if problems:
        _report_problems(problems)
        return EXIT_USAGE
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    png, svg = save(policy_delays(samples), out.with_suffix(""))
    print(f"policy plot: {png} and {svg}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one clear line (it already does) and no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="herdlab", description="Simulate and test client retry policies.")
    parser.add_argument("--version", action="version", version=f"herdlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check scenario files and print every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_validate)

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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="run the reference job server")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--redis-url", default=None, help="e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--scenario", help="take capacity, service times and events from it")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--admin", action="store_true", help="enable the /admin fault API")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("report", help="charts and a self-contained HTML report of a results dir")
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    p.add_argument("-o", "--output", metavar="FILE", help="default RESULTS_DIR/report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("policy", help="inspect policies")
    psub = p.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    show = psub.add_parser("show", help="settings and per-retry delay distribution")
    show.add_argument("policies", nargs="+", metavar="NAME|FILE")
    show.add_argument("--draws", type=int, default=10_000, help="seeded draws per retry")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(func=cmd_policy_show)
    plot = psub.add_parser("plot", help="draw each retry's delay distribution, side by side")
    plot.add_argument("policies", nargs="+", metavar="NAME|FILE")
    plot.add_argument(
        "-o",
        "--output",
        default="policy-plot.png",
        metavar="FILE",
        help="PNG path; an SVG is written beside it (default policy-plot.png)",
    )
    plot.add_argument("--retries", type=int, default=10, help="at most this many retries")
    plot.add_argument("--draws", type=int, default=5_000)
    plot.add_argument("--seed", type=int, default=0)
    plot.set_defaults(func=cmd_policy_plot)
    return parser


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        # a terminated run cleans up exactly like an interrupted one
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
