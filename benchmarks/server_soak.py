"""Server soak: a million jobs through the reference job server, round after round, to
show that its memory and latency stay flat (finished jobs expire, in memory and in
Redis, so nothing grows with the number of jobs served).

    python benchmarks/server_soak.py [--jobs 1000000] [--rounds 20] [--concurrency 64]
                                     [--ttl-s 5] [--max-s 1800]

Starts Redis and ``herdlab serve`` (straight to Redis, no Toxiproxy) on loopback, then
sends ``--jobs`` job creations in ``--rounds`` equal rounds from ``--concurrency``
keep-alive clients (a minimal HTTP/1.1 client on asyncio streams), and prints per round:
jobs/s, latency p50 and p99, the server's resident memory (RSS), the jobs it holds and
Redis's key count. Bounded in count (the
jobs) and in time (``--max-s``: no new round starts after it). Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from harness import aio
from harness.procs import LOOPBACK, stop_all
from harness.services import start_job_server, start_redis

SCENARIO = """\
name: soak
duration_s: 60
clients: {count: 1, arrival: {kind: burst}}
service:
  instances: 100
  concurrency: 100
  queue_limit: 100000
  service_time: {kind: constant, value_s: 0.01}
  progress_events: 2
policies: [no-retry]
"""


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid``, in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


REQUEST = b"POST /api/ai/jobs HTTP/1.1\r\nHost: soak\r\nContent-Length: 0\r\n\r\n"


async def client(port: int, jobs: int, latencies_ms: list[float]) -> int:
    """One keep-alive connection sending ``jobs`` creations one after another, with a
    minimal HTTP/1.1 client (aiohttp's would cost the machine as much CPU as the server
    it measures); the count of answers that were not 201."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    failed = 0
    try:
        for _ in range(jobs):
            sent = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies_ms.append((time.perf_counter() - sent) * 1000)
            failed += not head.startswith(b"HTTP/1.1 201")
    finally:
        writer.close()
    return failed


async def one_round(port: int, jobs: int, concurrency: int) -> dict[str, Any]:
    """``jobs`` creations from ``concurrency`` clients, each sending its next request when
    its last is answered; latency percentiles in ms and the count of non-201 answers."""
    latencies_ms: list[float] = []
    share = [jobs // concurrency + (i < jobs % concurrency) for i in range(concurrency)]
    started = time.perf_counter()
    failed = await asyncio.gather(*(client(port, n, latencies_ms) for n in share))
    took_s = time.perf_counter() - started
    lat = np.array(latencies_ms)
    return {
        "jobs_per_s": jobs / took_s,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "failed": sum(failed),
    }


def stats(url: str) -> dict[str, Any]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/admin/stats", timeout=5) as r:
        return dict(json.loads(r.read()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ttl-s", type=float, default=5.0, help="the server's --job-ttl-s")
    parser.add_argument("--max-s", type=float, default=1800.0, help="no new round after this")
    args = parser.parse_args()
    per_round = args.jobs // args.rounds
    with tempfile.TemporaryDirectory(prefix="herdlab-soak-") as tmp:
        logs = Path(tmp)
        (logs / "soak.yaml").write_text(SCENARIO)
        try:
            store = start_redis(logs)
            server = start_job_server(
                logs, store.address, str(logs / "soak.yaml"),
                extra_args=["--job-ttl-s", f"{args.ttl_s:g}"],
            )  # fmt: skip
            assert server.process.pid is not None
            url = f"http://{LOOPBACK}:{server.port}"
            keys = redis.Redis(host=LOOPBACK, port=store.port)
            print(f"{args.jobs:,} jobs in {args.rounds} rounds of {per_round:,},"
                  f" {args.concurrency} keep-alive clients, job TTL {args.ttl_s:g} s,"
                  f" event loop {aio.loop_name()}")  # fmt: skip
            print("round   jobs  jobs/s  p50 ms  p99 ms  server RSS MB  jobs held  redis keys"
                  "  failed")  # fmt: skip
            started = time.monotonic()
            done = 0
            for r in range(1, args.rounds + 1):
                if time.monotonic() - started > args.max_s:
                    print(f"stopped: --max-s {args.max_s:g} s reached after {r - 1} rounds")
                    break
                res = aio.run(one_round(server.port, per_round, args.concurrency))
                done += per_round
                s = stats(url)
                print(f"{r:5d} {done:8,d} {res['jobs_per_s']:7.0f} {res['p50_ms']:7.1f}"
                      f" {res['p99_ms']:7.1f} {rss_mb(server.process.pid):14.1f}"
                      f" {s['jobs']:10,d} {keys.dbsize():11,d} {res['failed']:7d}",
                      flush=True)  # fmt: skip
            print(f"total {time.monotonic() - started:.0f} s; server stats: accepted"
                  f" {s['accepted']:,}, expired {s['expired']:,}")  # fmt: skip
        finally:
            stop_all()


if __name__ == "__main__":
    main()
