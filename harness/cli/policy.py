"""``herdlab policy show|plot NAME|FILE...``: a policy's settings and its delays."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, EXIT_USAGE, report_problems, resolve_all


def add_parser(sub: Any) -> None:
    p = sub.add_parser("policy", help="inspect policies")
    psub = p.add_subparsers(dest="policy_command", required=True, parser_class=type(p))
    show = psub.add_parser("show", help="settings and per-retry delay distribution")
    show.add_argument("policies", nargs="+", metavar="NAME|FILE")
    show.add_argument("--draws", type=int, default=10_000, help="seeded draws per retry")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(func=show_main)
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
    plot.set_defaults(func=plot_main)


def show_main(args: argparse.Namespace) -> int:
    from sim.policies.describe import describe_policy

    policies, problems = resolve_all(args.policies)
    print("\n\n".join(describe_policy(p, draws=args.draws, seed=args.seed) for p in policies))
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    return EXIT_OK


def plot_main(args: argparse.Namespace) -> int:
    from reports.policy_plot import policy_delays
    from reports.style import save
    from sim.policies.describe import delay_samples

    policies, problems = resolve_all(args.policies)
    samples = {}
    reconnects = {}
    for p in policies:
        retries = min(p.retry.max_attempts - 1, args.retries)  # 0: a policy without retries
        samples[p.name] = delay_samples(p.retry.backoff, retries, args.draws, args.seed)
        most = p.reconnect.max_attempts  # None: unlimited
        count = args.retries if most is None else min(most, args.retries)
        reconnects[p.name] = delay_samples(p.reconnect.backoff, count, args.draws, args.seed)
    if problems:
        report_problems(problems)
        return EXIT_USAGE
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    png, svg = save(policy_delays(samples, reconnect_s=reconnects), out.with_suffix(""))
    print(f"policy plot: {png} and {svg}")
    return EXIT_OK
