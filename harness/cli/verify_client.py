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
    p.add_argument(
        "--junit-xml",
        metavar="FILE",
        help="also write JUnit XML: one test per rule that checked something",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.conformance import conforms, pick_client, render, rule_verdicts, verify
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
    client, why = pick_client(clients, args.client)
    if not client:
        hint = "; pick one with --client" if args.client is None and len(clients) > 1 else ""
        return usage_error(f"{path}: {why}{hint}")
    rules = verify(policy, clients[client], args.late_slack)
    render(rules, f"client {client} against policy {policy.name}", print)
    if args.junit_xml:
        from reports.junit import Suite, junit_xml
        from sim.decide.expect import checks_record

        evaluation = rule_verdicts(rules, policy.name, client, str(path))
        suite = Suite("verify-client", str(path), checks_record(evaluation, False), 0.0)
        Path(args.junit_xml).write_text(junit_xml([suite]))
        print(f"junit: {args.junit_xml}")
    return EXIT_OK if conforms(rules) else EXIT_FAILED
