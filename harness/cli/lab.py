"""``herdlab lab SCENARIO``: the real bench and the scenario's faults for your own client;
exit 1 when the client breaks a policy the scenario's ``expect:`` says it keeps
(``{kind: client, conforms: POLICY}``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.common import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    report_problems,
    usage_error,
)

if TYPE_CHECKING:
    from harness.lab import LabUrls


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "lab",
        help="run the job server through Toxiproxy for an external client; record what it does",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="its service and fault timeline are used")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="length of the timeline in seconds (default: until Ctrl-C)",
    )
    p.add_argument(
        "--start-now",
        action="store_true",
        help="start the fault timeline at once, not at the client's first request",
    )
    p.add_argument(
        "--first-request-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="stop when no request came within S seconds (default 600)",
    )
    p.add_argument("--out", metavar="DIR", help="output directory (default out/lab-SCENARIO)")
    p.add_argument(
        "--urls-file",
        metavar="FILE",
        help="also write the URLs as JSON to FILE (for scripts that start a client)",
    )
    p.add_argument(
        "--junit-xml",
        metavar="FILE",
        help="write JUnit XML of the scenario's client expectations: one test per verdict",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.faults import check_realizable
    from harness.lab import LabOptions, run_lab
    from harness.procs import ProcessError
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        report_problems(exc.problems)
        return EXIT_USAGE
    problems = check_realizable(scenario)
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        return usage_error("--duration must be > 0")
    if args.first_request_timeout <= 0:
        return usage_error("--first-request-timeout must be > 0")
    out_dir = Path(args.out) if args.out else Path("out") / f"lab-{scenario.name}"
    options = LabOptions(args.duration, args.start_now, args.first_request_timeout)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def ready(urls: LabUrls) -> None:
        print(f"API (through Toxiproxy):     {urls.api}")
        print(f"streams (through Toxiproxy): {urls.streams}")
        print(f"example page:                {urls.page()}")
        print("send X-Herdlab-Client: NAME (or ?herdlab_client=NAME) to be told apart", flush=True)
        if args.urls_file:
            import json

            Path(args.urls_file).write_text(
                json.dumps(
                    {
                        "api": urls.api,
                        "streams": urls.streams,
                        "direct": urls.direct,
                        "page": urls.page(),
                    }
                )
            )

    started = time.monotonic()
    try:
        record = run_lab(scenario, out_dir, options, say, ready)
    except ProcessError as exc:
        print(f"cannot start the lab: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print((out_dir / "report.md").read_text())
    print(f"results: {out_dir}/results.json ({record['requests']} requests recorded)")
    checks = record["checks"]
    if args.junit_xml:
        from reports.junit import Suite, junit_xml

        suite = Suite(scenario.name, scenario.source, checks, time.monotonic() - started)
        Path(args.junit_xml).write_text(junit_xml([suite]))
        print(f"junit: {args.junit_xml}")
    return EXIT_OK if checks["status"] == "PASS" else EXIT_FAILED
