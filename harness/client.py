"""The seed system's client, for real: asyncio + aiohttp, driven by the same policy
objects as the simulator, recording into the same Recorder.

Time is injected (``clock()`` in seconds since the run began, ``sleep``), so the same
code runs on a real clock here and on a recorded one in tests.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from sim.policies.breaker import CircuitBreaker
from sim.policies.budget import RetryBudget
from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Action, Policy
from sim.world.metrics import JobOutcome, Recorder, rejected_counter

STREAM_IDLE_S = 5.0  # no byte (not even a heartbeat) for this long: the stream is dead


def parse_retry_after(value: str | None, now_epoch_s: float | None = None) -> float | None:
    """RFC 9110 ``Retry-After``: delay-seconds or an HTTP-date; None when absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_epoch_s is None else now_epoch_s
    return max(0.0, when.timestamp() - now)


def classify_exception(exc: BaseException) -> Outcome:
    """Map what aiohttp / asyncio raise to the policy library's error kinds."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Outcome(error=ErrorKind.TIMEOUT)
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno if exc.os_error is not None else None
        if code == errno.ECONNREFUSED:
            return Outcome(error=ErrorKind.REFUSED)
        if code in (errno.ETIMEDOUT,):
            return Outcome(error=ErrorKind.TIMEOUT)
        return Outcome(error=ErrorKind.RESET)
    if isinstance(exc, ConnectionRefusedError):
        return Outcome(error=ErrorKind.REFUSED)
    # a reset, a server that closed mid-answer, a broken payload: the connection broke
    return Outcome(error=ErrorKind.RESET)


TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)
#: the job's service time, drawn by the harness from the simulator's stream, so that a
#: real run and its simulation serve the same work per client (common random numbers);
#: the server honours it only with its admin API on (``herdlab serve --admin``)
SERVICE_TIME_HEADER = "X-Herdlab-Service-S"


@dataclass
class ClientContext:
    """What every client of one policy run shares."""

    base_url: str  # the API, through its proxy
    stream_url: str  # progress streams, through theirs (stream cuts hit only streams)
    session: aiohttp.ClientSession
    policy: Policy
    rng: np.random.Generator
    rec: Recorder
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[Any]]
    request_timeout_s: float
    job_timeout_s: float
    follow_stream: bool
    shared_state: tuple[RetryBudget | None, CircuitBreaker | None] = (None, None)
    shared: bool = False
    #: per job index, the service time the simulator gives that client (None: the
    #: server draws its own)
    service_times_s: Sequence[float] | None = None
    #: the base URL each new stream connection goes through, when stream cuts route
    #: them (``harness.faults.StreamRouter.url``); None: always ``stream_url``
    route_stream: Callable[[], str] | None = None

    def budget_and_breaker(self) -> tuple[RetryBudget | None, CircuitBreaker | None]:
        return self.shared_state if self.shared else self.policy.retry.new_state()


async def create_job(
    ctx: ClientContext, kind: str, service_s: float | None = None
) -> tuple[Outcome, str | None]:
    """One ``POST /api/ai/jobs``: its Outcome and, on 201, the job id. ``service_s``, when
    given, asks the (harness's) server for that service time."""
    rec = ctx.rec
    sent = ctx.clock()
    rec.offer(kind, sent)
    rec.in_flight += 1
    headers = {SERVICE_TIME_HEADER: repr(service_s)} if service_s is not None else None
    try:
        timeout = aiohttp.ClientTimeout(total=ctx.request_timeout_s)
        async with ctx.session.post(
            f"{ctx.base_url}/api/ai/jobs", json={}, timeout=timeout, headers=headers
        ) as r:
            body = await r.json(content_type=None) if r.status == 201 else None
            hint = parse_retry_after(r.headers.get("Retry-After"))
            status = r.status
    except TRANSPORT_ERRORS as exc:
        outcome = classify_exception(exc)
        rec.count(f"error_{outcome.error}" if outcome.error else "rejected_other", sent)
        return outcome, None
    finally:
        rec.in_flight -= 1
    if status == 201:
        rec.count("accepted", sent)
        return Outcome(status=201), str(body["id"]) if body else None
    rec.count(rejected_counter(status), sent)
    return Outcome(status=status, retry_after_s=hint), None


async def job_client(ctx: ClientContext, job_index: int) -> None:
    """Create a job under the retry policy, follow its stream under the reconnect policy."""
    rec = ctx.rec
    start = ctx.clock()
    deadline = start + ctx.job_timeout_s
    run = ctx.policy.retry.start(start, ctx.rng, *ctx.budget_and_breaker())
    job_id: str | None = None
    times = ctx.service_times_s
    service_s = times[job_index] if times is not None and job_index < len(times) else None
    while True:
        now = ctx.clock()
        if run.before_attempt(now):
            kind = "offered_first" if run.attempts == 1 else "offered_retry"
            outcome, job_id = await create_job(ctx, kind, service_s)
        else:
            rec.count("local_reject", now)
            outcome = Outcome(error=ErrorKind.LOCAL_REJECT)
        rec.attempts[job_index] = run.attempts
        decision = run.after(outcome, ctx.clock())
        if decision.action is Action.DONE:
            break
        if decision.action is Action.FAIL:
            rec.end_job(job_index, JobOutcome.FAILED, ctx.clock())
            return
        if decision.action is Action.GIVE_UP:
            rec.end_job(job_index, JobOutcome.GAVE_UP, ctx.clock())
            return
        if ctx.clock() + decision.delay_s >= deadline:
            await ctx.sleep(max(0.0, deadline - ctx.clock()))
            rec.end_job(job_index, JobOutcome.TIMED_OUT, ctx.clock())
            return
        await _back_off(ctx, decision.delay_s)
    rec.accepted_s[job_index] = ctx.clock()
    assert job_id is not None
    if not ctx.follow_stream:
        await _poll_until_done(ctx, job_index, job_id, deadline)
        return
    await follow_stream(ctx, job_index, job_id, deadline)


async def _back_off(ctx: ClientContext, delay_s: float) -> None:
    """Wait out a retry's or a reconnect's delay, counted as backing off (the backlog the
    recovery figure reads, as the simulator counts it)."""
    ctx.rec.backing_off += 1
    try:
        await ctx.sleep(delay_s)
    finally:
        ctx.rec.backing_off -= 1


async def _poll_until_done(
    ctx: ClientContext, job_index: int, job_id: str, deadline: float
) -> None:
    while ctx.clock() < deadline:
        try:
            timeout = aiohttp.ClientTimeout(total=ctx.request_timeout_s)
            async with ctx.session.get(
                f"{ctx.base_url}/api/ai/jobs/{job_id}", timeout=timeout
            ) as r:
                state = await r.json(content_type=None)
            if state.get("status") == "done":
                ctx.rec.end_job(job_index, JobOutcome.COMPLETED, ctx.clock())
                return
        except TRANSPORT_ERRORS:
            pass
        await ctx.sleep(min(0.5, max(0.0, deadline - ctx.clock())))
    ctx.rec.end_job(job_index, JobOutcome.TIMED_OUT, ctx.clock())


class _StreamState:
    __slots__ = ("completed", "duplicates", "last_id", "lost", "open", "server_retry_s")

    def __init__(self) -> None:
        self.last_id = 0
        self.duplicates = 0
        self.lost = 0
        self.completed = False
        self.open = False  # the current connection delivered its first byte
        self.server_retry_s: float | None = None


class _StatusError(Exception):
    def __init__(self, status: int, retry_after_s: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after_s = retry_after_s


async def _read_stream(
    ctx: ClientContext, job_id: str, st: _StreamState, resume: bool, on_open: Callable[[], None]
) -> None:
    """Read one stream connection until the result event or EOF; errors propagate."""
    headers = {"Accept": "text/event-stream"}
    if resume and st.last_id:
        headers["Last-Event-ID"] = str(st.last_id)
    timeout = aiohttp.ClientTimeout(
        total=None, connect=ctx.request_timeout_s, sock_read=STREAM_IDLE_S
    )
    base = ctx.route_stream() if ctx.route_stream is not None else ctx.stream_url
    url = f"{base}/api/ai/jobs/{job_id}/stream"
    async with ctx.session.get(url, headers=headers, timeout=timeout) as r:
        if r.status != 200 or r.content_type != "text/event-stream":
            raise _StatusError(r.status, parse_retry_after(r.headers.get("Retry-After")))
        event_id: int | None = None
        event_type = "message"
        async for raw in r.content:
            if not st.open:
                st.open = True
                on_open()
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("retry:") and line[6:].strip().isdigit():
                st.server_retry_s = int(line[6:].strip()) / 1000.0
            elif line.startswith("id:"):
                value = line[3:].strip()
                event_id = int(value) if value.isdigit() else None
            elif line.startswith("event:"):
                event_type = line[6:].strip()
            elif line == "":
                if event_id is not None:
                    if event_id <= st.last_id:
                        st.duplicates += 1
                    else:
                        st.lost += event_id - st.last_id - 1
                        st.last_id = event_id
                    if event_type == "result":
                        st.completed = True
                        return
                event_id, event_type = None, "message"


async def follow_stream(ctx: ClientContext, job_index: int, job_id: str, deadline: float) -> None:
    """Follow the progress stream, reconnecting per the reconnect policy."""
    rec = ctx.rec
    reconnect = ctx.policy.reconnect
    recovery = reconnect.start(ctx.rng)
    st = _StreamState()
    kind = "offered_first"
    rec.reconnecting += 1  # "connecting" counts as not yet connected

    def opened() -> None:
        rec.reconnecting -= 1
        rec.connected += 1

    def finish(outcome: JobOutcome) -> None:
        if st.open:
            rec.connected -= 1
        else:
            rec.reconnecting -= 1
        if outcome is JobOutcome.GAVE_UP:
            rec.disconnected += 1
        rec.events_lost[job_index] = st.lost
        rec.events_duplicated[job_index] = st.duplicates
        rec.end_job(job_index, outcome, ctx.clock())

    while True:
        sent = ctx.clock()
        rec.offer(kind, sent)
        st.open = False
        counted = "stream_connected"
        timed_out = False
        given_up = False  # an error answer the policy does not reconnect after
        try:
            async with asyncio.timeout(max(0.0, deadline - ctx.clock())):
                await _read_stream(ctx, job_id, st, reconnect.resume, opened)
        except _StatusError as exc:
            counted = rejected_counter(exc.status)
            given_up = reconnect.give_up_on_status
        except TimeoutError:
            timed_out = ctx.clock() >= deadline
            counted = "error_timeout"
        except TRANSPORT_ERRORS as exc:
            counted = f"error_{classify_exception(exc).error}"
        rec.count("stream_connected" if st.open else counted, sent)
        if st.open:
            recovery.connected()
        if st.completed:
            finish(JobOutcome.COMPLETED)
            return
        if timed_out:
            finish(JobOutcome.TIMED_OUT)
            return
        if st.open:  # the connection was up and broke: back to reconnecting
            rec.connected -= 1
            rec.reconnecting += 1
            st.open = False
        delay = None if given_up else recovery.next_delay_s(st.server_retry_s)
        if delay is None:
            finish(JobOutcome.GAVE_UP)  # "connection recovery failed"
            return
        if ctx.clock() + delay >= deadline:
            await ctx.sleep(max(0.0, deadline - ctx.clock()))
            finish(JobOutcome.TIMED_OUT)
            return
        await _back_off(ctx, delay)
        rec.reconnects[job_index] += 1
        kind = "offered_reconnect"
