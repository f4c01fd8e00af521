"""The seed system's client, simulated: create a job under the retry policy, then
follow its progress stream under the reconnect policy, until exactly one outcome.

:class:`JobClient` is that client, event-driven: each step is a method that runs when
what it waits for happens (an answer, the end of a backoff, the job's end, a cut
stream, its deadline) and sets up the next, so a simulated request costs one call per
step and no generator. The synchronous-call clients (``rpc``, ``occ``) make several
messages per attempt and are generators run by a :class:`Task`; both kinds decide what
follows an attempt with :func:`next_step`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

import simpy

from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Action, Decision, ReconnectRun, RetryRun
from sim.world.events import ClientGen, Timer, call_after
from sim.world.metrics import JobOutcome
from sim.world.network import Fate
from sim.world.service import UNANSWERED, Job

if TYPE_CHECKING:
    from sim.world.run import World

_TIMEOUT = Outcome(error=ErrorKind.TIMEOUT)
_RESET = Outcome(error=ErrorKind.RESET)
_REFUSED = Outcome(error=ErrorKind.REFUSED)
_LOCAL = Outcome(error=ErrorKind.LOCAL_REJECT)
_FAILURE = {Fate.LOST: _TIMEOUT, Fate.RESET: _RESET, Fate.REFUSED: _REFUSED}  # what a fate gives
_ERROR_COUNTER = {_TIMEOUT: "error_timeout", _RESET: "error_reset", _REFUSED: "error_refused"}

# Enum members read on every request, bound to module names once: on Python 3.11 every
# attribute read on an Enum class (``Fate.LOST``) goes through ``EnumType.__getattr__``'s
# attribute hook, about 140 ns, twenty times a global's cost (faster from 3.12 on).
_DELIVERED, _LOST = Fate.DELIVERED, Fate.LOST
_DONE, _RETRY, _FAIL = Action.DONE, Action.RETRY, Action.FAIL
_COMPLETED, _FAILED, _GAVE_UP, _TIMED_OUT = (
    JobOutcome.COMPLETED,
    JobOutcome.FAILED,
    JobOutcome.GAVE_UP,
    JobOutcome.TIMED_OUT,
)


class Step(Enum):
    """What a client does after an attempt (see :func:`next_step`)."""

    SUCCEEDED = "succeeded"  # go on to what follows the call
    ENDED = "ended"  # the job has ended (failed or gave up), recorded
    RETRY = "retry"  # wait the delay, then try again
    DEADLINE = "deadline"  # wait the delay, then the job times out


_SUCCEEDED, _ENDED, _RETRYING, _DEADLINE = Step.SUCCEEDED, Step.ENDED, Step.RETRY, Step.DEADLINE


def next_step(
    w: World, job_index: int, run: RetryRun, outcome: Outcome, now_s: float, deadline_s: float
) -> tuple[Step, float]:
    """The retry policy's decision on ``outcome``, turned into the client's next step
    and the delay before it; a job that fails or gives up is recorded as ended."""
    w.rec.attempts[job_index] = run.attempts
    return step_of(w, job_index, run.after(outcome, now_s), now_s, deadline_s)


def step_of(
    w: World, job_index: int, decision: Decision, now_s: float, deadline_s: float
) -> tuple[Step, float]:
    """The client's next step after the policy's ``decision`` (see :func:`next_step`)."""
    action = decision.action
    if action is _DONE:
        return _SUCCEEDED, 0.0
    if action is not _RETRY:
        end = _FAILED if action is _FAIL else _GAVE_UP
        w.rec.end_job(job_index, end, now_s)
        return _ENDED, 0.0
    if now_s + decision.delay_s >= deadline_s:
        return _DEADLINE, max(0.0, deadline_s - now_s)
    return _RETRYING, decision.delay_s


def retry_loop(
    w: World,
    job_index: int,
    run: RetryRun,
    attempt: Callable[[bool], ClientGen],
    deadline_s: float,
) -> ClientGen:
    """The retry loop of a generator client: ``attempt(first)`` makes one attempt and
    returns its Outcome; the policy decides what follows. Returns True on success;
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
        step, delay_s = next_step(w, job_index, run, outcome, now, deadline_s)
        if step is _SUCCEEDED:
            return True
        if step is _ENDED:
            return False
        if step is _RETRYING:
            rec.backing_off += 1
            yield Timer(env, delay_s)
            rec.backing_off -= 1
            continue
        yield Timer(env, delay_s)
        if step is _DEADLINE:
            rec.end_job(job_index, _TIMED_OUT, env.now)
            return False


