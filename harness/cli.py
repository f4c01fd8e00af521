"""The ``herdlab`` command line.

A user's mistake (a bad scenario, a missing file, a wrong flag) prints
``FILE:LINE: path: rule`` lines and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from sim import __version__
from sim.policies.describe import describe_policy
from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.grammar import json_schema
from sim.scenario.loader import load_scenario, resolve_policy
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


def cmd_policy_show(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    blocks: list[str] = []
    for name in args.policies:
        try:
            policies = resolve_policy(name)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        blocks.extend(describe_policy(p, draws=args.draws, seed=args.seed) for p in policies)
    print("\n\n".join(blocks))
    if problems:
        _report_problems(problems)
        return EXIT_USAGE
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

    p = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("policy", help="inspect policies")
    psub = p.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    show = psub.add_parser("show", help="settings and per-retry delay distribution")
    show.add_argument("policies", nargs="+", metavar="NAME|FILE")
    show.add_argument("--draws", type=int, default=10_000, help="seeded draws per retry")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(func=cmd_policy_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
