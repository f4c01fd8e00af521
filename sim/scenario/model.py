"""The typed, frozen form of a scenario file. Nothing downstream sees raw dicts.

Defaults live in the grammar (``sim/scenario/schema.py``), not here: every field
below is set by the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from sim.distributions import Distribution
from sim.frozen import frozen
from sim.policies.policy import Policy

if TYPE_CHECKING:
    from sim.decide.objective import Objective

# ------------------------------------------------------------------ clients


@frozen
class Burst:
    """All clients arrive at ``at_s``, spread uniformly over ``spread_s`` (0: one instant)."""

    at_s: float
    spread_s: float


@frozen
class RateStep:
    """From ``from_s`` on (until the next step), arrivals come at ``rate_per_s``."""

    from_s: float
    rate_per_s: float


@frozen
class Poisson:
    """An open-loop Poisson source whose rate follows a step schedule."""

    schedule: tuple[RateStep, ...]

    def rate_at(self, t_s: float) -> float:
        rate = 0.0
        for step in self.schedule:
            if step.from_s <= t_s:
                rate = step.rate_per_s
        return rate


@frozen
class Ramp:
    """A Poisson source whose rate moves linearly from one value to another."""

    start_s: float
    end_s: float
    from_rate_per_s: float
    to_rate_per_s: float

    def rate_at(self, t_s: float) -> float:
        if t_s < self.start_s or t_s >= self.end_s:
            return 0.0
        frac = (t_s - self.start_s) / (self.end_s - self.start_s)
        return self.from_rate_per_s + frac * (self.to_rate_per_s - self.from_rate_per_s)


@frozen
class ClosedLoop:
    """``count`` users, each submitting a job, waiting for its end, thinking, again."""

    think: Distribution


Arrival = Burst | Poisson | Ramp | ClosedLoop


class BudgetScope(StrEnum):
    CLIENT = "client"  # each client has its own budget and breaker
    SHARED = "shared"  # one budget and breaker for all clients (one frontend / library)


@frozen
class Clients:
    """Who calls the service: how many, how they arrive, how long they wait."""

    count: int | None  # burst / closed: how many; poisson / ramp: at most (None: no limit)
    arrival: Arrival
    job_timeout_s: float
    request_timeout_s: float
    follow_stream: bool
    budget_scope: BudgetScope
    browser: int = 0  # real mode: how many of the first clients are real Chromium pages


# ------------------------------------------------------------------ service


class ServiceKind(StrEnum):
    JOB = "job"  # POST creates a job (201 at once), an SSE stream follows it
    RPC = "rpc"  # one synchronous call: the answer comes when the work is done
    OCC = "occ"  # the 2015 optimistic-concurrency experiment


class StoreOnOutage(StrEnum):
    DEGRADE = "degrade"  # accept the job, keep state elsewhere (the seed's behaviour)
    FAIL = "fail"  # answer 503


@frozen
class RateLimit:
    """A token bucket in front of the service: over it, 429 (with Retry-After if set)."""

    rate_per_s: float
    burst: int
    retry_after_s: float | None


@frozen
class Autoscale:
    """Cloud Run style: add instances while busy, each ready after a cold start."""

    max_instances: int
    cold_start_s: float
    target_utilization: float
    interval_s: float


@frozen
class Service:
    """The service the clients call: its kind, capacity, queue and answers."""

    kind: ServiceKind
    instances: int
    concurrency: int  # requests one instance serves at once
    queue_limit: int  # waiting requests beyond busy slots; over it: 503
    service_time: Distribution
    retry_after_s: float | None  # Retry-After on the 503 of a full queue
    rate_limit: RateLimit | None
    autoscale: Autoscale | None
    progress_events: int  # SSE progress events per job, spread over its service time
    store_on_outage: StoreOnOutage
    stream_retry_s: float | None  # the SSE `retry:` hint the server sends

    @property
    def capacity_per_s(self) -> float:
        """Jobs per second the initial instances can finish (mean service time)."""
        return self.instances * self.concurrency / self.service_time.mean_s


@frozen
class Network:
    """The network between clients and service."""

    latency: Distribution  # one way, per message


# ------------------------------------------------------------------ faults


class FaultKind(StrEnum):
    OUTAGE = "outage"
    LATENCY_SPIKE = "latency_spike"
    LOSS = "loss"
    RESET = "reset"
    REFUSE = "refuse"
    PARTITION = "partition"
    STREAM_DROP = "stream_drop"
    STORE_OUTAGE = "store_outage"
    CAPACITY_DROP = "capacity_drop"
    ERRORS = "errors"


class OutageAnswer(StrEnum):
    STATUS_503 = "503"
    REFUSE = "refuse"


@frozen
class Fault:
    """A time window ``[start_s, end_s)`` in which something goes wrong.

    Which fields matter depends on ``kind``:
    outage (``answer``, ``retry_after_s``), latency_spike (``extra_latency``),
    loss / reset / refuse / errors (``probability``; errors also ``status``),
    stream_drop (``fraction``, ``every_s``), capacity_drop (``instances``);
    partition and store_outage need only the window.
    """

    kind: FaultKind
    start_s: float
    end_s: float
    answer: OutageAnswer = OutageAnswer.STATUS_503
    retry_after_s: float | None = None
    extra_latency: Distribution | None = None
    probability: float = 1.0
    status: int = 500
    fraction: float = 1.0
    every_s: float | None = None
    instances: int = 0

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s

    def describe(self) -> str:
        detail = {
            FaultKind.OUTAGE: f"answers {self.answer.value}",
            FaultKind.LATENCY_SPIKE: (
                f"+{self.extra_latency.describe()}" if self.extra_latency else ""
            ),
            FaultKind.LOSS: f"p={self.probability:g}",
            FaultKind.RESET: f"p={self.probability:g}",
            FaultKind.REFUSE: f"p={self.probability:g}",
            FaultKind.ERRORS: f"{self.status} p={self.probability:g}",
            FaultKind.STREAM_DROP: f"{self.fraction:.0%} of streams"
            + (f" every {self.every_s:g} s" if self.every_s else ""),
            FaultKind.CAPACITY_DROP: f"down to {self.instances} instance(s)",
        }.get(self.kind, "")
        return f"{self.kind.value} {self.start_s:g}-{self.end_s:g} s {detail}".strip()


# ------------------------------------------------------------------ expectations, scenario


@frozen
class Relative:
    """A bound taken from another policy's figure in the same run.

    ``at_least``: the figure must be ``>= other x times + by``;
    ``at_most``: the figure must be ``<= other x times - by``.
    """

    other: str
    direction: Literal["at_least", "at_most"]
    by: float = 0.0
    times: float = 1.0

    def threshold(self, other_value: float) -> float:
        if self.direction == "at_least":
            return other_value * self.times + self.by
        return other_value * self.times - self.by

    def describe(self) -> str:
        op = ">=" if self.direction == "at_least" else "<="
        text = self.other if self.times == 1 else f"{self.times:g} x {self.other}"
        if self.by:
            text += f" {'+' if self.direction == 'at_least' else '-'} {self.by:g}"
        return f"{op} {text}"


@frozen
class Expectation:
    """``metric`` of each policy in ``policies`` (every policy when None) must lie within
    ``[min, max]``, or relative to another policy's ``metric`` (``relative``); checked in
    runs of ``mode`` only (both when None). ``line`` is where it stands in the file."""

    metric: str
    policies: tuple[str, ...] | None
    min: float | None
    max: float | None
    line: int
    relative: Relative | None = None
    mode: Literal["sim", "real"] | None = None

    def applies_to(self, policy: str) -> bool:
        return self.policies is None or policy in self.policies

    def describe(self) -> str:
        """The bound as written: ``>= 0.99``, ``0 <= x <= 1``, ``<= 0.25 x exponential``."""
        if self.relative is not None:
            return self.relative.describe()
        if self.min is not None and self.max is not None:
            if self.min == self.max:
                return f"== {self.min:g}"
            return f"{self.min:g} <= x <= {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        return f"<= {self.max:g}"


#: how much longer than a policy's range a client's wait may be (timers fire late on a
#: loaded machine): the default of ``herdlab verify-client --late-slack`` and of a
#: ``kind: client`` expectation's ``late_slack_s``
DEFAULT_LATE_SLACK_S = 0.25


@frozen
class ClientExpectation:
    """``kind: client``: the client ``herdlab lab`` recorded (``client``, or the one that
    named itself when None) keeps ``policy`` (a policy of the scenario), every rule of
    ``herdlab verify-client``. ``line`` is where it stands in the file."""

    policy: Policy
    client: str | None
    late_slack_s: float
    line: int

    def describe(self) -> str:
        who = "the client" if self.client is None else f"client {self.client}"
        return f"{who} keeps {self.policy.name}"


@frozen
class Tolerance:
    """How much worse than a baseline a figure may get: ``amount`` in the figure's unit,
    or, when ``relative``, that fraction of the baseline's value."""

    amount: float
    relative: bool

    @classmethod
    def parse(cls, text: str | float) -> Tolerance:
        """``0.01`` (absolute) or ``"5%"`` (relative); ValueError otherwise."""
        if isinstance(text, str):
            t = text.strip()
            if not t.endswith("%"):
                raise ValueError(f"{text!r} is not a number or a percentage like 5%")
            pct = float(t[:-1])
            if not (pct >= 0 and pct != float("inf")):
                raise ValueError(f"{text!r}: a percentage must be >= 0")
            return cls(pct / 100.0, True)
        if not (text >= 0 and text != float("inf")):
            raise ValueError(f"{text!r}: a tolerance must be >= 0")
        return cls(float(text), False)

    def allowed(self, baseline: float) -> float:
        """How far from ``baseline`` (in the worse direction) a value may lie."""
        return abs(baseline) * self.amount if self.relative else self.amount

    def __str__(self) -> str:
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


