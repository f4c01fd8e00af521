"""``herdlab validate FILE...``: check scenario files, print every problem, exit 2 on any."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import EXIT_OK, EXIT_USAGE, report_problems


def add_parser(sub: Any) -> None:
    p = sub.add_parser("validate", help="check scenario and sweep files and print every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from sim.scenario.errors import Problem, ScenarioError
    from sim.scenario.loader import has_sweep, load_scenario

    problems: list[Problem] = []
    for file in args.files:
        try:
            if has_sweep(file):  # a sweep's values and paths, and its scenario's
                from sim.sweep.spec import load_sweep

                sweep = load_sweep(file)
                scenario = load_scenario(sweep.scenario_file)
            else:
                scenario = load_scenario(file)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        print(
            f"{file}: ok ({scenario.name}: {len(scenario.policies)} policies, "
            f"{len(scenario.faults)} faults)"
        )
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    return EXIT_OK
