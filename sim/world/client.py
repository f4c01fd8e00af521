"""The seed system's client, simulated: create a job under the retry policy, then
follow its progress stream under the reconnect policy, until exactly one outcome.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Action, ReconnectRun, RetryRun
from sim.world.events import ClientGen, Timer, Wake, call_after
from sim.world.metrics import JobOutcome
from sim.world.network import Fate
from sim.world.service import UNANSWERED, Job

if TYPE_CHECKING:
    from sim.world.run import World

_TIMEOUT = Outcome(error=ErrorKind.TIMEOUT)
_RESET = Outcome(error=ErrorKind.RESET)
_REFUSED = Outcome(error=ErrorKind.REFUSED)
_LOCAL = Outcome(error=ErrorKind.LOCAL_REJECT)


def retry_loop(
    w: World,
    job_index: int,
    run: RetryRun,
    attempt: Callable[[bool], ClientGen],
    deadline_s: float,
) -> ClientGen:
    """The retry loop every simulated client shares: ``attempt(first)`` makes one attempt
    and returns its Outcome; the policy decides what follows. Returns True on success;
    otherwise the job has ended (failed, gave up or timed out) when it returns False."""
    env, rec = w.env, w.rec
    while True:
        now = env.now
        if run.before_attempt(now):
            outcome = yield from attempt(run.attempts == 1)
            now = env.now
        else:
            rec.count("local_reject", now)
            outcome = _LOCAL
        rec.attempts[job_index] = run.attempts
        decision = run.after(outcome, now)
        action = decision.action
        if action is Action.DONE:
            return True
        if action is not Action.RETRY:
            end = JobOutcome.FAILED if action is Action.FAIL else JobOutcome.GAVE_UP
            rec.end_job(job_index, end, now)
            return False
        if now + decision.delay_s >= deadline_s:
            yield Timer(env, max(0.0, deadline_s - now))
            rec.end_job(job_index, JobOutcome.TIMED_OUT, env.now)
            return False
        yield Timer(env, decision.delay_s)


def request(w: World, kind: str, stream: bool, job: Job) -> ClientGen:
    """One HTTP request about ``job`` through the network to the service, a
    ``GET .../stream`` when ``stream``, else a ``POST``; returns its Outcome.

    When the request reaches the service, ``service.on_connect`` or ``on_create`` runs
    with an event whose value is ``job`` and leaves the answer in ``job.answer``, unless
    the fault timeline alone decides that answer (``service.settled``): then it is known
    now and the arrival, which would change nothing, is not simulated. Counted as
    offered ``kind`` in the bucket it was sent in, and its result in the same bucket.
    """
    env, rec, net = w.env, w.rec, w.network
    sent_s = env.now
    bucket = rec.bucket(sent_s)
    live = rec.live
    live[kind][bucket] += 1
    rec.in_flight += 1
    timeout_s = w.request_timeout_s
    try:
        fate = Fate.DELIVERED if net.clean else net.fate(sent_s)
        if fate is Fate.LOST:
            yield Timer(env, timeout_s)
            live["error_timeout"][bucket] += 1
            return _TIMEOUT
        there_s, back_s = net.round_trip_s(sent_s)
        if fate is not Fate.DELIVERED:
            # RST or refusal comes back after one round trip
            yield Timer(env, min(there_s + back_s, timeout_s))
            if fate is Fate.RESET:
                live["error_reset"][bucket] += 1
                return _RESET
            live["error_refused"][bucket] += 1
            return _REFUSED
        if there_s >= timeout_s:
            yield Timer(env, timeout_s)
            live["error_timeout"][bucket] += 1
            return _TIMEOUT
        # The service answers when the request arrives (a callback at there_s); the client
        # wakes once, when the answer is back: one resume per request, not two.
        svc = w.service
        settled = svc.settled(sent_s + there_s, stream)  # the instant the timeout fires at
        if settled is None:
            job.answer = UNANSWERED
            call_after(env, there_s, job, svc.on_connect if stream else svc.on_create)
        else:
            job.answer = settled
        if there_s + back_s > timeout_s:
            yield Timer(env, timeout_s)
            live["error_timeout"][bucket] += 1
            if job.answer.status == 201:
                rec.orphaned_jobs += 1
            return _TIMEOUT
        yield Timer(env, there_s + back_s)
        answer = job.answer
        assert answer is not UNANSWERED, "the answer arrives before the client wakes"
        live[answer.counter][bucket] += 1
        return answer.outcome
    finally:
        rec.in_flight -= 1


def call_client(w: World, job_index: int, attempt: Callable[[bool], ClientGen]) -> ClientGen:
    """A client whose job is one call, retried per policy: done when a try succeeds."""
    env, rec = w.env, w.rec
    deadline_s = env.now + w.job_timeout_s
    run = w.policy.retry.start(env.now, w.policy_draws, *w.budget_and_breaker())
    if (yield from retry_loop(w, job_index, run, attempt, deadline_s)):
        rec.accepted_s[job_index] = env.now
        rec.end_job(job_index, JobOutcome.COMPLETED, env.now)


def rpc_client(w: World, job_index: int, service_s: float) -> ClientGen:
    """A synchronous call under the retry policy: the request timeout covers the whole
    call, and a call the client gave up on still occupies the server (wasted work)."""
    return call_client(w, job_index, lambda first: _rpc_attempt(w, first, service_s))


def _rpc_attempt(w: World, first: bool, service_s: float) -> ClientGen:
    env, rec, net = w.env, w.rec, w.network
    sent_s = env.now
    rec.count("offered_first" if first else "offered_retry", sent_s)
    rec.in_flight += 1
    timeout_s = w.request_timeout_s
    try:
        fate = net.fate(sent_s)
        there_s = net.delay_s(sent_s)
        if fate is Fate.LOST or there_s >= timeout_s:
            yield env.timeout(timeout_s)
            rec.count("error_timeout", sent_s)
            return _TIMEOUT
        if fate is not Fate.DELIVERED:
            yield env.timeout(min(2 * there_s, timeout_s))
            rec.count("error_reset" if fate is Fate.RESET else "error_refused", sent_s)
            return _RESET if fate is Fate.RESET else _REFUSED
        yield env.timeout(there_s)
        done = env.event()

        def on_done(_: Job) -> None:
            if not done.triggered:
                done.succeed()

        job = Job(-1, service_s, on_done)
        answer = w.service.call(job)
        if answer is not None:
            yield env.timeout(net.delay_s(env.now))
            rec.count(answer.counter, sent_s)
            return answer.outcome
        yield done | env.timeout(max(0.0, sent_s + timeout_s - env.now))
        back_s = net.delay_s(env.now)
        if not done.triggered or env.now + back_s > sent_s + timeout_s:
            yield env.timeout(max(0.0, sent_s + timeout_s - env.now))
            rec.count("error_timeout", sent_s)
            return _TIMEOUT
        yield env.timeout(back_s)
        rec.count("accepted", sent_s)
        return Outcome(status=200)
    finally:
        rec.in_flight -= 1


def job_client(w: World, job_index: int, service_s: float) -> ClientGen:
    """One user's job, from ``POST /api/ai/jobs`` to its outcome."""
    env, rec, policy = w.env, w.rec, w.policy
    start_s = env.now
    deadline_s = start_s + w.job_timeout_s
    budget, breaker = w.budget_and_breaker()
    run = policy.retry.start(start_s, w.policy_draws, budget, breaker)
    wait = Wait(w, deadline_s, job_index, service_s)
    try:
        # ------------------------------------------------------------ create
        if not (yield from retry_loop(w, job_index, run, wait.create_attempt, deadline_s)):
            return
        job = wait.current
        assert job is not None
        rec.accepted_s[job_index] = env.now

        # ------------------------------------------------------------ follow
        if not w.follow_stream:
            if not wait.done:
                yield wait.arm()
            end = JobOutcome.COMPLETED if wait.done else JobOutcome.TIMED_OUT
            rec.end_job(job_index, end, env.now)
            return
        yield from follow_stream(w, job_index, job, wait, deadline_s)
    finally:
        wait.close()


