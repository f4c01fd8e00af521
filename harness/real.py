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
import itertools
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
from harness.browser_clients import (
    Pages,
    browser_job,
    count_page_requests,
    open_tabs,
    page_url,
    requests_log,
)
from harness.client import ClientContext, job_client
from harness.faults import (
    CLIENT_PROXIES,
    JOBS_PROXY,
    REDIS_PROXY,
    STREAMS_PROXY,
    StreamRouter,
    cut_proxies,
    plan,
)
from harness.network import apply_network_latency
from harness.procs import LOOPBACK
from harness.runfile import ProcessId, stop_leftovers
from harness.services import REPO, Service, start_job_server, start_redis, start_toxiproxy
from harness.toxi import Toxi
from harness.watch import Watch
from sim.distributions import Distribution
from sim.policies.policy import Policy
from sim.results import artifacts_of, new_record, policy_entry, write_results
from sim.scenario.model import ClosedLoop, Scenario
from sim.scenario.scale import scale_scenario
from sim.world.arrivals import arrival_times_s
from sim.world.metrics import JobOutcome, Recorder
from sim.world.rng import Streams
from sim.world.summary import summarize

Progress = Callable[[str], None]
PAGES_DIR = REPO / "examples" / "web"  # the seed's page, for browser clients and the lab
SETTLE_S = 5.0  # after the last client's deadline, in case a request is still in flight
__all__ = ["RealBench", "run_policy_real", "run_real", "scale_scenario", "server_stats"]


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
        self.stream_urls: dict[str, str] = {}

    def start(self) -> None:
        self.leftovers = stop_leftovers()
        self.redis = start_redis(self.log_dir)
        self.toxiproxy = start_toxiproxy(self.log_dir)
        self.toxi = Toxi(LOOPBACK, self.toxiproxy.port)
        self.redis_proxy_port = self.toxi.proxy(REDIS_PROXY, self.redis.address)
        self._write_pids()

    def pids(self) -> dict[str, int | None]:
        """The pids of the server, Toxiproxy and Redis (for their CPU use)."""
        return {
            name: s.process.pid if s is not None else None
            for name, s in (
                ("server", self.server),
                ("toxiproxy", self.toxiproxy),
                ("redis", self.redis),
            )
        }

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

    def start_server(
        self,
        scenario_path: str,
        scale: float,
        seed: int,
        network_latency: Distribution | None = None,
        stream_spares: Sequence[str] = (),
        extra_args: tuple[str, ...] = (),
    ) -> tuple[str, str, str]:
        """(Re)start the job server; returns the API, stream and admin base URLs.

        ``stream_spares`` are the streams proxies stream cuts route herdlab's clients
        through (``harness.faults.cut_proxies``); ``self.stream_urls`` has every streams
        proxy's URL by name. With ``network_latency`` (the scenario's
        ``network.latency``), every client proxy delays each chunk each way by it, as
        the model delays every message. ``extra_args`` go to ``herdlab serve`` (the
        lab's ``--record``)."""
        assert self.toxi is not None
        if self.server is not None:
            self.server.stop()
        self.toxi.reset()
        self.server = start_job_server(
            self.log_dir,
            f"{LOOPBACK}:{self.redis_proxy_port}",
            scenario_path,
            scale,
            seed,
            extra_args,
        )
        self._write_pids()
        api = self.toxi.proxy(JOBS_PROXY, self.server.address)
        streams = self.toxi.proxy(STREAMS_PROXY, self.server.address)
        self.stream_urls = {STREAMS_PROXY: f"http://{LOOPBACK}:{streams}"}
        for name in stream_spares:
            self.stream_urls[name] = (
                f"http://{LOOPBACK}:{self.toxi.proxy(name, self.server.address)}"
            )
        if network_latency is not None:
            apply_network_latency(self.toxi, network_latency, (*CLIENT_PROXIES, *stream_spares))
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