@frozen
class Fidelity:
    """How far a real run may lie from the simulation of the same scenario, per figure
    (``herdlab run --mode both``). ``success_rate_pp`` is absolute, in percentage points;
    the others are relative to the simulated value (0.15: within 15%). These defaults are
    the grammar's defaults (``sim/scenario/schema.py`` reads them from here). ``scale``
    is not a tolerance: the scale ``herdlab check --mode both`` runs the scenario at when
    no ``--scale`` is given (one both sides can run on the machine at hand)."""

    success_rate_pp: float = 2.0
    attempts_per_job: float = 0.10
    completion_p50: float = 0.15
    completion_p95: float = 0.15
    peak_offered: float = 0.15
    recovery: float = 0.15
    scale: float = 1.0


@frozen
class Scenario:
    """One scenario file, checked and built: everything a run needs."""

    name: str
    description: str
    seed: int
    duration_s: float
    bucket_s: float
    clients: Clients
    service: Service
    network: Network
    faults: tuple[Fault, ...]
    policies: tuple[Policy, ...]
    expect: tuple[Expectation, ...]
    tolerances: Mapping[str, Tolerance]  # per figure, for comparisons with a baseline
    source: str  # the file it came from
    sha256: str  # of the file's bytes, for provenance
    peak_window_s: float = 1.0  # the sliding window peak offered load is measured over
    objective: Objective | None = None  # what ranks the policies (None: the default)
    fidelity: Fidelity = Fidelity()  # tolerances of sim against real
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    """The line of every key in the file (``clients.count`` -> 4), for messages."""
    client_expect: tuple[ClientExpectation, ...] = ()  # checked by herdlab lab only

    def policy(self, name: str) -> Policy:
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(f"scenario {self.name!r} has no policy {name!r}")
