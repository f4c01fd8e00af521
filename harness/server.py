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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from harness.aio import loop_factory
from sim.distributions import Distribution, Exponential
from sim.scenario.model import Scenario

HEARTBEAT_S = 1.0


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
        s = scenario.service
        rl = s.rate_limit
        return cls(
            instances=max(1, round(s.instances * scale)),
            concurrency=s.concurrency,
            queue_limit=max(1, round(s.queue_limit * scale)) if s.queue_limit else 0,
            service_time=s.service_time,
            retry_after_s=s.retry_after_s,
            rate_per_s=rl.rate_per_s * scale if rl else None,
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


@dataclass
class Faults:
    """Admin faults, all off by default."""

    outage: bool = False
    outage_retry_after_s: float | None = None
    error_status: int = 500
    error_probability: float = 0.0
    capacity_instances: int | None = None


class GroupWriter:
    """Writes job states to Redis in pipelines (group commit): every write that arrives
    while one round trip is in flight goes out in the next, together. An idle server
    writes at once; a loaded one makes one round trip for many jobs instead of one each
    (at 1,000 jobs/s this cut the server's CPU by about a fifth). ``write`` answers
    whether the state reached Redis, as a single HSET would. When a round trip fails,
    the writes that queued behind it are answered "no" at once rather than made to wait
    for another timeout: Redis was down a moment ago, the job degrades, and the resync
    loop writes it when Redis is back."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.pending: list[tuple[str, dict[str, str | int], asyncio.Future[bool]]] = []
        self.flush: asyncio.Future[None] | None = None  # the flush under way, if any
        self.round_trips = 0

    async def write(self, key: str, mapping: dict[str, str | int]) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending.append((key, mapping, done))
        if self.flush is None:
            self.flush = asyncio.ensure_future(self._flush())
        return await done

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                self.round_trips += 1
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for key, mapping, _ in batch:
                            pipe.hset(key, items=[x for kv in mapping.items() for x in kv])
                        await pipe.execute()
                    ok = True
                except (RedisError, OSError):
                    ok = False
                    batch, self.pending = batch + self.pending, []
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(ok)
        finally:
            self.flush = None


class JobServer:
    def __init__(self, config: ServerConfig, redis_url: str | None, admin: bool = False) -> None:
        self.config = config
        self.redis_url = redis_url
        self.admin = admin
        self.rng = np.random.Generator(np.random.PCG64(config.seed))
        self.jobs: dict[str, Job] = {}
        self.unsynced: dict[str, Job] = {}  # degraded jobs not yet written to Redis, in order
        self.queue: deque[Job] = deque()
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
        }
        self.redis: aioredis.Redis | None = None
        self.writer: GroupWriter | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- app

    def app(self) -> web.Application:
        app = web.Application()
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
        self._spawn(self._resync_loop())

    async def _cleanup(self, _: web.Application) -> None:
        for t in list(self.tasks):
            t.cancel()
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
        while self.queue and self.running < self.capacity():
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
                job.emitted.append(json.dumps(payload))
                job.changed.set()
                job.changed = asyncio.Event()
        finally:
            self.running -= 1
            self._drain()
        await self._store(job)

    # ---------------------------------------------------------------- store

    async def _store(self, job: Job) -> bool:
        if self.writer is None:
            return False
        state = job.state()
        return await self.writer.write(
            f"job:{job.id}", {"status": state["status"], "progress": state["progress"]}
        )

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for job in list(self.unsynced.values()):
                if not await self._store(job):
                    break
                job.degraded = False
                del self.unsynced[job.id]
                self.stats["resynced"] += 1

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
            service_s=self.config.service_time.sample_s(self.rng),
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

    async def get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        return web.json_response(job.state())

    async def stream(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        if self.faults.outage:
            return self._reject(503, "unavailable", self.faults.outage_retry_after_s)
        try:
            sent = int(request.headers.get("Last-Event-ID", "0"))
        except ValueError:
            sent = 0
        sent = max(0, min(sent, len(job.emitted)))
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
        body = await request.json()
        f = self.faults
        if "outage" in body:
            outage = body["outage"]
            f.outage = outage is not None
            f.outage_retry_after_s = (outage or {}).get("retry_after_s")
        if "errors" in body:
            errors = body["errors"] or {}
            f.error_probability = float(errors.get("probability", 0.0))
            f.error_status = int(errors.get("status", 500))
        if "capacity_instances" in body:
            f.capacity_instances = body["capacity_instances"]
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


def serve(
    config: ServerConfig,
    port: int,
    redis_url: str | None,
    admin: bool,
    host: str,
    setup_app: Callable[[web.Application], None] | None = None,
) -> None:
    """Run the server until interrupted; ``setup_app`` may add to the app first (the
    lab's request recorder)."""
    server = JobServer(config, redis_url, admin)
    app = server.app()
    if setup_app is not None:
        setup_app(app)
    # a deep accept backlog: with one connection per request, a herd of connects must
    # not overflow it (an overflow costs the client a 1 s SYN retransmit)
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=None,
        backlog=4096,
        loop=loop_factory()(),
    )
