"""The reference job server: the seed system's API, real, over aiohttp.

- ``POST /api/ai/jobs`` -> 201 ``{"id": ...}``; the initial state goes to Redis; when Redis
  is unreachable the job is still accepted and kept in memory, marked degraded, and written
  to Redis once it is back (or 503, when configured to fail).
- ``GET /api/ai/jobs/{id}`` -> the job's state.
- ``GET /api/ai/jobs/{id}/stream`` -> ``text/event-stream``: a ``retry:`` hint, numbered
  ``id:`` progress events, a final ``result`` event, heartbeats; ``Last-Event-ID`` resumes
  after that event; a job not started yet is streamed as ``pending``.
- The simulator's capacity model: slots, a bounded queue, 503 + Retry-After when full,
  an optional 429 token bucket, service times from the scenario's distribution drawn
  with a seeded generator.
- ``/admin/...`` (only with ``--admin``): faults Toxiproxy cannot make (503 windows,
  errors, capacity drops), reset and stats.

Requests are checked before they change anything (a 4xx answer leaves the server as it
was), every error is one JSON shape (:mod:`harness.server_http`), finished jobs expire
after ``job_ttl_s`` in memory and in Redis, and a Redis that restarted (a new run id)
gets every job the server holds written again, so an accepted job is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import redis.asyncio as aioredis
from aiohttp import web

from harness import aio
from harness.admin_faults import Faults, apply_faults
from harness.server_http import (
    MAX_BODY_BYTES,
    BadRequest,
    JsonErrorAppRunner,
    check_fields,
    cors_middleware,
    cors_on_prepare,
    json_error,
    json_errors,
    json_type,
    read_json_object,
)
from harness.store import GroupWriter, RestartWatch, run_id
from sim.distributions import Distribution, Exponential
from sim.scenario.model import Scenario
from sim.scenario.scale import scale_scenario

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

HEARTBEAT_S = 1.0
#: how long a finished job stays readable (in memory and in Redis) by default
JOB_TTL_S = 600.0
#: how often the store loop checks Redis (restart, degraded jobs) and expires jobs
STORE_CHECK_S = 0.5
#: the fields a job creation body may have (the seed system's panel sends its input)
JOB_FIELDS = ("input",)
#: at SIGTERM, how long open answers (progress streams) may run on before they are cut
SHUTDOWN_GRACE_S = 1.0
SERVICE_TIME_HEADER = "X-Herdlab-Service-S"  # harness/client.py sends it


@dataclass(frozen=True)
class ServerConfig:
    """Capacity and behaviour of the server, from a scenario scaled by ``scale``."""

    instances: int = 1
    concurrency: int = 10
    queue_limit: int = 100
    service_time: Distribution = field(default_factory=lambda: Exponential(1.0))
    retry_after_s: float | None = None
    rate_per_s: float | None = None
    rate_burst: int = 1
    rate_retry_after_s: float | None = None
    progress_events: int = 10
    stream_retry_s: float | None = None
    store_fails: bool = False
    seed: int = 0

    @classmethod
    def from_scenario(cls, scenario: Scenario, scale: float = 1.0, seed: int = 0) -> ServerConfig:
        # the simulator scales through the same function: both sides meet one world
        s = scale_scenario(scenario, scale).service
        rl = s.rate_limit
        return cls(
            instances=s.instances,
            concurrency=s.concurrency,
            queue_limit=s.queue_limit,
            service_time=s.service_time,
            retry_after_s=s.retry_after_s,
            rate_per_s=rl.rate_per_s if rl else None,
            rate_burst=rl.burst if rl else 1,
            rate_retry_after_s=rl.retry_after_s if rl else None,
            progress_events=max(1, s.progress_events),
            stream_retry_s=s.stream_retry_s,
            store_fails=s.store_on_outage.value == "fail",
            seed=seed,
        )


@dataclass
class Job:
    id: str
    service_s: float
    events_total: int
    created_s: float
    status: str = "pending"  # pending -> running -> done
    emitted: list[str] = field(default_factory=list)  # SSE payloads, id = index + 1
    degraded: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "progress": round(100 * len(self.emitted) / self.events_total),
            "degraded": self.degraded,
        }


class JobServer:
    def __init__(
        self,
        config: ServerConfig,
        redis_url: str | None,
        admin: bool = False,
        cors_origin: str | None = None,
        job_ttl_s: float = JOB_TTL_S,
    ) -> None:
        self.config = config
        self.redis_url = redis_url
        self.admin = admin
        self.cors_origin = cors_origin
        self.job_ttl_s = job_ttl_s
        self.rng = np.random.Generator(np.random.PCG64(config.seed))
        self.jobs: dict[str, Job] = {}
        self.unsynced: dict[str, Job] = {}  # degraded jobs not yet written to Redis, in order
        self.queue: deque[Job] = deque()
        self.expiring: deque[tuple[float, Job]] = deque()  # finished jobs, by expiry time
        self.running = 0
        self.faults = Faults()
        self.ids = itertools.count(1)
        self.tokens = float(config.rate_burst)
        self.tokens_at = time.monotonic()
        self.stats = {
            "accepted": 0,
            "rejected_503": 0,
            "rejected_429": 0,
            "degraded": 0,
            "resynced": 0,
            "errors": 0,
            "expired": 0,
            "store_restarts": 0,
            "rewritten": 0,
        }
        self.redis: aioredis.Redis | None = None
        self.writer: GroupWriter | None = None
        self.store_watch = RestartWatch()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False  # set at shutdown: start no more work

    # ---------------------------------------------------------------- app

    def app(self) -> web.Application:
        middlewares: list[Middleware] = [json_errors]
        if self.cors_origin is not None:
            middlewares.append(cors_middleware(self.cors_origin))
        app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
        if self.cors_origin is not None:
            app.on_response_prepare.append(cors_on_prepare(self.cors_origin))
        app.router.add_post("/api/ai/jobs", self.create)
        app.router.add_get("/api/ai/jobs/{id}", self.get)
        app.router.add_get("/api/ai/jobs/{id}/stream", self.stream)
        app.router.add_get("/healthz", self.healthz)
        if self.admin:
            app.router.add_post("/admin/faults", self.set_faults)
            app.router.add_post("/admin/reset", self.reset)
            app.router.add_get("/admin/stats", self.get_stats)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _: web.Application) -> None:
        if self.redis_url:
            self.redis = aioredis.from_url(
                self.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            self.writer = GroupWriter(self.redis)
        self._spawn(self._store_loop())

    async def _cleanup(self, _: web.Application) -> None:
        """Stop every task (no queued job starts meanwhile: ``closing``), wait for them
        and for the write under way, then close Redis: nothing is left for a closed loop."""
        self.closing = True
        while self.tasks:
            tasks = list(self.tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.writer is not None:
            await self.writer.close()
        if self.redis is not None:
            await self.redis.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---------------------------------------------------------------- capacity

    def capacity(self) -> int:
        instances = self.config.instances
        if self.faults.capacity_instances is not None:
            instances = min(instances, self.faults.capacity_instances)
        return instances * self.config.concurrency

    def _rate_limited(self) -> bool:
        rate = self.config.rate_per_s
        if rate is None:
            return False
        now = time.monotonic()
        self.tokens = min(
            float(self.config.rate_burst), self.tokens + (now - self.tokens_at) * rate
        )
        self.tokens_at = now
        if self.tokens < 1.0:
            return True
        self.tokens -= 1.0
        return False

    def _drain(self) -> None:
        while self.queue and self.running < self.capacity() and not self.closing:
            self._start(self.queue.popleft())

    def _start(self, job: Job) -> None:
        self.running += 1
        job.status = "running"
        self._spawn(self._work(job))

    async def _work(self, job: Job) -> None:
        step = job.service_s / job.events_total
        try:
            for k in range(1, job.events_total + 1):
                await asyncio.sleep(step)
                last = k == job.events_total
                payload: dict[str, int | str] = {"progress": round(100 * k / job.events_total)}
                if last:
                    payload["result"] = "ok"
                    job.status = "done"
                    self.expiring.append((time.monotonic() + self.job_ttl_s, job))
                job.emitted.append(json.dumps(payload))
                job.changed.set()
                job.changed = asyncio.Event()
        finally:
            self.running -= 1
            self._drain()
        await self._store(job)

    # ---------------------------------------------------------------- store

    async def _store(self, job: Job) -> bool:
        """Write ``job``'s state; a finished job's key expires with it."""
        if self.writer is None:
            return False
        state = job.state()
        ttl_s = max(1, round(self.job_ttl_s)) if job.status == "done" else None
        return await self.writer.write(
            f"job:{job.id}", {"status": state["status"], "progress": state["progress"]}, ttl_s
        )

    async def _store_loop(self) -> None:
        while True:
            await asyncio.sleep(STORE_CHECK_S)
            self._expire(time.monotonic())
            if self.redis is not None:
                await self._write_back_after_restart(self.redis)
                await self._resync()

    async def _resync(self) -> None:
        """Write the jobs accepted while Redis was unreachable, oldest first."""
        for job in list(self.unsynced.values()):
            if not await self._store(job):
                break
            job.degraded = False
            del self.unsynced[job.id]
            self.stats["resynced"] += 1

    async def _write_back_after_restart(self, redis: aioredis.Redis) -> None:
        """When Redis is a new process (it crashed, or was restarted), write every job
        this server holds, in one grouped round trip; retried next time if it fails."""
        current = await run_id(redis)
        if current is None or not self.store_watch.restarted(current):
            return
        jobs = [j for j in self.jobs.values() if j.id not in self.unsynced]
        written = await asyncio.gather(*(self._store(j) for j in jobs))
        if all(written):
            self.store_watch.confirm(current)
            self.stats["store_restarts"] += 1
            self.stats["rewritten"] += len(jobs)

    def _expire(self, now_s: float) -> None:
        """Forget finished jobs past their time to live (Redis expires its copies)."""
        while self.expiring and self.expiring[0][0] <= now_s:
            _, job = self.expiring.popleft()
            if job.id in self.unsynced:  # not in Redis yet: keep it until it is
                self.expiring.append((now_s + self.job_ttl_s, job))
                continue
            del self.jobs[job.id]
            self.stats["expired"] += 1

    # ---------------------------------------------------------------- handlers

    def _reject(
        self, status: int, error: str, retry_after_s: float | None = None, stat: str = ""
    ) -> web.Response:
        """An error answer, with ``Retry-After`` when a hint is given; counted under
        ``stat`` in the server's stats when named."""
        if stat:
            self.stats[stat] += 1
        headers = (
            {} if retry_after_s is None else {"Retry-After": str(max(0, round(retry_after_s)))}
        )
        return web.json_response({"error": error}, status=status, headers=headers)

    async def create(self, request: web.Request) -> web.Response:
        await _read_job_request(request)  # before anything changes: a bad one is a 4xx
        f = self.faults
        if f.outage:
            return self._reject(503, "unavailable", f.outage_retry_after_s, "rejected_503")
        if f.error_probability > 0 and self.rng.random() < f.error_probability:
            return self._reject(f.error_status, "injected", stat="errors")
        if self._rate_limited():
            return self._reject(429, "rate limited", self.config.rate_retry_after_s, "rejected_429")
        if self.running >= self.capacity() and len(self.queue) >= self.config.queue_limit:
            return self._reject(503, "overloaded", self.config.retry_after_s, "rejected_503")
        job = Job(
            id=f"j{next(self.ids)}",
            service_s=self._service_time(request),
            events_total=self.config.progress_events,
            created_s=time.monotonic(),
        )
        if not await self._store(job) and self.redis is not None:
            if self.config.store_fails:
                return self._reject(503, "store unavailable", stat="rejected_503")
            job.degraded = True
            self.unsynced[job.id] = job
            self.stats["degraded"] += 1
        self.jobs[job.id] = job
        self.stats["accepted"] += 1
        if self.running < self.capacity():
            self._start(job)
        else:
            self.queue.append(job)
        return web.json_response(job.state(), status=201)

    def _service_time(self, request: web.Request) -> float:
        """The job's service time: the harness's own draw when it sends one (admin mode:
        the simulator's draw for this client, so real and simulated runs serve the same
        work), else one from the server's seeded generator."""
        given = request.headers.get(SERVICE_TIME_HEADER) if self.admin else None
        if given is not None:
            with contextlib.suppress(ValueError):
                value = float(given)
                if 0.0 <= value < 86_400.0:
                    return value
        return self.config.service_time.sample_s(self.rng)

    async def get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return json_error(404, "no such job (unknown, or finished and expired)")
        return web.json_response(job.state())

    async def stream(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return json_error(404, "no such job (unknown, or finished and expired)")
        if self.faults.outage:
            return self._reject(503, "unavailable", self.faults.outage_retry_after_s)
        sent = _last_event_id(request, len(job.emitted))
        if job.status == "done" and sent >= job.events_total:
            # the client has every event: 204 tells an EventSource to stop reconnecting
            return web.Response(status=204)
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        with contextlib.suppress(ConnectionResetError, ConnectionError):
            if self.config.stream_retry_s is not None:
                await resp.write(f"retry: {round(self.config.stream_retry_s * 1000)}\n\n".encode())
            if job.status == "pending" and not job.emitted:
                await resp.write(b"event: pending\ndata: {}\n\n")
            while True:
                while sent < len(job.emitted):
                    sent += 1
                    kind = "result" if sent == job.events_total else "progress"
                    await resp.write(
                        f"id: {sent}\nevent: {kind}\ndata: {job.emitted[sent - 1]}\n\n".encode()
                    )
                if sent >= job.events_total:
                    break
                changed = job.changed
                try:
                    await asyncio.wait_for(changed.wait(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": heartbeat\n\n")
        return resp

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # ---------------------------------------------------------------- admin

    async def set_faults(self, request: web.Request) -> web.Response:
        """Set admin faults: every field checked first, then all applied at once."""
        self.faults = apply_faults(self.faults, await read_json_object(request))
        self._drain()
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        self.faults = Faults()
        self._drain()
        return web.json_response({"ok": True})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                **self.stats,
                "running": self.running,
                "queued": len(self.queue),
                "jobs": len(self.jobs),
                "capacity": self.capacity(),
                "degraded_now": len(self.unsynced),
                "store_round_trips": self.writer.round_trips if self.writer else 0,
            }
        )


