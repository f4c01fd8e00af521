"""The job service: a serverless container platform (Cloud Run style).

``instances x concurrency`` slots serve jobs; beyond them a bounded queue waits;
beyond that the service answers 503 (with Retry-After when configured). An
optional token bucket answers 429. Autoscaling adds instances after a cold
start. Outages answer 503 or refuse; a capacity drop removes instances; a store
outage degrades gracefully (accept, keep state elsewhere) or fails with 503.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from sim.policies.classify import ErrorKind, Outcome
from sim.scenario.model import FaultKind, OutageAnswer, Service, StoreOnOutage
from sim.world.events import call_after
from sim.world.faults import FaultTimeline
from sim.world.metrics import rejected_counter

# Enum members read on every request, bound once: on Python 3.11 every attribute read
# on an Enum class goes through ``EnumType.__getattr__``'s slow attribute hook.
_OUTAGE, _ERRORS, _STORE_OUTAGE, _CAPACITY_DROP = (
    FaultKind.OUTAGE,
    FaultKind.ERRORS,
    FaultKind.STORE_OUTAGE,
    FaultKind.CAPACITY_DROP,
)
_REFUSE, _FAIL = OutageAnswer.REFUSE, StoreOnOutage.FAIL


class Answer:
    """The service's answer to a request: ``status`` or ``refused``, with the counter it
    is recorded under and the client's Outcome, worked out once. Made by :func:`answer`,
    which hands out one object per distinct answer."""

    __slots__ = ("counter", "outcome", "refused", "retry_after_s", "status")

    def __init__(self, status: int, retry_after_s: float | None, refused: bool) -> None:
        self.status = status
        self.retry_after_s = retry_after_s
        self.refused = refused
        if refused:
            self.counter = "error_refused"
            self.outcome = Outcome(error=ErrorKind.REFUSED)
            return
        if status < 300:
            self.counter = "accepted" if status == 201 else "stream_connected"
        else:
            self.counter = rejected_counter(status)
        self.outcome = Outcome(status=status, retry_after_s=retry_after_s)


_ANSWERS: dict[tuple[int, float | None, bool], Answer] = {}


def answer(status: int, retry_after_s: float | None = None, refused: bool = False) -> Answer:
    """The one Answer object for this status, hint and refusal."""
    key = (status, retry_after_s, refused)
    found = _ANSWERS.get(key)
    if found is None:
        found = _ANSWERS[key] = Answer(status, retry_after_s, refused)
    return found


ACCEPTED = answer(201)
OK = answer(200)
REFUSED = answer(0, refused=True)
UNANSWERED = Answer(0, None, False)  # a request still on its way (never given to a client)


@dataclass(slots=True)
class Job:
    """A job the service accepted. Times in simulated seconds; -1 until known."""

    client: int
    service_s: float
    on_done: Callable[[Job], None]
    accepted_s: float = -1.0
    started_s: float = -1.0
    finished_s: float = -1.0
    degraded: bool = False
    answer: Answer = UNANSWERED  # the service's answer to the client's latest request
    claimed: bool = False  # its client learnt it was accepted (it is not an orphan)

    def emitted_by(self, t_s: float, events: int) -> int:
        """Progress events (the last one is the result) the server has emitted by ``t_s``."""
        if self.started_s < 0 or t_s < self.started_s:
            return 0
        if self.finished_s >= 0 and t_s >= self.finished_s:
            return events
        if self.service_s <= 0:
            return events
        return min(events, int((t_s - self.started_s) * events / self.service_s))


class JobService:
    """Slots, a queue, a rate limiter, autoscaling and the service-side faults."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: Service,
        faults: FaultTimeline,
        rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.spec = spec
        self.faults = faults
        self.rng = rng
        self.drops = bool(faults.by_kind[FaultKind.CAPACITY_DROP])  # capacity drops ever
        self.instances = spec.instances  # warm instances
        self.starting = 0  # instances in cold start
        self.busy = 0
        self.queue: deque[Job] = deque()
        self.tokens = float(spec.rate_limit.burst) if spec.rate_limit else 0.0
        self.tokens_at_s = 0.0
        self.degraded_accepts = 0
        self.admitted_work_s = 0.0  # service time of every job taken on (it runs each to its end)
        self.queue_wait_s: list[float] = []  # accepted -> started, per job started
        if spec.autoscale is not None:
            env.process(self._autoscaler())

    # ------------------------------------------------------------------ capacity

    def capacity(self) -> int:
        """Slots usable now: warm instances (less a capacity drop) x concurrency."""
        instances = self.instances
        if not self.drops:
            return instances * self.spec.concurrency
        drop = self.faults.active(_CAPACITY_DROP, self.env.now)
        if drop is not None:
            instances = min(instances, drop.instances)
        return instances * self.spec.concurrency

    def _autoscaler(self) -> simpy.events.ProcessGenerator:
        auto = self.spec.autoscale
        assert auto is not None
        per_instance = self.spec.concurrency * auto.target_utilization
        while True:
            yield self.env.timeout(auto.interval_s)
            demand = self.busy + len(self.queue)
            wanted = min(
                auto.max_instances, max(self.spec.instances, math.ceil(demand / per_instance))
            )
            if wanted > self.instances + self.starting:
                for _ in range(wanted - self.instances - self.starting):
                    self.starting += 1
                    self.env.process(self._cold_start(auto.cold_start_s))
            elif wanted < self.instances and self.starting == 0:
                self.instances -= 1  # scale down one idle instance per interval

    def _cold_start(self, delay_s: float) -> simpy.events.ProcessGenerator:
        yield self.env.timeout(delay_s)
        self.starting -= 1
        self.instances += 1
        self._drain()

    # ------------------------------------------------------------------ requests

    def _rate_limited(self, now: float) -> bool:
        rl = self.spec.rate_limit
        if rl is None:
            return False
        self.tokens = min(float(rl.burst), self.tokens + (now - self.tokens_at_s) * rl.rate_per_s)
        self.tokens_at_s = now
        if self.tokens < 1.0:
            return True
        self.tokens -= 1.0
        return False

    def _outage_answer(self, t_s: float) -> Answer | None:
        """What an outage active at ``t_s`` answers every request (None: no outage)."""
        outage = self.faults.active(_OUTAGE, t_s)
        if outage is None:
            return None
        if outage.answer is _REFUSE:
            return REFUSED
        return answer(503, outage.retry_after_s)

    def _fault_answer(self, now: float) -> Answer | None:
        outage = self._outage_answer(now)
        if outage is not None:
            return outage
        errors = self.faults.active(_ERRORS, now)
        if errors is not None and (
            errors.probability >= 1 or self.rng.random() < errors.probability
        ):
            return answer(errors.status)
        return None

    def create(self, job: Job) -> Answer:
        """``POST /api/ai/jobs`` arriving now: 201 (job admitted), 429, 503 or refused."""
        now = self.env.now
        quiet = self.faults.quiet(now)  # the common case: skip every fault check
        if not quiet:
            faulty = self._fault_answer(now)
            if faulty is not None:
                return faulty
        if self.spec.rate_limit is not None and self._rate_limited(now):
            return answer(429, self.spec.rate_limit.retry_after_s)
        if not quiet and self.faults.active(_STORE_OUTAGE, now) is not None:
            if self.spec.store_on_outage is _FAIL:
                return answer(503, self.spec.retry_after_s)
            job.degraded = True
            self.degraded_accepts += 1
        if self.busy < self.capacity():
            job.accepted_s = now
            self.admitted_work_s += job.service_s
            self._start(job, now)
            return ACCEPTED
        if len(self.queue) < self.spec.queue_limit:
            job.accepted_s = now
            self.admitted_work_s += job.service_s
            self.queue.append(job)
            return ACCEPTED
        return answer(503, self.spec.retry_after_s)

    def call(self, job: Job) -> Answer | None:
        """A synchronous call arriving now: an immediate refusal, or None when the work
        was admitted (``job.on_done`` fires when it is done, whoever still waits)."""
        reply = self.create(job)
        return None if reply is ACCEPTED else reply

    def settled(self, at_s: float, stream: bool) -> Answer | None:
        """The answer a request reaching the service at ``at_s`` gets when the fault
        timeline alone decides it (an outage; a stream connect while nothing else is
        wrong): such an arrival changes no state and draws nothing, so the client can
        know its answer when it sends, and the arrival needs no event of its own. None:
        the answer depends on the service's state at ``at_s``: it must arrive then.
        ``stream``: a ``GET .../stream``; otherwise a ``POST``."""
        faults = self.faults
        if faults.quiet(at_s):
            return OK if stream else None
        outage = self._outage_answer(at_s)
        if outage is not None:
            return outage
        if stream and faults.active(_ERRORS, at_s) is None:
            return OK  # what connect_stream answers: no fault of its kinds is active
        return None

    def on_create(self, arrival: simpy.Event) -> None:
        """A ``POST`` reaches the service: the arrival event's value is its Job, which
        keeps the answer for the client."""
        job: Job = arrival._value
        job.answer = self.create(job)

    def on_connect(self, arrival: simpy.Event) -> None:
        """A ``GET .../stream`` for the arrival event's Job reaches the service."""
        job: Job = arrival._value
        job.answer = self.connect_stream()

    def connect_stream(self) -> Answer:
        """``GET /api/ai/jobs/{id}/stream`` arriving now: 200, or the fault's answer (the
        job is known to the service whatever its state)."""
        now = self.env.now
        if self.faults.quiet(now):
            return OK
        faulty = self._fault_answer(now)
        return OK if faulty is None else faulty

    # ------------------------------------------------------------------ work

    def _start(self, job: Job, now_s: float) -> None:
        self.busy += 1
        job.started_s = now_s
        self.queue_wait_s.append(now_s - job.accepted_s)
        call_after(self.env, job.service_s, job, self._finish)

    def _finish(self, event: simpy.events.Event) -> None:
        job: Job = event._value  # the Job it was scheduled with (a Timeout value)
        job.finished_s = self.env.now
        self.busy -= 1
        self._drain()
        job.on_done(job)

    def _drain(self) -> None:
        if not self.queue:
            return
        cap, now = self.capacity(), self.env.now
        while self.queue and self.busy < cap:
            self._start(self.queue.popleft(), now)