def call_client(
    w: World, job_index: int, attempt: Callable[[bool], ClientGen], service_s: float = 0.0
) -> ClientGen:
    """A client whose job is one call, retried per policy: done when a try succeeds.
    ``service_s``: the server work of the call whose answer it receives (useful work)."""
    env, rec = w.env, w.rec
    deadline_s = env.now + w.job_timeout_s
    run = w.policy.retry.start(env.now, w.policy_draws, *w.budget_and_breaker())
    if (yield from retry_loop(w, job_index, run, attempt, deadline_s)):
        rec.accepted_s[job_index] = env.now
        rec.useful_work_s += service_s
        rec.end_job(job_index, _COMPLETED, env.now)


def rpc_client(w: World, job_index: int, service_s: float) -> ClientGen:
    """A synchronous call under the retry policy: the request timeout covers the whole
    call, and a call the client gave up on still occupies the server (wasted work)."""
    return call_client(w, job_index, lambda first: _rpc_attempt(w, first, service_s), service_s)


def _rpc_attempt(w: World, first: bool, service_s: float) -> ClientGen:
    env, rec, net = w.env, w.rec, w.network
    sent_s = env.now
    rec.offer("offered_first" if first else "offered_retry", sent_s)
    rec.in_flight += 1
    timeout_s = w.request_timeout_s
    try:
        fate = net.fate(sent_s)
        there_s = net.delay_s(sent_s)
        if fate is _LOST or there_s >= timeout_s:
            yield env.timeout(timeout_s)
            rec.count("error_timeout", sent_s)
            return _TIMEOUT
        if fate is not _DELIVERED:
            yield env.timeout(min(2 * there_s, timeout_s))
            failure = _FAILURE[fate]
            rec.count(_ERROR_COUNTER[failure], sent_s)
            return failure
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


