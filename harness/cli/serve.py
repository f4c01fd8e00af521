"""``herdlab serve``: the reference job server alone, on loopback."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli.common import EXIT_OK, EXIT_USAGE, report_problems

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the reference job server")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--redis-url", default=None, help="e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--scenario", help="take capacity, service times and events from it")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--admin", action="store_true", help="enable the /admin fault API")
    p.add_argument(
        "--cors-origin",
        metavar="ORIGIN",
        default=None,
        help="let pages from ORIGIN (e.g. http://localhost:3000) call the API (default: none)",
    )
    p.add_argument(
        "--job-ttl-s",
        type=float,
        default=None,
        metavar="S",
        help="forget a finished job after S seconds, in memory and in Redis (default 600)",
    )
    p.add_argument(
        "--record",
        metavar="FILE",
        help="record every request, by client and job, as JSON lines in FILE (the lab)",
    )
    p.add_argument(
        "--lab-pages",
        metavar="DIR",
        help="with --record: serve DIR under /lab/pages/ and answer CORS (the lab's pages)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from harness.server import JOB_TTL_S, ServerConfig, serve
    from sim.scenario.errors import ScenarioError
    from sim.scenario.loader import load_scenario

    if args.host not in LOOPBACK and not args.allow_remote:
        print(
            f"refusing to listen on {args.host}: herdlab serves loopback only unless"
            " --allow-remote is given",
            file=sys.stderr,
        )
        return EXIT_USAGE
    problem = _check_origin(args.cors_origin)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    job_ttl_s = JOB_TTL_S if args.job_ttl_s is None else args.job_ttl_s
    if not 1 <= job_ttl_s <= 86_400:
        print(f"--job-ttl-s must be in [1, 86400], got {job_ttl_s:g}", file=sys.stderr)
        return EXIT_USAGE
    config = ServerConfig(seed=args.seed)
    if args.scenario:
        try:
            config = ServerConfig.from_scenario(load_scenario(args.scenario), args.scale, args.seed)
        except ScenarioError as exc:
            report_problems(exc.problems)
            return EXIT_USAGE
    setup_app = None
    if args.record:
        from pathlib import Path

        from harness.recorder import Recorder

        pages = Path(args.lab_pages) if args.lab_pages else None
        setup_app = Recorder(Path(args.record), pages, cors=pages is not None).install
    serve(
        config,
        args.port,
        args.redis_url,
        args.admin,
        args.host,
        args.cors_origin,
        job_ttl_s,
        setup_app,
    )
    return EXIT_OK


def _check_origin(origin: str | None) -> str | None:
    """What is wrong with a ``--cors-origin`` value (an origin is scheme://host[:port])."""
    if origin is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or origin != (f"{parts.scheme}://{parts.netloc}")
    ):
        return (
            f"--cors-origin must be an origin, scheme://host[:port] with no path,"
            f" e.g. http://localhost:3000; got {origin!r}"
        )
    return None
