"""``herdlab verify-client --policy NAME|FILE OBSERVED_DIR``: hold what a client did in
the lab to the policy it declares; exit 1 when it breaks it (a CI step)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_FAILED, EXIT_OK, report_problems, resolve_all, usage_error


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify-client",
        help="check a client recorded by 'herdlab lab' against a declared policy",
    )
    p.add_argument("observed", metavar="OBSERVED_DIR", help="the lab's output directory")
    p.add_argument("--policy", required=True, metavar="NAME|FILE", help="a preset or policy file")
    p.add_argument(
        "--client",
        metavar="ID",
        help="which recorded client (needed when the lab recorded several)",
    )
    p.add_argument(
        "--late-slack",
        type=float,
        default=0.25,
        metavar="S",
        help="a wait may be this much longer than the policy's range (+5%%): timers fire"
        " late on a loaded machine (default 0.25)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.conformance import conforms, render, verify
    from harness.lab import REQUESTS_FILE
    from harness.observed import group_jobs, load_requests

    if args.late_slack < 0:
        return usage_error("--late-slack must be >= 0")
    policies, problems = resolve_all([args.policy])
    if problems:
        report_problems(problems)
        return 2
    if len(policies) != 1:
        names = ", ".join(p.name for p in policies)
        return usage_error(f"{args.policy} holds {len(policies)} policies ({names}): name one")
    policy = policies[0]
    path = Path(args.observed) / REQUESTS_FILE
    if not path.is_file():
        return usage_error(f"{path}: no such file; run 'herdlab lab SCENARIO --out DIR' first")
    clients = group_jobs(load_requests(path))
    if not clients:
        return usage_error(f"{path}: no request was recorded")
    client = args.client
    if client is None:
        named = [c for c in clients if not c.startswith("conn-")]
        if len(clients) > 1 and len(named) != 1:
            return usage_error(
                f"{len(clients)} clients recorded; pick one with --client: {', '.join(clients)}"
            )
        client = named[0] if named else next(iter(clients))
    if client not in clients:
        return usage_error(f"no client {client!r} recorded; recorded: {', '.join(clients)}")
    rules = verify(policy, clients[client], args.late_slack)
    render(rules, f"client {client} against policy {policy.name}", print)
    return EXIT_OK if conforms(rules) else EXIT_FAILED
