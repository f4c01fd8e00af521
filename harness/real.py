"""``herdlab run --mode real``: a scenario against the real job server through Toxiproxy.

Starts Redis, Toxiproxy and (per policy, so each starts clean and with the same seeded
service times) the job server; creates the proxies (clients -> server for the API and for
streams, server -> Redis); plays the fault timeline; runs the clients as asyncio tasks
with the same policy objects on a real clock; writes the same results.json and CSVs as the
simulator. Every run is bounded in time; Ctrl-C or a crash stops every process it started,
resets Toxiproxy and keeps the partial results, marked incomplete (written before the
processes are stopped, and further Ctrl-Cs wait for the stopping to finish). A run first
stops what a killed run left running (:func:`harness.runfile.stop_leftovers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from harness import aio
from harness.client import ClientContext, job_client
from harness.faults import JOBS_PROXY, REDIS_PROXY, STREAMS_PROXY, plan
from harness.procs import LOOPBACK
from harness.runfile import ProcessId, stop_leftovers
from harness.services import Service, start_job_server, start_redis, start_toxiproxy
from harness.toxi import Toxi
from sim.policies.policy import Policy
from sim.results import new_record, policy_entry, write_results
from sim.scenario.model import Burst, ClosedLoop, Poisson, Ramp, RateStep, Scenario
from sim.world.arrivals import arrival_times_s
from sim.world.metrics import JobOutcome, Recorder
from sim.world.rng import Streams
from sim.world.summary import summarize

Progress = Callable[[str], None]
SETTLE_S = 5.0  # after the last client's deadline, in case a request is still in flight


def scale_scenario(scenario: Scenario, scale: float) -> Scenario:
    """Shrink client count, arrival rates and capacity together by ``scale``."""
    if scale == 1.0:
        return scenario
    c = scenario.clients
    a = c.arrival
    arrival: Burst | Poisson | Ramp | ClosedLoop = a
    if isinstance(a, Poisson):
        arrival = Poisson(tuple(RateStep(s.from_s, s.rate_per_s * scale) for s in a.schedule))
    elif isinstance(a, Ramp):
        arrival = dataclasses.replace(
            a, from_rate_per_s=a.from_rate_per_s * scale, to_rate_per_s=a.to_rate_per_s * scale
        )
    count = None if c.count is None else max(1, round(c.count * scale))
    s = scenario.service
    service = dataclasses.replace(
        s,
        instances=max(1, round(s.instances * scale)),
        queue_limit=round(s.queue_limit * scale),
        rate_limit=None
        if s.rate_limit is None
        else dataclasses.replace(s.rate_limit, rate_per_s=s.rate_limit.rate_per_s * scale),
    )
    faults = tuple(
        dataclasses.replace(f, instances=round(f.instances * scale)) if f.instances else f
        for f in scenario.faults
    )
    return dataclasses.replace(
        scenario,
        clients=dataclasses.replace(c, count=count, arrival=arrival),
        service=service,
        faults=faults,
    )


class RealBench:
    """Redis, Toxiproxy and their proxies for one run; the job server per policy."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.redis: Service | None = None
        self.toxiproxy: Service | None = None
        self.server: Service | None = None
        self.toxi: Toxi | None = None
        self.redis_proxy_port = 0
        self.leftovers: list[ProcessId] = []  # what a killed run had left, stopped at start

    def start(self) -> None:
        self.leftovers = stop_leftovers()
        self.redis = start_redis(self.log_dir)
        self.toxiproxy = start_toxiproxy(self.log_dir)
        self.toxi = Toxi(LOOPBACK, self.toxiproxy.port)
        self.redis_proxy_port = self.toxi.proxy(REDIS_PROXY, self.redis.address)
        self._write_pids()

    def _write_pids(self) -> None:
        """Every pid this bench started, for whoever must check they are gone."""
        pids = {
            name: s.process.pid
            for name, s in (
                ("redis", self.redis),
                ("toxiproxy", self.toxiproxy),
                ("job-server", self.server),
            )
            if s is not None
        }
        path = self.log_dir / "pids.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        known.update({f"{k}:{v}": v for k, v in pids.items()})
        path.write_text(json.dumps(known, indent=1))

    def restart_redis(self) -> None:
        """Start Redis again on its port and data directory (after it was killed)."""
        assert self.redis is not None
        self.redis.stop()
        self.redis = start_redis(self.log_dir, self.redis.port)
        self._write_pids()

    def start_server(self, scenario_path: str, scale: float, seed: int) -> tuple[str, str, str]:
        """(Re)start the job server; returns the API, stream and admin base URLs."""
        assert self.toxi is not None
        if self.server is not None:
            self.server.stop()
        self.toxi.reset()
        self.server = start_job_server(
            self.log_dir, f"{LOOPBACK}:{self.redis_proxy_port}", scenario_path, scale, seed
        )
        self._write_pids()
        api = self.toxi.proxy(JOBS_PROXY, self.server.address)
        streams = self.toxi.proxy(STREAMS_PROXY, self.server.address)
        return (
            f"http://{LOOPBACK}:{api}",
            f"http://{LOOPBACK}:{streams}",
            f"http://{self.server.address}",
        )

    def stop(self) -> None:
        """Reset Toxiproxy, remove the proxies, stop every process; never raises."""
        if self.toxi is not None:
            try:
                self.toxi.reset()
                self.toxi.destroy_all()
            except Exception:
                pass
        for service in (self.server, self.toxiproxy, self.redis):
            if service is not None:
                service.stop()