async def play_faults(
    actions: list[Any],
    toxi: Toxi,
    admin_url: str,
    session: aiohttp.ClientSession,
    clock: Callable[[], float],
    log: list[str],
    watch: Watch | None = None,
    on_cut: Callable[[int], None] | None = None,
) -> None:
    async def switch(action: Any) -> None:
        if action.toxi is not None:
            await asyncio.to_thread(action.toxi, toxi)
        if action.admin is not None:
            async with session.post(f"{admin_url}/admin/faults", json=action.admin) as r:
                r.raise_for_status()
        log.append(f"{clock():8.3f} s  {action.label}")
        if watch is not None:
            watch.switched(action.label, action.at_s)

    # Switches due at one instant go together: disabling a proxy with a hundred streams
    # open takes Toxiproxy 0.1-0.3 s, and a 503 outage due at the same instant must not
    # wait for it (it did: 0.3-0.6 s late in the thundering herd, letting reconnects in).
    for _, group in itertools.groupby(actions, key=lambda a: a.at_s):
        due = list(group)
        wait = due[0].at_s - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        for action in due:
            if action.cut is not None and on_cut is not None:
                on_cut(action.cut)
        await asyncio.gather(*(switch(a) for a in due))


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
            g["clients_backing_off"][b] = rec.backing_off
            b += 1


