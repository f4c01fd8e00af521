"""The 2015 AWS optimistic-concurrency experiment (docs/policies-and-faults.md).

N clients each update one row once: read its version, write conditionally on it;
a stale write fails, the client backs off and starts over. Each message takes one
network latency; the server does no other work. ``server_calls`` counts reads
and writes; ``server_writes`` the writes alone: the "calls" of the original post and
of its simulator, which counted a call per conditional write.

:class:`OccClient` is event-driven, one method per message, on the world's
:class:`~sim.world.events.Lane`: its messages change nothing the rest of the world
reads except the row, the counters and ``in_flight``, which only the lane's own
entries and the gauge sampler (a SimPy event, run in its place) read.
"""

from __future__ import annotations

from heapq import heappush
from typing import TYPE_CHECKING

from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Action
from sim.world.client import Step as _Step
from sim.world.client import next_step, step_of
from sim.world.events import Lane, Timer
from sim.world.metrics import JobOutcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from sim.policies.policy import RetryRun
    from sim.world.run import World

_OK = Outcome(status=200)
_CONFLICT = Outcome(error=ErrorKind.CONFLICT)
_LOCAL = Outcome(error=ErrorKind.LOCAL_REJECT)
# read per try (Enum class attributes are slow to read on Python 3.11)
_SUCCEEDED, _RETRYING, _DEADLINE = _Step.SUCCEEDED, _Step.RETRY, _Step.DEADLINE
_COMPLETED, _TIMED_OUT = JobOutcome.COMPLETED, JobOutcome.TIMED_OUT
_RETRY_ACTION = Action.RETRY


class Row:
    """The one contended row."""

    __slots__ = ("version",)

    def __init__(self) -> None:
        self.version = 0