async def _play(
    actions: list[Any],
    toxi: Toxi,
    admin_url: str,
    session: aiohttp.ClientSession,
    clock: Callable[[], float],
    log: list[str],
) -> None:
    for action in actions:
        wait = action.at_s - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        if action.toxi is not None:
            await asyncio.to_thread(action.toxi, toxi)
        if action.admin is not None:
            async with session.post(f"{admin_url}/admin/faults", json=action.admin) as r:
                r.raise_for_status()
        log.append(f"{clock():8.3f} s  {action.label}")


async def _sample(
    rec: Recorder,
    bucket_s: float,
    admin_url: str,
    session: aiohttp.ClientSession,
    clock: Callable[[], float],
    concurrency: int,
) -> None:
    g = rec.gauges
    b = 0
    while b < rec.n:
        await asyncio.sleep(max(0.0, (b + 1) * bucket_s - clock()))
        stats: dict[str, Any] = {}
        try:
            timeout = aiohttp.ClientTimeout(total=bucket_s)
            async with session.get(f"{admin_url}/admin/stats", timeout=timeout) as r:
                stats = await r.json()
        except (aiohttp.ClientError, TimeoutError, OSError):
            pass
        while b < rec.n and (b + 1) * bucket_s <= clock() + 1e-9:
            g["in_flight"][b] = rec.in_flight
            g["queue_length"][b] = stats.get("queued", 0)
            g["busy_slots"][b] = stats.get("running", 0)
            g["active_instances"][b] = stats.get("capacity", 0) // max(1, concurrency)
            g["clients_connected"][b] = rec.connected
            g["clients_reconnecting"][b] = rec.reconnecting
            g["clients_disconnected"][b] = rec.disconnected
            b += 1


