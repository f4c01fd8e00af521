"""``herdlab schema``: the JSON Schema of scenario files, for editor completion."""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.cli.common import EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from sim.scenario.grammar import json_schema
    from sim.scenario.schema import SCENARIO

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "herdlab scenario",
        **json_schema(SCENARIO),
    }
    print(json.dumps(schema, indent=2))
    return EXIT_OK