async def run_policy_real(
    scenario: Scenario,
    policy: Policy,
    urls: tuple[str, str, str],
    toxi: Toxi,
    seed: int,
    fault_log: list[str],
    keep_alive: bool = False,
    watch: Watch | None = None,
    stream_urls: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> Recorder:
    """Run every client of ``scenario`` under ``policy`` for real; bounded in count and time.
    With ``clients.browser`` N, the first N clients are Chromium pages
    (:mod:`harness.browser_clients`; the browser's log goes to ``log_dir``).

    By default every request opens its own connection, as in the model, so a connection
    fault acts on each request. ``keep_alive`` reuses pooled connections, as browsers and
    HTTP libraries do: about half the CPU per request (Toxiproxy no longer dials the
    server for every request), for runs at 1,000 requests/s.

    ``watch`` (harness/watch.py), when given, measures the run itself: the clients'
    sleeps go through it, and it hears of every arrival and fault switch.
    ``stream_urls`` (``RealBench.stream_urls``) are the proxies stream cuts route the
    clients' stream connections through (:class:`harness.faults.StreamRouter`)."""

    c = scenario.clients
    async with contextlib.AsyncExitStack() as stack:
        tabs = None
        if c.browser:
            from harness.browser import chromium

            api_url, stream_url, direct_url = urls
            browser = await stack.enter_async_context(chromium(log_dir or Path("logs")))
            tabs = await open_tabs(
                browser,
                [
                    page_url(direct_url, api_url, stream_url, i)
                    for i in range(min(c.browser, c.count or 0))
                ],
            )
        return await _run_clients(
            scenario,
            policy,
            urls,
            toxi,
            seed,
            fault_log,
            keep_alive,
            tabs,
            log_dir,
            watch,
            stream_urls,
        )


async def _run_clients(
    scenario: Scenario,
    policy: Policy,
    urls: tuple[str, str, str],
    toxi: Toxi,
    seed: int,
    fault_log: list[str],
    keep_alive: bool,
    tabs: list[Any] | None,
    log_dir: Path | None,
    watch: Watch | None,
    stream_urls: dict[str, str] | None,
) -> Recorder:
    api_url, stream_url, admin_url = urls
    streams = Streams.from_seed(seed)
    c = scenario.clients
    horizon_s = scenario.duration_s + c.job_timeout_s + c.request_timeout_s + SETTLE_S
    rec = Recorder(horizon_s, scenario.bucket_s)
    times = arrival_times_s(scenario, streams.arrivals).tolist()
    # each client's service time is the simulator's draw for it (the same stream, drawn
    # the same way), so a real run and its simulation serve the same work per client
    # and differ only where the two worlds do (common random numbers across sim and real)
    service_times_s = (
        None
        if isinstance(c.arrival, ClosedLoop)
        else scenario.service.service_time.samples_s(streams.service, len(times)).tolist()
    )
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def clock() -> float:
        return loop.time() - t0

    clock_offset_s = time.monotonic() - clock()  # the run's 0 on the monotonic clock

    if watch is not None:
        watch.planned_s = times
        watch.begin(clock)
    sleep = watch.sleep if watch is not None else asyncio.sleep

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
            sleep=sleep,
            request_timeout_s=c.request_timeout_s,
            job_timeout_s=c.job_timeout_s,
            follow_stream=c.follow_stream,
            shared=shared,
            shared_state=policy.retry.new_state(),
            service_times_s=service_times_s,
        )

        router = None
        spares = cut_proxies(scenario.faults)
        if spares and stream_urls is not None:
            # each stream connection's cut is drawn when it opens (the faults' stream)
            router = StreamRouter(
                scenario.faults, [stream_urls[name] for name in spares], streams.faults
            )
            ctx.route_stream = router.url

        background = [
            asyncio.create_task(
                play_faults(
                    plan(scenario.faults),
                    toxi,
                    admin_url,
                    session,
                    clock,
                    fault_log,
                    watch,
                    on_cut=None if router is None else router.cut,
                )
            ),
            asyncio.create_task(
                _sample(
                    rec, scenario.bucket_s, admin_url, session, clock, scenario.service.concurrency
                )
            ),
        ]
        if watch is not None:
            background.append(asyncio.create_task(watch.probe(horizon_s)))
        tasks: list[asyncio.Task[None]] = []

        pages = None
        if tabs:
            pages = Pages(
                tabs,
                api_url,
                stream_url,
                admin_url,
                rec,
                clock,
                c.job_timeout_s,
                scenario.service.progress_events,
                log_dir,
                None if log_dir is None else requests_log(log_dir, policy.name),
            )

        async def one(index: int) -> None:
            if pages is not None and index < pages.count:
                await browser_job(pages, index)
            else:
                await job_client(ctx, index)

        async def closed_user(start_s: float, think: ClosedLoop) -> None:
            await sleep(max(0.0, start_s - clock()))
            if watch is not None:
                watch.arrived(clock())
            while clock() < scenario.duration_s:
                await one(rec.new_job(clock()))
                await sleep(think.think.sample_s(streams.think))

        arrival = c.arrival
        try:  # an interruption during the arrivals, too, cancels and awaits every task
            if isinstance(arrival, ClosedLoop):
                tasks = [asyncio.create_task(closed_user(t, arrival)) for t in times]
            else:
                for t in times:
                    wait = t - clock()
                    if wait > 0:
                        await sleep(wait)
                    now = clock()
                    if watch is not None:
                        watch.arrived(now)
                    tasks.append(asyncio.create_task(one(rec.new_job(now))))
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
    if watch is not None:
        watch.end()
    if pages is not None:
        await count_page_requests(pages, clock_offset_s)
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
        "degraded": False,
        "degraded_reasons": [],
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
            record_args: tuple[str, ...] = ()
            if scaled.clients.browser:  # the server serves the page, and logs requests
                log_path = requests_log(bench.log_dir, policy.name)
                log_path.unlink(missing_ok=True)
                record_args = ("--record", str(log_path), "--lab-pages", str(PAGES_DIR))
            urls = bench.start_server(
                scenario.source,
                scale,
                seed,
                scaled.network.latency,
                stream_spares=cut_proxies(scaled.faults),
                extra_args=record_args,
            )
            log: list[str] = []
            started = time.monotonic()
            watch = Watch(pids=bench.pids())
            rec = aio.run_interruptible(
                run_policy_real(
                    scaled,
                    policy,
                    urls,
                    bench.toxi,
                    seed,
                    log,
                    keep_alive,
                    watch,
                    stream_urls=bench.stream_urls,
                    log_dir=bench.log_dir,
                )
            )
            entry = policy_entry(
                out_dir, scaled, policy, artifacts_of(rec, scaled), [summarize(rec, scaled)]
            )
            entry["wall_s"] = round(time.monotonic() - started, 3)
            entry["self_check"] = check = watch.report()
            if check["degraded"]:
                # never silently complete: the run says which schedule it could not keep
                record["degraded"] = True
                record["degraded_reasons"] += [f"{policy.name}: {r}" for r in check["reasons"]]
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