async def _read_job_request(request: web.Request) -> dict[str, Any]:
    """A job creation's body: absent, or a JSON object with only :data:`JOB_FIELDS`."""
    body = await read_json_object(request)
    check_fields(body, JOB_FIELDS)
    if "input" in body and not isinstance(body["input"], str):
        raise BadRequest(400, f"input: must be a string, got {json_type(body['input'])}")
    return body


def _last_event_id(request: web.Request, emitted: int) -> int:
    """The client's ``Last-Event-ID``, within what the job has emitted; 0 if absent or bad."""
    value = request.headers.get("Last-Event-ID", "0")
    sent = int(value) if value.isdigit() else 0
    return max(0, min(sent, emitted))


def serve(
    config: ServerConfig,
    port: int,
    redis_url: str | None,
    admin: bool,
    host: str,
    cors_origin: str | None = None,
    job_ttl_s: float = JOB_TTL_S,
    setup_app: Callable[[web.Application], None] | None = None,
) -> None:
    """Run the server until SIGINT or SIGTERM, then stop its work cleanly; ``setup_app``
    may add to the app first (the lab's request recorder)."""
    server = JobServer(config, redis_url, admin, cors_origin, job_ttl_s)
    app = server.app()
    if setup_app is not None:
        setup_app(app)
    aio.run(_serve_until_signalled(app, host, port))


async def _serve_until_signalled(app: web.Application, host: str, port: int) -> None:
    # in-flight answers (streams) get SHUTDOWN_GRACE_S to end before they are cancelled
    runner = JsonErrorAppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S
    )
    await runner.setup()
    try:
        # a deep accept backlog: with one connection per request, a herd of connects must
        # not overflow it (an overflow costs the client a 1 s SYN retransmit)
        await web.TCPSite(runner, host, port, backlog=4096).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
