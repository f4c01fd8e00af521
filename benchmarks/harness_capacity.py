"""Harness capacity: how many concurrent clients and requests per second the real harness
sustains through Toxiproxy on this machine, and how late its own timers fire under that
load (the p99 lag of a scheduled sleep), so you know when the harness, not the policy, is
the bottleneck.

    python benchmarks/harness_capacity.py [--clients 1000] [--rates 250 500 1000]
                                          [--seconds 10] [--repeats 3]

Prints figures; asserts nothing. Targets: 1,000 concurrent clients, 1,000 requests/s,
timer lag p99 under 10 ms. Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from harness import aio
from harness.procs import LOOPBACK
from harness.real import RealBench

SCENARIO = """\
name: capacity
duration_s: 60
clients: {count: 1, arrival: {kind: burst}}
service:
  instances: 100
  concurrency: 100
  queue_limit: 100000
  service_time: {kind: constant, value_s: 0.01}
  progress_events: 1
policies: [no-retry]
"""
MAX_REQUESTS_PER_CLIENT = 100_000
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


async def load(
    url: str, clients: int, rate_per_s: float, seconds: float, keepalive: bool = False
) -> dict[str, float]:
    """``clients`` concurrent clients, each sending one request every ``clients / rate``
    seconds (paced by asyncio.sleep: the timers a retry policy also relies on), for
    ``seconds``. Measures the rate achieved and how late each pacing timer fired."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    stop_at = start + seconds
    period = clients / rate_per_s
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0, period, clients).tolist()
    done = 0
    errors = 0
    latencies: list[float] = []
    lags: list[float] = []

    async def client(session: aiohttp.ClientSession, offset: float) -> None:
        nonlocal done, errors
        due = start + offset
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if due >= stop_at:
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                lags.append(loop.time() - due)
            t = loop.time()
            try:
                async with session.post(f"{url}/api/ai/jobs", json={}) as r:
                    await r.read()
                    if r.status == 201:
                        done += 1
                    else:
                        errors += 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                errors += 1
            latencies.append(loop.time() - t)
            due += period

    connector = aiohttp.TCPConnector(force_close=not keepalive, limit=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session, o) for o in offsets))
        wall = loop.time() - start
    return {
        "requests_per_s": done / wall,
        "errors": errors,
        "latency_p50_ms": float(np.percentile(latencies, 50)) * 1000 if latencies else 0,
        "latency_p99_ms": float(np.percentile(latencies, 99)) * 1000 if latencies else 0,
        "timer_lag_p50_ms": float(np.percentile(lags, 50)) * 1000 if lags else 0,
        "timer_lag_p99_ms": float(np.percentile(lags, 99)) * 1000 if lags else 0,
    }


def one_row(
    bench: RealBench, scenario: Path, clients: int, rate: float, seconds: float, keepalive: bool
) -> dict[str, float]:
    """One load run on a fresh server, with the cores each process used meanwhile."""
    api, _, _ = bench.start_server(str(scenario), 1.0, 0)
    assert api.startswith(f"http://{LOOPBACK}:")
    assert bench.toxiproxy is not None and bench.server is not None
    pids = [p for p in (bench.toxiproxy.process.pid, bench.server.process.pid) if p is not None]
    pids.append(os.getpid())
    before = [cpu_s(pid) for pid in pids]
    t0 = time.monotonic()
    r = aio.run(load(api, clients, rate, seconds, keepalive))
    wall_s = time.monotonic() - t0
    for name, pid, b in zip(("toxiproxy", "server", "clients"), pids, before, strict=True):
        r[f"cores_{name}"] = (cpu_s(pid) - b) / wall_s
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rates", type=float, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per row (this VM's timing is noisy)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="herdlab-capacity-"))
    scenario = work / "capacity.yaml"
    scenario.write_text(SCENARIO)
    bench = RealBench(work / "logs")
    try:
        bench.start()
        print(
            f"{args.clients} concurrent clients through Toxiproxy, {args.seconds:g} s a run,"
            f" {args.repeats} runs a row (median; lag p99 also its worst run),"
            f" event loop: {aio.loop_name()} (server and clients)"
        )
        print(
            f"{'connections':>12} {'offered/s':>9} {'done/s':>8} {'errors':>7} {'lat p99':>8}"
            f" {'lag p50':>8} {'lag p99':>8} {'worst':>8}  (ms)"
            "   cores: toxiproxy server clients"
        )
        for keepalive in (False, True):
            for rate in args.rates:
                runs = [
                    one_row(bench, scenario, args.clients, rate, args.seconds, keepalive)
                    for _ in range(args.repeats)
                ]

                def med(key: str, runs: list[dict[str, float]] = runs) -> float:
                    return float(np.median([r[key] for r in runs]))

                worst = max(r["timer_lag_p99_ms"] for r in runs)
                errors = sum(r["errors"] for r in runs)
                mode = "keep-alive" if keepalive else "per request"
                print(
                    f"{mode:>12} {rate:>9.0f} {med('requests_per_s'):>8.0f} {errors:>7.0f}"
                    f" {med('latency_p99_ms'):>8.1f} {med('timer_lag_p50_ms'):>8.2f}"
                    f" {med('timer_lag_p99_ms'):>8.2f} {worst:>8.2f}"
                    f"          {med('cores_toxiproxy'):.2f}  {med('cores_server'):.2f}"
                    f"  {med('cores_clients'):.2f}",
                    flush=True,
                )
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
