"""What a scenario will cost to simulate, worked out before it runs.

Every value of a scenario has its own bound (``sim/scenario/schema.py``); this module
bounds their product: how many jobs and requests a run makes, how many buckets and
timer ticks it keeps, hence its memory and its time. The figures are estimates
that lean high (upper bounds where one is cheap to have): a client is assumed to
use every attempt its policy allows within its deadline, spaced by the mean backoff
delay plus a round trip, and every stream cut to reach every job.

``herdlab run`` refuses a scenario whose estimate exceeds the machine (memory
available now, a time ceiling) and names the knob to turn, unless told ``--force``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.policies.backoff import Backoff, Jitter
from sim.policies.policy import Policy
from sim.scenario import model as m

# Calibrated on this project's 2-core VM (measured seconds per unit; see the README's
# scenario section). Requests: thundering-herd makes ~3.1 requests a client and costs,
# all in, 54-84 us a client at 100,000 clients (17-27 us a request; this VM's speed
# moves by a third between runs), 86-98 at 1,000,000 and 120 at 10,000,000 (39 us a
# request; docs/performance.md). 25 us a request, with the estimate's upper count of
# requests, still leans high: the 10,000,000-client herd was estimated at 49 minutes
# and took 20.
SECONDS_PER_REQUEST = 25e-6
"""One HTTP request (create, stream connect, RPC or OCC try) and its events."""
SECONDS_PER_JOB = 20e-6
"""A job's arrival, records and CSV row."""
SECONDS_PER_TICK = 5e-6
"""A timer that is not a request: bucket samples, autoscaler ticks, stream cuts."""
SECONDS_PER_FAULT_PAIR = 2e-7
"""The fault timeline rescans its faults at each of their edges: faults^2."""

BASE_BYTES = 80e6
"""The interpreter with numpy and SimPy, before a run."""
BYTES_PER_JOB = 1_000.0
"""Per-job records, the arrival arrays, the job's client while alive, its CSV row
(measured 600-800 bytes: 100,000 clients peak at 103-105 MB)."""
BYTES_PER_BUCKET = 600.0
"""Counters and gauges (as lists, then arrays) and the time-series CSV row."""
BYTES_PER_STREAM_CUT = 80.0

TIME_CEILING_S = 3600.0
"""The longest a run may take, estimated, before ``run`` asks for ``--force``."""
MEMORY_SHARE = 0.8
"""The share of MemAvailable a run may take."""


@dataclass(frozen=True, slots=True)
class Knob:
    """A setting that drives a cost, where it is in the file, and which way to turn it."""

    path: str
    value: str
    advice: str


@dataclass(frozen=True, slots=True)
class PolicyCost:
    """One policy's run."""

    policy: str
    jobs: float
    requests_per_job: float
    requests: float
    ticks: float
    memory_bytes: float
    seconds: float


@dataclass(frozen=True, slots=True)
class Cost:
    """The estimate for a whole ``run``: every policy, every replication."""

    runs: int
    buckets: int
    jobs: float
    policies: tuple[PolicyCost, ...]
    memory_bytes: float  # the peak of one run: runs go one after another
    seconds: float  # all runs
    jobs_knob: Knob
    requests_knob: Knob | None  # the policy setting behind the costliest policy's requests

    @property
    def requests(self) -> float:
        """Requests of the costliest policy's run."""
        return max((p.requests for p in self.policies), default=0.0)

    def describe(self) -> str:
        """One line: the figures a user weighs."""
        return (
            f"~{_count(self.jobs)} jobs, up to ~{_count(self.requests)} requests per run,"
            f" {self.buckets:,} buckets, {self.runs} run(s): ~{_bytes(self.memory_bytes)}"
            f" peak memory, ~{_seconds(self.seconds)}"
        ).replace("~unbounded", "unbounded")