class Wait:
    """What a client waits for once its job is accepted: the job's end, a stream cut or
    its deadline. One event per wait; the deadline comes from the world's one
    :class:`Deadlines` timer, not a timer per client. No closures, and ``close`` drops
    the references between client, job and wait, so a finished client is freed by
    reference counting, not left for the cyclic garbage collector."""

    __slots__ = (
        "closed",
        "current",
        "cut",
        "deadline_s",
        "done",
        "event",
        "index",
        "service_s",
        "w",
        "watched",
    )

    def __init__(self, w: World, deadline_s: float, index: int, service_s: float) -> None:
        self.w = w
        self.deadline_s = deadline_s
        self.index = index
        self.service_s = service_s
        self.closed = False
        self.done = False  # the job's result exists on the server
        self.cut = False  # the current stream was cut
        self.event: Wake | None = None
        self.current: Job | None = None  # the job of the latest create attempt
        self.watched = False  # on the world's deadline timer

    def create_attempt(self, first: bool) -> ClientGen:
        """One ``POST /api/ai/jobs``: a fresh Job, whose end wakes this wait."""
        w = self.w
        job = self.current = Job(self.index, self.service_s, self.job_ended)
        return request(w, "offered_first" if first else "offered_retry", False, job)

    def arm(self) -> Wake:
        """A fresh event that fires on done, cut or deadline, whichever comes first."""
        self.cut = False
        self.event = event = Wake()
        if not self.watched:
            self.watched = True
            self.w.deadlines.watch(self)
        return event

    def fire(self) -> None:
        event = self.event
        if event is not None:
            self.event = None
            event.wake()

    def finished(self) -> bool:
        """Has the job's result been produced?"""
        return self.done

    def job_ended(self, job: Job) -> None:
        if job is self.current:
            self.done = True
            self.fire()

    def stream_cut(self) -> None:
        self.cut = True
        self.fire()

    def close(self) -> None:
        """The client has ended: nothing more to wake."""
        self.closed = True
        self.event = None
        self.current = None


