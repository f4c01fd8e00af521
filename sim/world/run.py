"""Run one policy of a scenario in the SimPy world, or all of them with replications."""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import simpy

from sim.cost import jobs_upper
from sim.policies.backoff import BlockDraws
from sim.policies.breaker import CircuitBreaker
from sim.policies.budget import RetryBudget
from sim.policies.policy import Policy
from sim.scenario.model import BudgetScope, ClosedLoop, FaultKind, Scenario, ServiceKind
from sim.world.arrivals import arrival_times_s
from sim.world.calendar import CalendarEnvironment, bucket_for
from sim.world.client import Deadlines, JobClient, rpc_client
from sim.world.events import ClientGen, Lane, Task, Timer, Wake, call_after
from sim.world.faults import FaultTimeline
from sim.world.metrics import GAUGES, Recorder
from sim.world.network import SimNetwork
from sim.world.occ import OccClient, Row
from sim.world.rng import Streams
from sim.world.service import JobService

Progress = Callable[[str], None]
#: starts a client from its job index, its service time and what runs once it has ended
ClientStart = Callable[[int, float, Callable[[], None]], object]


EVENTS_PER_JOB = 8.0
"""SimPy events a job makes, roughly (thundering-herd: 7 a client): sizes the calendar."""


def calendar_bucket_s(scenario: Scenario) -> float:
    """The event calendar's bucket width for ``scenario``: a few hundred events a bucket
    on average. It moves only the cost of a run, never its events or their order."""
    jobs = jobs_upper(scenario)
    if not math.isfinite(jobs):
        return 1e-3
    return bucket_for(EVENTS_PER_JOB * jobs / scenario.duration_s)


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Run without the cyclic garbage collector. A run allocates millions of short-lived
    objects; with the collector on, it scans them over and over (10-30% of run time).
    The world makes no reference cycle per client (a test holds it to that), so
    reference counting frees everything as it goes and memory stays flat."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class World:
    """Everything one policy run shares: clock, streams, network, service, recorder."""

    def __init__(
        self, scenario: Scenario, policy: Policy, streams: Streams, gauges: bool = True
    ) -> None:
        """``gauges``: sample the gauges at every bucket's end (the time series); without,
        ``rec.gauges`` is left empty, and reading one fails."""
        self.scenario = scenario
        self.gauges = gauges
        self.policy = policy
        self.streams = streams
        self.env = CalendarEnvironment(calendar_bucket_s(scenario))
        self.faults = FaultTimeline(scenario.faults)
        c = scenario.clients
        self.horizon_s = scenario.duration_s + c.job_timeout_s + c.request_timeout_s + 1.0
        self.rec = Recorder(self.horizon_s, scenario.bucket_s)
        self.network = SimNetwork(scenario.network, self.faults, streams.network)
        self.service = JobService(self.env, scenario.service, self.faults, streams.service)
        self.request_timeout_s = c.request_timeout_s
        self.job_timeout_s = c.job_timeout_s
        self.follow_stream = c.follow_stream
        self.progress_events = max(1, scenario.service.progress_events)
        self.stream_retry_s = scenario.service.stream_retry_s
        self.open_streams: dict[int, JobClient] = {}
        self.deadlines = Deadlines(self.env)
        self.sampled: dict[str, array[int]] = {}  # gauges, filled by _sample
        self.concurrency = max(1, scenario.service.concurrency)  # slots per instance
        self.policy_draws = BlockDraws(streams.policy)  # every policy draw of the run
        # a policy without budget or breaker has no state: every client shares the None pair
        self.shared = c.budget_scope is BudgetScope.SHARED or (
            policy.retry.budget is None and policy.retry.breaker is None
        )
        self._shared_state = policy.retry.new_state()
        self.active_clients = 0
        self.arrivals_done = False
        self.all_done = self.env.event()
        self._arrivals: Iterator[tuple[float, float]] = iter(())  # open-loop ones to come
        self.lane: Lane | None = None  # the OCC clients' messages, run between SimPy's events
        self._client = self._client_kind(scenario.service.kind)

    def _client_kind(self, kind: ServiceKind) -> ClientStart:
        """How a client of ``kind`` is started from its job index and service time;
        ``on_end`` runs once it has ended (an open-loop arrival counts it down, a
        closed-loop user goes on to think)."""
        if kind is ServiceKind.OCC:
            row, lane = Row(), Lane(self.env)  # the one contended row of this run
            self.lane = lane
            return lambda index, _service_s, on_end: OccClient(self, index, row, lane, on_end)
        if kind is ServiceKind.RPC:
            return lambda index, service_s, on_end: Task(
                self.env, rpc_client(self, index, service_s), on_end
            )
        return lambda index, service_s, on_end: JobClient(self, index, service_s, on_end)

    def budget_and_breaker(self) -> tuple[RetryBudget | None, CircuitBreaker | None]:
        """The shared budget and breaker, or fresh ones for a new client."""
        return self._shared_state if self.shared else self.policy.retry.new_state()

    # ------------------------------------------------------------------ processes

    def _client_done(self) -> None:
        self.active_clients -= 1
        self._end_if_all_done()

    def _end_if_all_done(self) -> None:
        """Every client has arrived and ended: the run is over."""
        if self.active_clients == 0 and self.arrivals_done and not self.all_done.triggered:
            self.all_done.succeed()

    def _spawn(self, gen: ClientGen) -> None:
        """Start a generator client, counted from now (not from its first step)."""
        self.active_clients += 1
        Task(self.env, gen, self._client_done)

    def _start(self, index: int, service_s: float) -> None:
        """Start an open-loop arrival's client, counted from now (not from its first step)."""
        self.active_clients += 1
        self._client(index, service_s, self._client_done)

    def _open_loop(self, times_s: np.ndarray, service_s: np.ndarray) -> None:
        """Start a client at each arrival instant, from now on: one timer is pending at a
        time, for the next arrival (not a timer per client in the event queue)."""
        # Converted to Python floats a chunk at a time as the arrivals come, not all up
        # front: two lists of 10 million floats would hold 640 MB for the whole run.
        chunk = 65_536
        self._arrivals = itertools.chain.from_iterable(
            zip(times_s[i : i + chunk].tolist(), service_s[i : i + chunk].tolist(), strict=True)
            for i in range(0, len(times_s), chunk)
        )
        self._arrive(None)

    def _arrive(self, timer: Timer | None) -> None:
        """The arrival ``timer`` was set for is now (its value: the client's service
        time): start that client and every other one due now, and set the next timer."""
        env, rec = self.env, self.rec
        now = env.now
        if timer is not None:
            self._start(rec.new_job(now), timer._value)
        for t, s in self._arrivals:
            if t > now:
                call_after(env, t - now, s, self._arrive)
                return
            self._start(rec.new_job(now), s)
        self.arrivals_done = True
        self._end_if_all_done()

    def _closed_loop_user(self, start_s: float, think: ClosedLoop) -> ClientGen:
        env = self.env
        yield env.timeout(start_s)
        while env.now < self.scenario.duration_s:
            index = self.rec.new_job(env.now)
            service_s = self.scenario.service.service_time.sample_s(self.streams.service)
            ended = Wake()
            self._client(index, service_s, ended.wake)  # of the scenario's service kind
            if ended.callbacks is not None:  # it may end at once, before it waits for anything
                yield ended
            yield env.timeout(think.think.sample_s(self.streams.think))

    def _closed_loop(self, starts_s: np.ndarray, think: ClosedLoop) -> None:
        for s in starts_s:
            self._spawn(self._closed_loop_user(s, think))
        self.arrivals_done = True

    def _start_sampling(self) -> None:
        """Sample the gauges at the end of every bucket: one timer pending at a time."""
        # typed arrays while running (numpy item assignment is slow); run() copies each
        # over as one buffer (see Recorder)
        zeros = bytes(8 * self.rec.n)
        self.sampled = {name: array("q", zeros) for name in GAUGES}
        call_after(self.env, self.scenario.bucket_s, 0, self._sample)

    def _sample(self, timer: Timer) -> None:
        """Bucket ``timer._value`` ends now: record every gauge in it; on to the next."""
        rec, svc, s = self.rec, self.service, self.sampled
        b = timer._value
        s["in_flight"][b] = rec.in_flight
        s["queue_length"][b] = len(svc.queue)
        s["busy_slots"][b] = svc.busy
        s["active_instances"][b] = svc.capacity() // self.concurrency
        s["clients_connected"][b] = rec.connected
        s["clients_reconnecting"][b] = rec.reconnecting
        s["clients_disconnected"][b] = rec.disconnected
        s["clients_backing_off"][b] = rec.backing_off
        if b + 1 < rec.n:
            call_after(self.env, self.scenario.bucket_s, b + 1, self._sample)

    def _stream_drops(self) -> simpy.events.ProcessGenerator:
        env, rng = self.env, self.streams.faults
        drops = sorted(
            (f for f in self.scenario.faults if f.kind is FaultKind.STREAM_DROP),
            key=lambda f: f.start_s,
        )
        times: list[tuple[float, float]] = []
        for f in drops:
            t = f.start_s
            while t < f.end_s:
                times.append((t, f.fraction))
                if f.every_s is None:
                    break
                t += f.every_s
        for t, fraction in sorted(times):
            if t > env.now:
                yield env.timeout(t - env.now)
            for index, wait in list(self.open_streams.items()):
                if fraction >= 1.0 or rng.random() < fraction:
                    wait.stream_cut()
                    self.open_streams.pop(index, None)

    def _capacity_restores(self) -> simpy.events.ProcessGenerator:
        ends = sorted(f.end_s for f in self.scenario.faults if f.kind is FaultKind.CAPACITY_DROP)
        for t in ends:
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            self.service._drain()

    def _progress(self, report: Progress, label: str) -> simpy.events.ProcessGenerator:
        step = self.scenario.duration_s / 10
        for i in range(1, 11):
            yield self.env.timeout(step)
            report(f"{label}: {i * 10}% of {self.scenario.duration_s:g} s simulated")

    # ------------------------------------------------------------------ run

    def run(self, progress: Progress | None = None, label: str = "") -> Recorder:
        env, sc = self.env, self.scenario
        times = arrival_times_s(sc, self.streams.arrivals)
        if isinstance(sc.clients.arrival, ClosedLoop):
            self._closed_loop(times, sc.clients.arrival)
        else:
            service_s = sc.service.service_time.samples_s(self.streams.service, len(times))
            self._open_loop(times, service_s)
        if self.gauges:
            self._start_sampling()
        else:
            self.rec.gauges.clear()
        env.process(self._stream_drops())
        env.process(self._capacity_restores())
        if progress is not None:
            env.process(self._progress(progress, label))
        deadline = env.timeout(self.horizon_s)
        with no_cyclic_gc():
            if self.lane is not None:
                self.lane.run(until=self.all_done | deadline)
            else:
                env.run(until=self.all_done | deadline)
            # Let go of the clients still watched (ended ones wait there for their
            # deadline) before the collector is back: freed now by reference counting,
            # they are not in its first young-generation pass.
            self.deadlines.clear()
        for name, values in self.sampled.items():
            self.rec.gauges[name][:] = np.frombuffer(values, dtype=np.int64)
        self.rec.close(env.now)
        self.rec.degraded_accepts = self.service.degraded_accepts
        self.rec.admitted_work_s = self.service.admitted_work_s
        self.rec.queue_wait_s = self.service.queue_wait_s
        return self.rec


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """The recorder of one policy in one replication."""

    policy: Policy
    replication: int
    recorder: Recorder


def run_policy(
    scenario: Scenario,
    policy: Policy,
    seed: int | None = None,
    replication: int = 0,
    progress: Progress | None = None,
    gauges: bool = True,
) -> PolicyRun:
    """Simulate ``policy`` in ``scenario``; the same seed gives the same numbers.
    ``gauges``: sample the gauges (see :class:`World`); they change no other figure."""
    streams = Streams.from_seed(scenario.seed if seed is None else seed, replication)
    with no_cyclic_gc():
        world = World(scenario, policy, streams, gauges)
        rec = world.run(progress, f"{policy.name} (replication {replication + 1})")
        # A SimPy environment with events still queued (timers past the end, suspended
        # processes) is a reference cycle, and the run made it with the cyclic GC off.
        # Free it now, while it is young and cheap to collect (a few ms), not at some
        # later full collection: otherwise every run would hold its memory until then.
        # Collected before the collector is back on, which would otherwise scan the
        # run's young objects once more on its own first.
        del world
        gc.collect(1)
    return PolicyRun(policy, replication, rec)