@dataclass(frozen=True, slots=True)
class Limits:
    """What the machine allows."""

    memory_bytes: float
    seconds: float = TIME_CEILING_S
    memory_source: str = "the memory limit"

    @classmethod
    def of_this_machine(cls, seconds: float = TIME_CEILING_S) -> Limits:
        """MemAvailable from /proc/meminfo (unknown: no memory limit), and ``seconds``."""
        return cls(
            available_memory_bytes() * MEMORY_SHARE,
            seconds,
            f"{MEMORY_SHARE:.0%} of the memory available now",
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a run would exceed the machine, and the knob to turn."""

    knob: Knob
    message: str


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> float:
    """MemAvailable, in bytes; infinite when the file cannot be read (not Linux)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return math.inf


# ---------------------------------------------------------------- the estimate


def estimate(scenario: m.Scenario, policies: Sequence[Policy], replications: int = 1) -> Cost:
    """The cost of simulating ``policies`` in ``scenario`` ``replications`` times."""
    c, svc = scenario.clients, scenario.service
    horizon_s = scenario.duration_s + c.job_timeout_s + c.request_timeout_s + 1.0
    buckets = math.ceil(horizon_s / scenario.bucket_s) + 1
    jobs, jobs_knob = _jobs(scenario)
    cuts_total = _stream_cuts(scenario.faults, math.inf)
    ticks = float(buckets) + cuts_total
    if svc.autoscale is not None:
        ticks += horizon_s / svc.autoscale.interval_s
    fault_s = SECONDS_PER_FAULT_PAIR * len(scenario.faults) ** 2
    per_policy = []
    for policy in policies:
        per_job = requests_per_job(scenario, policy)
        requests = jobs * per_job
        memory = BASE_BYTES + jobs * BYTES_PER_JOB + buckets * BYTES_PER_BUCKET
        memory += cuts_total * BYTES_PER_STREAM_CUT
        seconds = (
            requests * SECONDS_PER_REQUEST
            + jobs * SECONDS_PER_JOB
            + ticks * SECONDS_PER_TICK
            + fault_s
        ) * replications
        per_policy.append(PolicyCost(policy.name, jobs, per_job, requests, ticks, memory, seconds))
    costliest = max(per_policy, key=lambda p: p.requests_per_job, default=None)
    requests_knob = None
    if costliest is not None:
        requests_knob = _requests_knob(scenario, policies, costliest.policy)
    return Cost(
        runs=len(per_policy) * replications,
        buckets=buckets,
        jobs=jobs,
        policies=tuple(per_policy),
        memory_bytes=max((p.memory_bytes for p in per_policy), default=BASE_BYTES),
        seconds=sum(p.seconds for p in per_policy),
        jobs_knob=jobs_knob,
        requests_knob=requests_knob,
    )


def refusals(cost: Cost, limits: Limits) -> list[Refusal]:
    """What in ``cost`` exceeds ``limits``, each with the knob that drives it."""
    out: list[Refusal] = []
    if cost.memory_bytes > limits.memory_bytes:
        per_job = cost.jobs * BYTES_PER_JOB
        per_bucket = cost.buckets * BYTES_PER_BUCKET
        knob = (
            cost.jobs_knob
            if per_job >= per_bucket
            else Knob("bucket_s", f"{cost.buckets:,} buckets", "raise bucket_s")
        )
        out.append(
            _refusal(
                knob,
                f"{knob.value} -> ~{_bytes(cost.memory_bytes)} peak memory, more than"
                f" {_bytes(limits.memory_bytes)} ({limits.memory_source}): {knob.advice}",
            )
        )
    if cost.seconds > limits.seconds:
        worst = max(cost.policies, key=lambda p: p.seconds)
        knob = cost.jobs_knob
        if cost.requests_knob is not None and worst.requests_per_job > 20:
            knob = cost.requests_knob
        elif worst.ticks * SECONDS_PER_TICK > worst.requests * SECONDS_PER_REQUEST:
            knob = Knob(
                "bucket_s",
                f"{worst.ticks:,.0f} timer ticks",
                "raise bucket_s, service.autoscale.interval_s or faults[].every_s",
            )
        runs = f" x {cost.runs} runs" if cost.runs > 1 else ""
        out.append(
            _refusal(
                knob,
                f"{knob.value} -> ~{_count(worst.requests)} requests per run{runs},"
                f" ~{_seconds(cost.seconds)}, over the ceiling of {_seconds(limits.seconds)}:"
                f" {knob.advice}"
                + (" (or fewer --policy / --replications)" if cost.runs > 1 else ""),
            )
        )
    return out


def _refusal(knob: Knob, message: str) -> Refusal:
    return Refusal(knob, message.replace("~unbounded", "unbounded"))


# ---------------------------------------------------------------- parts


def jobs_upper(scenario: m.Scenario) -> float:
    """Jobs one run makes, an upper estimate (inf: no bound, a closed loop without think)."""
    return _jobs(scenario)[0]


def _jobs(scenario: m.Scenario) -> tuple[float, Knob]:
    """Jobs one run makes (an upper estimate) and the knob that sets them."""
    c = scenario.clients
    arrival = c.arrival
    count = math.inf if c.count is None else float(c.count)
    if isinstance(arrival, m.Burst):
        return count, Knob("clients.count", f"{c.count:,} clients", "lower clients.count")
    if isinstance(arrival, m.ClosedLoop):
        # each user makes a job per cycle: think, then at least a round trip
        cycle_s = arrival.think.mean_s + 2 * scenario.network.latency.mean_s
        cycles = math.inf if cycle_s <= 0 else 1 + scenario.duration_s / cycle_s
        return count * cycles, Knob(
            "clients.arrival.think",
            f"{c.count:,} users x ~{_count(cycles)} cycles each",
            "raise the think time or lower clients.count",
        )
    if isinstance(arrival, m.Poisson):
        mean = 0.0
        steps = arrival.schedule
        for i, step in enumerate(steps):
            end_s = min(
                steps[i + 1].from_s if i + 1 < len(steps) else scenario.duration_s,
                scenario.duration_s,
            )
            mean += step.rate_per_s * max(0.0, end_s - step.from_s)
        path = "clients.arrival.schedule"
    else:
        assert isinstance(arrival, m.Ramp)
        mean = (
            (arrival.from_rate_per_s + arrival.to_rate_per_s)
            / 2
            * (arrival.end_s - arrival.start_s)
        )
        path = "clients.arrival"
    # a Poisson count exceeds mean + 6 sd about once in a billion
    high = mean + 6 * math.sqrt(mean) + 10
    if high <= count:
        return high, Knob(path, f"arrival rates (~{_count(mean)} arrivals)", "lower the rates")
    return count, Knob("clients.count", f"{c.count:,} clients", "lower clients.count")


def _stream_cuts(faults: Sequence[m.Fault], within_s: float) -> float:
    """Instants at which stream_drop faults cut streams, at most ``within_s`` apart from
    the first to the last (a job's lifetime; inf: the whole run)."""
    cuts = 0.0
    for f in faults:
        if f.kind is not m.FaultKind.STREAM_DROP:
            continue
        if f.every_s is None:
            cuts += 1
        else:
            span_s = min(f.end_s - f.start_s, within_s)
            cuts += math.floor(span_s / f.every_s) + 1
    return cuts


def requests_per_job(scenario: m.Scenario, policy: Policy) -> float:
    """Requests one job can make: every create attempt its retry policy allows within
    its deadline, then (following a stream) a connect, and per stream cut the
    reconnect attempts its reconnect policy allows."""
    c, svc = scenario.clients, scenario.service
    rtt_s = 2 * scenario.network.latency.mean_s
    lifetime_s = c.job_timeout_s
    retry = policy.retry
    create_lifetime_s = min(lifetime_s, retry.deadline_s or math.inf)
    per_try_s = 2 * rtt_s if svc.kind is m.ServiceKind.OCC else rtt_s
    creates = attempts_within(retry.backoff, retry.max_attempts, create_lifetime_s, per_try_s)
    if svc.kind is not m.ServiceKind.JOB or not c.follow_stream:
        return creates
    rc = policy.reconnect
    server_retry_s = svc.stream_retry_s if rc.honour_server_retry else None
    per_drop = attempts_within(
        rc.backoff, rc.max_attempts, lifetime_s, rtt_s, constant_delay_s=server_retry_s
    )
    drops = _stream_cuts(scenario.faults, lifetime_s) + 1  # + 1: a failed first connect
    return creates + 1 + drops * per_drop


def attempts_within(
    backoff: Backoff,
    max_attempts: int | None,
    lifetime_s: float,
    per_attempt_s: float,
    constant_delay_s: float | None = None,
) -> float:
    """Attempts that fit in ``lifetime_s``: each takes ``per_attempt_s`` and waits the
    backoff's mean delay before the next (``constant_delay_s`` instead, when set), up
    to ``max_attempts`` (None: no limit; inf when nothing makes time pass)."""
    limit = math.inf if max_attempts is None else float(max_attempts)
    if limit < 1:
        return limit
    t_s = per_attempt_s
    n = 1.0
    retry = 1
    while n < limit:
        delay_s = constant_delay_s if constant_delay_s is not None else mean_delay_s(backoff, retry)
        step_s = delay_s + per_attempt_s
        if retry >= 64 or step_s <= 0:
            # the curve is flat from here (at its cap, or constant): the rest in one step
            if step_s <= 0:
                return limit
            return min(limit, n + max(0.0, math.floor((lifetime_s - t_s) / step_s)))
        if t_s + step_s > lifetime_s:
            break
        t_s += step_s
        n += 1
        retry += 1
    return n


def mean_delay_s(backoff: Backoff, retry: int) -> float:
    """The mean delay before retry ``retry`` (a lower figure where the mean depends on
    earlier draws: decorrelated jitter's is taken as its floor, ``base_s``)."""
    v = backoff.value_s(retry)
    jitter = backoff.jitter
    if jitter is Jitter.FULL or jitter is Jitter.DECORRELATED_V2:
        return v / 2
    if jitter is Jitter.EQUAL:
        return 0.75 * v
    if jitter is Jitter.DECORRELATED:
        return min(backoff.base_s, backoff.cap_s)
    return v  # none; proportional jitter's mean is v


def _requests_knob(scenario: m.Scenario, policies: Sequence[Policy], name: str) -> Knob:
    index = next((i for i, p in enumerate(scenario.policies) if p.name == name), None)
    where = f"policies[{index}]" if index is not None else f"policy {name}"
    policy = next(p for p in policies if p.name == name)
    rc = policy.reconnect
    if scenario.clients.follow_stream and rc.max_attempts is None:
        return Knob(
            f"{where}.reconnect.max_attempts",
            f"{name}: unlimited reconnects",
            f"give {where}.reconnect.max_attempts or a longer reconnect backoff",
        )
    return Knob(
        f"{where}.retry.max_attempts",
        f"{name}: up to {policy.retry.max_attempts:,} attempts per job",
        f"lower {where}.retry.max_attempts or lengthen its backoff",
    )


def _count(n: float) -> str:
    if math.isinf(n):
        return "unbounded"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def _bytes(n: float) -> str:
    if math.isinf(n):
        return "unbounded"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def _seconds(s: float) -> str:
    if math.isinf(s):
        return "unbounded time"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    if s >= 60:
        return f"{s / 60:.3g} min"
    return f"{s:.2g} s"