class Deadlines:
    """The job deadlines of every waiting client on one timer.

    A SimPy timeout cannot be cancelled, so a timer per client would sit in the event
    queue until its deadline although almost every job ends long before it. Here a heap
    holds the waits in deadline order and one timeout is pending, for the earliest;
    when it fires, every due wait still open is woken and closed waits at the head are
    dropped in bulk, so timers fire only for deadlines that matter.
    """

    __slots__ = ("env", "heap", "seq", "timer_at_s")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.heap: list[tuple[float, int, Wait]] = []
        self.seq = 0
        self.timer_at_s: float | None = None

    def watch(self, wait: Wait) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (wait.deadline_s, self.seq, wait))
        if self.timer_at_s is None or wait.deadline_s < self.timer_at_s:
            self._set_timer(wait.deadline_s)

    def clear(self) -> None:
        """The run is over: let go of every wait still held."""
        self.heap.clear()

    def _set_timer(self, at_s: float) -> None:
        self.timer_at_s = at_s
        timer = self.env.timeout(max(0.0, at_s - self.env.now), at_s)
        timer.callbacks.append(self._due)

    def _due(self, timer: simpy.Event) -> None:
        if timer.value != self.timer_at_s:
            return  # superseded by an earlier timer, which has already done this work
        heap, now = self.heap, self.env.now
        while heap and (heap[0][0] <= now or heap[0][2].closed):
            wait = heapq.heappop(heap)[2]
            if not wait.closed:
                wait.fire()
        self.timer_at_s = None
        if heap:
            self._set_timer(heap[0][0])


def follow_stream(w: World, job_index: int, job: Job, wait: Wait, deadline_s: float) -> ClientGen:
    """``GET .../stream`` and keep it open; reconnect per policy when it drops."""
    env, rec = w.env, w.rec
    events = w.progress_events
    reconnect = w.policy.reconnect
    recovery: ReconnectRun | None = None  # made at the first drop: most streams never drop
    delivered = 0  # highest event id the client has received
    kind = "offered_first"
    rec.reconnecting += 1  # "connecting" counts as not yet connected

    while True:
        # ---- connect (first time or again)
        outcome = yield from request(w, kind, True, job)
        if outcome.status == 200:
            if recovery is not None:
                recovery.connected()
            if not reconnect.resume and delivered:
                rec.events_duplicated[job_index] += delivered  # replayed from the start
            # While connected the client receives every event as it is emitted; what it
            # has when the stream ends (cut, deadline) is worked out then, below.
            rec.reconnecting -= 1
            rec.connected += 1
            if wait.done:
                _end_stream(w, job_index, job, JobOutcome.COMPLETED, True, delivered)
                return
            w.open_streams[job_index] = wait
            yield wait.arm()
            w.open_streams.pop(job_index, None)
            if wait.finished():  # a call: mypy would keep the narrowing from before the yield
                _end_stream(w, job_index, job, JobOutcome.COMPLETED, True, delivered)
                return
            if not wait.cut:
                delivered = job.emitted_by(env.now, events)
                _end_stream(w, job_index, job, JobOutcome.TIMED_OUT, True, delivered)
                return
            delivered = job.emitted_by(env.now, events)
            rec.connected -= 1
            rec.reconnecting += 1
        # ---- the stream is down: wait per the reconnect policy
        if recovery is None:
            recovery = reconnect.start(w.policy_draws)
        delay_s = recovery.next_delay_s(w.stream_retry_s)
        if delay_s is None:  # "connection recovery failed"
            _end_stream(w, job_index, job, JobOutcome.GAVE_UP, False, delivered)
            return
        if env.now + delay_s >= deadline_s:
            yield Timer(env, max(0.0, deadline_s - env.now))
            _end_stream(w, job_index, job, JobOutcome.TIMED_OUT, False, delivered)
            return
        yield Timer(env, delay_s)
        rec.reconnects[job_index] += 1
        kind = "offered_reconnect"


def _end_stream(
    w: World, job_index: int, job: Job, outcome: JobOutcome, connected: bool, delivered: int
) -> None:
    """The stream follower ends with ``outcome``, ``connected`` or not, having received
    events up to ``delivered``: gauges, events lost, the job's end."""
    rec, now = w.rec, w.env.now
    if connected:
        rec.connected -= 1
    else:
        rec.reconnecting -= 1
    if outcome is JobOutcome.GAVE_UP:
        rec.disconnected += 1
    # a completed stream got the result event, and with it every event before it: none lost
    if outcome is not JobOutcome.COMPLETED:
        lost = job.emitted_by(now, w.progress_events) - delivered
        rec.events_lost[job_index] = max(0, lost)
    rec.end_job(job_index, outcome, now)
