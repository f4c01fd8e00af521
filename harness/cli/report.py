"""``herdlab report RESULTS_DIR``: charts and one self-contained HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, EXIT_USAGE


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="charts and a self-contained HTML report of a results dir")
    p.add_argument("results_dir", metavar="RESULTS_DIR")
    p.add_argument("-o", "--output", metavar="FILE", help="default RESULTS_DIR/report.html")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from reports.data import ResultsError, load_results
    from reports.html import write_report

    directory = Path(args.results_dir)
    try:
        results = load_results(directory)
    except ResultsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.output) if args.output else directory / "report.html"
    write_report(results, out)
    print(f"report: {out}")
    return EXIT_OK