class JobClient:
    """One user's job, from ``POST /api/ai/jobs`` to its outcome.

    Create the job under the retry policy (:meth:`_attempt`, :meth:`_created`); once
    accepted, follow its progress stream (:meth:`_connect`, :meth:`_connected`), and
    when the stream drops, reconnect under the reconnect policy (:meth:`_stream_down`),
    resuming after the last event received when the policy says so. Ends as exactly one
    of completed, failed, gave up or timed out (recorded, then :meth:`_close`).

    Each HTTP request goes through the network to the service (:meth:`_send`); its
    answer, or its failure, comes back to :meth:`_answered` (or :meth:`_answer_known`),
    :meth:`_timed_out` or :meth:`_failed`, each counted in the bucket the request was
    sent in. While accepted and waiting, the job's end, a stream cut or the deadline
    (the world's one :class:`Deadlines` timer) continue it through :meth:`fire`. No
    closures; the one reference back to it (its job's ``on_done``) is dropped by
    ``_close``, so a finished client is freed by reference counting, not left for the
    cyclic GC.
    """

    __slots__ = (
        "bucket",
        "closed",
        "current",
        "cut",
        "deadline_s",
        "delivered",
        "done",
        "index",
        "on_end",
        "recovery",
        "run",
        "service_s",
        "stream_kind",
        "streaming",
        "w",
        "waiting",
    )

    def __init__(
        self, w: World, index: int, service_s: float, on_end: Callable[[], None] | None
    ) -> None:
        """Arrive now and send the first create attempt at once."""
        self.w = w
        self.index = index
        self.service_s = service_s
        self.on_end = on_end  # called once the client has ended
        start_s = w.env.now
        self.deadline_s = start_s + w.job_timeout_s
        budget, breaker = w.budget_and_breaker()
        self.run = w.policy.retry.start(start_s, w.policy_draws, budget, breaker)
        self.closed = False
        # the job the pending or accepted create attempt made on the server, if any
        self.current: Job | None = None
        self.done = False  # the job's result exists on the server
        self.cut = False  # the open stream was cut
        self.waiting = False  # accepted and waiting: fire() continues the client
        self.streaming = False  # the request in flight is a stream connect
        self.bucket = 0  # the send bucket of the request in flight
        self.recovery: ReconnectRun | None = None  # made at the first drop: most never drop
        self.delivered = 0  # highest progress event id received
        self.stream_kind = "offered_first"
        w.deadlines.watch(self)
        self._attempt(None)

    # ------------------------------------------------------------ create

    def _attempt(self, timer: Timer | None) -> None:
        """One ``POST /api/ai/jobs`` (the first, or a retry after its backoff)."""
        run, now = self.run, self.w.env.now
        if timer is not None:
            self.w.rec.backing_off -= 1
        if run.before_attempt(now):
            self._send("offered_first" if run.attempts == 1 else "offered_retry", False, now)
        else:
            self.w.rec.count("local_reject", now)
            self._created(_LOCAL)

    def _created(self, outcome: Outcome) -> None:
        """The create attempt's outcome is in: the policy says what follows."""
        w = self.w
        env = w.env
        now = env.now
        step, delay_s = next_step(w, self.index, self.run, outcome, now, self.deadline_s)
        if step is _SUCCEEDED:
            self._accepted(now)
            return
        # Not accepted: a job this attempt made on the server (its 201 came back too
        # late) is an orphan the client never learns of, and its end is not the client's.
        self.current = None
        self.done = False
        if step is _RETRYING:
            w.rec.backing_off += 1
            call_after(env, delay_s, None, self._attempt)
        elif step is _DEADLINE:
            call_after(env, delay_s, None, self._create_deadline)
        else:
            self._close()

    def _accepted(self, now_s: float) -> None:
        w = self.w
        w.rec.accepted_s[self.index] = now_s
        job = self.current
        if job is not None:  # a call with no job of its own has nothing to claim
            job.claimed = True
        if w.follow_stream:
            w.rec.reconnecting += 1  # "connecting" counts as not yet connected
            self._connect(now_s)
        elif self.done:
            self._end_plain()
        else:
            self._arm()

    def _end_plain(self) -> None:
        """No stream followed: the job has completed, or the deadline came first."""
        end = _COMPLETED if self.done else _TIMED_OUT
        if self.done:
            self.w.rec.useful_work_s += self.service_s
        self.w.rec.end_job(self.index, end, self.w.env.now)
        self._close()

    # ------------------------------------------------------------ follow

    def _connect(self, now_s: float) -> None:
        """``GET .../stream``, the first time or again."""
        self._send(self.stream_kind, True, now_s)

    def _connected(self, outcome: Outcome) -> None:
        """The stream connect's outcome is in."""
        if outcome.status != 200:
            if outcome.status is not None and self.w.policy.reconnect.give_up_on_status:
                self._end_stream(_GAVE_UP, False)  # EventSource: an error answer is final
                return
            self._stream_down()
            return
        w = self.w
        rec = w.rec
        if self.recovery is not None:
            self.recovery.connected()
        if not w.policy.reconnect.resume and self.delivered:
            rec.events_duplicated[self.index] += self.delivered  # replayed from the start
        # While connected the client receives every event as it is emitted; what it
        # has when the stream ends (cut, deadline) is worked out then.
        rec.reconnecting -= 1
        rec.connected += 1
        if self.done:
            self._end_stream(_COMPLETED, True)
            return
        w.open_streams[self.index] = self
        self._arm()

    def _stream_woken(self) -> None:
        """Connected and waiting, the job ended, the stream was cut or the deadline came."""
        w = self.w
        w.open_streams.pop(self.index, None)
        if self.done:
            self._end_stream(_COMPLETED, True)
            return
        job = self.current
        assert job is not None
        self.delivered = job.emitted_by(w.env.now, w.progress_events)
        if not self.cut:
            self._end_stream(_TIMED_OUT, True)
            return
        w.rec.connected -= 1
        w.rec.reconnecting += 1
        self._stream_down()

    def _stream_down(self) -> None:
        """The stream is down: wait per the reconnect policy, or end."""
        w = self.w
        env = w.env
        if self.recovery is None:
            self.recovery = w.policy.reconnect.start(w.policy_draws)
        delay_s = self.recovery.next_delay_s(w.stream_retry_s)
        if delay_s is None:  # "connection recovery failed"
            self._end_stream(_GAVE_UP, False)
            return
        if env.now + delay_s >= self.deadline_s:
            call_after(env, max(0.0, self.deadline_s - env.now), None, self._stream_deadline)
            return
        w.rec.backing_off += 1
        call_after(env, delay_s, None, self._reconnect)

    def _reconnect(self, _timer: Timer) -> None:
        self.w.rec.backing_off -= 1
        self.w.rec.reconnects[self.index] += 1
        self.stream_kind = "offered_reconnect"
        self._connect(self.w.env.now)

    def _stream_deadline(self, _timer: Timer) -> None:
        self._end_stream(_TIMED_OUT, False)

    def _end_stream(self, outcome: JobOutcome, connected: bool) -> None:
        """The stream follower ends with ``outcome``, ``connected`` or not: gauges, events
        lost, the job's end."""
        w = self.w
        rec, now = w.rec, w.env.now
        if connected:
            rec.connected -= 1
        else:
            rec.reconnecting -= 1
        if outcome is _GAVE_UP:
            rec.disconnected += 1
        # a completed stream got the result event, and every event before it: none lost
        if outcome is _COMPLETED:
            rec.useful_work_s += self.service_s
        else:
            if self.done:  # the service finished it while the client was not listening
                rec.completed_unseen += 1
            job = self.current
            assert job is not None
            lost = job.emitted_by(now, w.progress_events) - self.delivered
            rec.events_lost[self.index] = max(0, lost)
        rec.end_job(self.index, outcome, now)
        self._close()

    # ------------------------------------------------------------ waiting

    def _arm(self) -> None:
        """Wait for the job's end, a stream cut or the deadline, whichever comes first."""
        self.cut = False
        self.waiting = True
        env = self.w.env
        if env.now >= self.deadline_s:  # accepted after it: the deadline timer has passed
            call_after(env, 0.0, None, self._deadline_passed)

    def _deadline_passed(self, _timer: Timer) -> None:
        self.fire()

    def fire(self) -> None:
        """The job ended, the stream was cut or the deadline came: go on, if waiting."""
        if self.waiting:
            self.waiting = False
            if self.w.follow_stream:
                self._stream_woken()
            else:
                self._end_plain()

    def job_ended(self, job: Job) -> None:
        if job is self.current:
            self.done = True
            self.fire()
        elif self.closed and job.claimed:  # its client ended without it, before it finished
            self.w.rec.completed_unseen += 1

    def stream_cut(self) -> None:
        self.cut = True
        self.fire()

    def _create_deadline(self, _timer: Timer) -> None:
        """The deadline came while waiting out a backoff before a create attempt."""
        self.w.rec.end_job(self.index, _TIMED_OUT, self.w.env.now)
        self._close()

    def _close(self) -> None:
        """The client has ended: nothing more to wake; tell whoever started it."""
        self.closed = True
        self.waiting = False
        self.current = None
        if self.on_end is not None:
            self.on_end()

    # ------------------------------------------------------------ one request

    def _send(self, kind: str, stream: bool, sent_s: float) -> None:
        """One HTTP request through the network to the service: a ``GET .../stream``
        for the accepted job when ``stream``, else a ``POST`` that creates a new job.

        When the request reaches the service, ``service.on_connect`` or ``on_create``
        runs with an event whose value is the job and leaves the answer in
        ``job.answer``, unless the fault timeline alone decides that answer
        (``service.settled``): then it is known now, the arrival, which would change
        nothing, is not simulated, and a ``POST`` makes no job. Counted as offered
        ``kind`` in the bucket it was sent in (``sent_s`` is now), and its result in the
        same bucket.
        """
        w = self.w
        env, rec, net = w.env, w.rec, w.network
        self.bucket = bucket = rec.bucket(sent_s)
        self.streaming = stream
        rec.live[kind][bucket] += 1
        rec.sent_s.append(sent_s)
        rec.in_flight += 1
        timeout_s = w.request_timeout_s
        fate = _DELIVERED if net.clean else net.fate(sent_s)
        if fate is _LOST:
            call_after(env, timeout_s, _TIMEOUT, self._failed)
            return
        there_s, back_s = net.round_trip_s(sent_s)
        if fate is not _DELIVERED:
            # RST or refusal comes back after one round trip
            call_after(env, min(there_s + back_s, timeout_s), _FAILURE[fate], self._failed)
            return
        if there_s >= timeout_s:
            call_after(env, timeout_s, _TIMEOUT, self._failed)
            return
        svc = w.service
        settled = svc.settled(sent_s + there_s, stream)  # the instant the arrival is at
        if settled is not None:
            if there_s + back_s > timeout_s:
                call_after(env, timeout_s, _TIMEOUT, self._failed)
            else:
                call_after(env, there_s + back_s, settled, self._answer_known)
            return
        # The service answers when the request arrives (a callback at there_s); the client
        # goes on once, when the answer is back.
        if stream:
            job = self.current
            assert job is not None, "a stream is only opened for an accepted job"
        else:
            self.current = job = Job(self.index, self.service_s, self.job_ended)
        job.answer = UNANSWERED
        call_after(env, there_s, job, svc.on_connect if stream else svc.on_create)
        if there_s + back_s > timeout_s:
            call_after(env, timeout_s, job, self._timed_out)
            return
        call_after(env, there_s + back_s, job, self._answered)

    def _answered(self, timer: Timer) -> None:
        """The answer the service left on the job (the timer's value) is back."""
        answer = timer._value.answer
        assert answer is not UNANSWERED, "the answer arrives before the client wakes"
        self._outcome(answer.counter, answer.outcome)

    def _answer_known(self, timer: Timer) -> None:
        """The answer settled when the request was sent (the timer's value) is back."""
        answer = timer._value
        self._outcome(answer.counter, answer.outcome)

    def _timed_out(self, timer: Timer) -> None:
        """No answer within the timeout (it was still on its way back)."""
        if timer._value.answer.status == 201:
            self.w.rec.orphaned_jobs += 1  # admitted, and the client never learns it
        self._outcome("error_timeout", _TIMEOUT)

    def _failed(self, timer: Timer) -> None:
        """Lost (a timeout), reset or refused: the Outcome is the timer's value."""
        self._outcome(_ERROR_COUNTER[timer._value], timer._value)

    def _outcome(self, counter: str, outcome: Outcome) -> None:
        rec = self.w.rec
        rec.live[counter][self.bucket] += 1
        rec.in_flight -= 1
        if self.streaming:
            self._connected(outcome)
        else:
            self._created(outcome)