class OccClient:
    """One client: read, conditional write, back off on a conflict, until the write
    wins (or the policy gives up, or the job's deadline comes).

    Each message's latency is drawn when it is sent, as each step runs at its own
    time: the same draws, in the same order, as a generator client waiting on SimPy
    timeouts. Its end goes back to SimPy's queue (``Lane.in_world``), where the world
    counts it and the run may end.

    Every message and every try is on the hot path (the 2015 table makes 2.75 million
    messages), so each step does its work inline, on what it holds: the lane's heap,
    the recorder's counters, the latency draw; a message costs a heap push and a call,
    and a try one policy decision (``RetryRun.after``) besides."""

    __slots__ = (
        "bucket",
        "deadline_s",
        "draw",
        "heap",
        "index",
        "lane",
        "net",
        "on_end",
        "rec",
        "row",
        "run",
        "seen",
        "seq",
        "spikes",
        "w",
        "won",
    )

    def __init__(
        self, w: World, index: int, row: Row, lane: Lane, on_end: Callable[[], None]
    ) -> None:
        """Arrive now and send the first read at once; ``on_end`` runs once it has ended."""
        now = w.env.now
        self.w = w
        self.on_end = on_end
        self.rec = w.rec
        self.index = index
        self.row = row
        self.lane = lane
        # Within the lane's loop, a message goes straight onto its heap (``Lane.push``
        # also arms the lane's timer, which only a push from outside the loop needs).
        self.heap, self.seq = lane.heap, lane.seq
        net = self.net = w.network
        self.draw = net.draw  # one latency; with spikes, net.delay_s(now) adds theirs
        self.spikes = net.spikes
        self.deadline_s = now + w.job_timeout_s
        self.run: RetryRun = w.policy.retry.start(now, w.policy_draws, *w.budget_and_breaker())
        self.bucket = 0  # the send bucket of the try in flight
        self.seen = 0
        self.won = False
        self._try(now)

    def _try(self, now_s: float) -> None:
        """One try (the first, or a retry after its backoff): send the read."""
        run, rec = self.run, self.rec
        if not run.before_attempt(now_s):
            rec.count("local_reject", now_s)
            self._decide(_LOCAL, now_s)
            return
        # its send bucket (Recorder.bucket, inline), where both its counts go
        bucket = int(now_s * rec.per_bucket)
        self.bucket = bucket = bucket if bucket < rec.n else rec.n - 1
        rec.live["offered_first" if run.attempts == 1 else "offered_retry"][bucket] += 1
        rec.sent_s.append(now_s)
        rec.in_flight += 1
        d = self.net.delay_s(now_s) if self.spikes else self.draw()
        if self.lane.running:  # within the lane's loop, or while it drives SimPy's
            heappush(self.heap, (now_s + d, next(self.seq), self._read))
        else:  # an arrival before the run (a burst at 0), or under env.run: arms a timer
            self.lane.push(now_s + d, self._read)

    def _read(self, now_s: float) -> None:
        """The read reaches the server: it answers with the row's version."""
        self.seen = self.row.version
        self.rec.server_calls += 1
        d = self.net.delay_s(now_s) if self.spikes else self.draw()
        heappush(self.heap, (now_s + d, next(self.seq), self._read_answer))

    def _read_answer(self, now_s: float) -> None:
        """The version is back: write conditionally on it."""
        d = self.net.delay_s(now_s) if self.spikes else self.draw()
        heappush(self.heap, (now_s + d, next(self.seq), self._write))

    def _write(self, now_s: float) -> None:
        """The write reaches the server: it wins if the row is still at the version read."""
        rec = self.rec
        rec.server_calls += 1
        rec.server_writes += 1
        row = self.row
        self.won = won = row.version == self.seen
        if won:
            row.version += 1
        d = self.net.delay_s(now_s) if self.spikes else self.draw()
        heappush(self.heap, (now_s + d, next(self.seq), self._write_answer))

    def _write_answer(self, now_s: float) -> None:
        """The write's answer is back: won, or a conflict the policy decides on. A retry
        due before the deadline (the common case) is queued here, without a step."""
        rec, run = self.rec, self.run
        rec.in_flight -= 1
        if self.won:
            rec.live["accepted"][self.bucket] += 1
            self._decide(_OK, now_s)
            return
        rec.live["rejected_other"][self.bucket] += 1
        rec.attempts[self.index] = run.attempts
        decision = run.after(_CONFLICT, now_s)
        if decision[0] is _RETRY_ACTION:
            at_s = now_s + decision[1]
            if at_s < self.deadline_s:
                heappush(self.heap, (at_s, next(self.seq), self._try))
                return
        self._step(step_of(self.w, self.index, decision, now_s, self.deadline_s), now_s)

    def _decide(self, outcome: Outcome, now_s: float) -> None:
        """The policy's decision on the try: done, back off and retry, or end."""
        self._step(next_step(self.w, self.index, self.run, outcome, now_s, self.deadline_s), now_s)

    def _step(self, step_and_delay: tuple[_Step, float], now_s: float) -> None:
        """Take the step :func:`next_step` or :func:`step_of` chose."""
        w = self.w
        step, delay_s = step_and_delay
        if step is _RETRYING:
            self.lane.push(now_s + delay_s, self._try)
        elif step is _SUCCEEDED:
            w.rec.accepted_s[self.index] = now_s
            w.rec.end_job(self.index, _COMPLETED, now_s)
            self.lane.in_world(now_s, self._ended)
        elif step is _DEADLINE:
            self.lane.push(now_s + delay_s, self._deadline)
        else:  # ended (failed or gave up), recorded
            self.lane.in_world(now_s, self._ended)

    def _deadline(self, now_s: float) -> None:
        """The deadline came while waiting out a backoff."""
        self.w.rec.end_job(self.index, _TIMED_OUT, now_s)
        self.lane.in_world(now_s, self._ended)

    def _ended(self, _timer: Timer) -> None:
        """The client's end, on SimPy's queue: tell whoever started it."""
        self.on_end()