async def run_policy_real(
    scenario: Scenario,
    policy: Policy,
    urls: tuple[str, str, str],
    toxi: Toxi,
    seed: int,
    fault_log: list[str],
    keep_alive: bool = False,
) -> Recorder:
    """Run every client of ``scenario`` under ``policy`` for real; bounded in count and time.

    By default every request opens its own connection, as in the model, so a connection
    fault acts on each request. ``keep_alive`` reuses pooled connections, as browsers and
    HTTP libraries do: about half the CPU per request (Toxiproxy no longer dials the
    server for every request), for runs at 1,000 requests/s."""
    api_url, stream_url, admin_url = urls
    streams = Streams.from_seed(seed)
    c = scenario.clients
    horizon_s = scenario.duration_s + c.job_timeout_s + c.request_timeout_s + SETTLE_S
    rec = Recorder(horizon_s, scenario.bucket_s)
    times = arrival_times_s(scenario, streams.arrivals).tolist()
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def clock() -> float:
        return loop.time() - t0

    connector = aiohttp.TCPConnector(force_close=not keep_alive, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        shared = c.budget_scope.value == "shared"
        ctx = ClientContext(
            base_url=api_url,
            stream_url=stream_url,
            session=session,
            policy=policy,
            rng=streams.policy,
            rec=rec,
            clock=clock,
            sleep=asyncio.sleep,
            request_timeout_s=c.request_timeout_s,
            job_timeout_s=c.job_timeout_s,
            follow_stream=c.follow_stream,
            shared=shared,
            shared_state=policy.retry.new_state(),
        )
        background = [
            asyncio.create_task(
                _play(plan(scenario.faults), toxi, admin_url, session, clock, fault_log)
            ),
            asyncio.create_task(
                _sample(
                    rec, scenario.bucket_s, admin_url, session, clock, scenario.service.concurrency
                )
            ),
        ]
        tasks: list[asyncio.Task[None]] = []

        async def one(index: int) -> None:
            await job_client(ctx, index)

        async def closed_user(start_s: float, think: ClosedLoop) -> None:
            await asyncio.sleep(max(0.0, start_s - clock()))
            while clock() < scenario.duration_s:
                await one(rec.new_job(clock()))
                await asyncio.sleep(think.think.sample_s(streams.think))

        arrival = c.arrival
        try:  # an interruption during the arrivals, too, cancels and awaits every task
            if isinstance(arrival, ClosedLoop):
                tasks = [asyncio.create_task(closed_user(t, arrival)) for t in times]
            else:
                for t in times:
                    wait = t - clock()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    tasks.append(asyncio.create_task(one(rec.new_job(clock()))))
            if tasks:
                await asyncio.wait(tasks, timeout=max(0.0, horizon_s - clock()))
        finally:
            for t in tasks + background:
                t.cancel()
            await asyncio.gather(*tasks, *background, return_exceptions=True)
        try:
            async with session.get(f"{admin_url}/admin/stats") as resp:
                rec.degraded_accepts = int((await resp.json()).get("degraded", 0))
        except (aiohttp.ClientError, OSError):
            pass
    end = clock()
    for i, outcome in enumerate(rec.outcome):  # cut off by the run's bound
        if outcome == JobOutcome.PENDING:
            rec.end_job(i, JobOutcome.TIMED_OUT, end)
    rec.close(end)
    return rec


def run_real(
    scenario: Scenario,
    out_dir: Path,
    policies: Sequence[Policy] | None = None,
    seed: int | None = None,
    scale: float = 1.0,
    progress: Progress | None = None,
    keep_alive: bool = False,
) -> dict[str, Any]:
    """Run every policy for real; write results.json, CSVs and logs into ``out_dir``."""
    policies = list(policies if policies is not None else scenario.policies)
    seed = scenario.seed if seed is None else seed
    scaled = scale_scenario(scenario, scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        **new_record(scaled, "real", seed, 1),
        "scale": scale,
        "connections": "keep-alive" if keep_alive else "per-request",
        "event_loop": aio.loop_name(),
        "fault_log": {},
    }
    write_results(out_dir, record)
    bench = RealBench(out_dir / "logs")
    try:
        bench.start()
        assert bench.toxi is not None
        if bench.leftovers and progress:
            names = ", ".join(f"{p.name} (pid {p.pid})" for p in bench.leftovers)
            progress(f"stopped what a killed run had left running: {names}")
        for policy in policies:
            if progress:
                progress(f"{policy.name}: running for real (about {scaled.duration_s:g} s)")
            urls = bench.start_server(scenario.source, scale, seed)
            log: list[str] = []
            started = time.monotonic()
            rec = aio.run_interruptible(
                run_policy_real(scaled, policy, urls, bench.toxi, seed, log, keep_alive)
            )
            entry = policy_entry(out_dir, scaled, policy, rec, [summarize(rec, scaled)])
            entry["wall_s"] = round(time.monotonic() - started, 3)
            record["policies"].append(entry)
            record["fault_log"][policy.name] = log
            write_results(out_dir, record)
        record["complete"] = True
    except KeyboardInterrupt:
        record["interrupted"] = True
        write_results(out_dir, record)  # now: stopping the processes takes a while
        raise
    finally:
        with _interrupts_deferred():
            bench.stop()
            write_results(out_dir, record)
    return record


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM say "one moment" instead of cutting the clean-up short (which
    would leave processes running and the results unwritten); the clean-up is bounded
    (each process: SIGTERM, then SIGKILL after a grace time)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def patience(signum: int, frame: object) -> None:
        print("stopping the processes this run started (by pid); one moment", file=sys.stderr)

    previous = {sig: signal.signal(sig, patience) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def server_stats(admin_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{admin_url}/admin/stats", timeout=2) as r:
        return dict(json.loads(r.read()))