_SWEEP_MIN = 4096  # a small queue is never swept: the head's pops keep it short


class Deadlines:
    """The job deadlines of every client on one timer.

    A SimPy timeout cannot be cancelled, so a timer per client would sit in the event
    queue until its deadline although almost every job ends long before it. Every
    client's deadline is its start plus the scenario's one job timeout, and clients
    start in time order, so they fall due in the order they started: a queue in that
    order, and one timeout pending, for the head. When it fires, every due client still
    open is woken (it goes on only if it is waiting for its job) and ended clients at
    the head are dropped in bulk, so the timer fires only for deadlines that matter.
    """

    __slots__ = ("env", "queue", "sweep_at", "timer_at_s")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.queue: deque[JobClient] = deque()
        self.timer_at_s: float | None = None
        self.sweep_at = _SWEEP_MIN  # the queue's length that calls for the next sweep

    def watch(self, client: JobClient) -> None:
        """Watch ``client`` from its start."""
        queue = self.queue
        assert not queue or queue[-1].deadline_s <= client.deadline_s, "due in start order"
        while queue and queue[0].closed:  # let ended clients go now, not at their deadline
            queue.popleft()
        queue.append(client)
        if len(queue) >= self.sweep_at:
            self._sweep()
        if self.timer_at_s is None:
            self._set_timer(client.deadline_s)

    def _sweep(self) -> None:
        """Let go of every ended client, not only those at the head.

        One client still open at the head (a long job, or one that retried through an
        outage) holds every client that started after it until it ends: in a herd of
        10 million, tens of seconds of arrivals, millions of ended clients kept in memory
        and scattered through the cache. Swept whenever the queue has doubled since the
        last sweep, so each client is looked at a bounded number of times on average and
        the queue holds at most about twice the clients still open.
        """
        self.queue = queue = deque(c for c in self.queue if not c.closed)
        self.sweep_at = max(_SWEEP_MIN, 2 * len(queue))

    def clear(self) -> None:
        """The run is over: let go of every client still held."""
        self.queue.clear()

    def _set_timer(self, at_s: float) -> None:
        self.timer_at_s = at_s
        call_after(self.env, max(0.0, at_s - self.env.now), None, self._due)

    def _due(self, _timer: Timer) -> None:
        queue, now = self.queue, self.env.now
        while queue and (queue[0].deadline_s <= now or queue[0].closed):
            client = queue.popleft()
            if not client.closed:
                client.fire()
        self.timer_at_s = None
        if queue:
            self._set_timer(queue[0].deadline_s)
