"""Run one policy of a scenario in the SimPy world, or all of them with replications."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import simpy

from sim.policies.backoff import BlockDraws
from sim.policies.breaker import CircuitBreaker
from sim.policies.budget import RetryBudget
from sim.policies.policy import Policy
from sim.scenario.model import BudgetScope, ClosedLoop, FaultKind, Scenario, ServiceKind
from sim.world.arrivals import arrival_times_s
from sim.world.client import Deadlines, Wait, job_client, rpc_client
from sim.world.faults import FaultTimeline
from sim.world.metrics import GAUGES, Recorder
from sim.world.network import SimNetwork
from sim.world.occ import Row, occ_client
from sim.world.rng import Streams
from sim.world.service import JobService

Progress = Callable[[str], None]


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


class _Start:
    """What a Task sends its generator first (as ``next`` would): nothing."""

    __slots__ = ()
    _value = None


_START = _Start()


class Task:
    """A client's generator driven straight from SimPy's event callbacks.

    ``simpy.Process`` does more than a client needs (interrupts, failure propagation,
    the active-process bookkeeping) and it is a third of the cost of each resume. A
    client here only ever waits for events that succeed, so this driver sends each
    event's value into the generator and hooks itself onto the next event it yields;
    ``on_end`` runs when the generator returns. An exception in a client propagates
    out of ``env.run``, as it would from a Process.
    """

    __slots__ = ("gen", "on_end")

    def __init__(
        self, gen: simpy.events.ProcessGenerator, on_end: Callable[[], None] | None = None
    ) -> None:
        """Run ``gen`` up to its first wait, now (a client arriving sends at once)."""
        self.gen = gen
        self.on_end = on_end
        self.resume(_START)

    def resume(self, event: simpy.Event | _Start) -> None:
        try:
            target = self.gen.send(event._value)
        except StopIteration:
            if self.on_end is not None:
                self.on_end()
            return
        callbacks: list[Callable[[simpy.Event], None]] | None = target.callbacks
        if callbacks is None:  # already processed: go on at once
            target.env.timeout(0, target._value).callbacks.append(self.resume)
        else:
            callbacks.append(self.resume)


class World:
    """Everything one policy run shares: clock, streams, network, service, recorder."""

    def __init__(self, scenario: Scenario, policy: Policy, streams: Streams) -> None:
        self.scenario = scenario
        self.policy = policy
        self.streams = streams
        self.env = simpy.Environment()
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
        self.open_streams: dict[int, Wait] = {}
        self.deadlines = Deadlines(self.env)
        self.sampled: dict[str, list[int]] = {}  # gauges, filled by the sampler
        self.policy_draws = BlockDraws(streams.policy)  # every policy draw of the run
        self.shared = c.budget_scope is BudgetScope.SHARED
        self._shared_state = policy.retry.new_state()
        self.active_clients = 0
        self.arrivals_done = False
        self.all_done = self.env.event()

    def budget_and_breaker(self) -> tuple[RetryBudget | None, CircuitBreaker | None]:
        """The shared budget and breaker, or fresh ones for a new client."""
        return self._shared_state if self.shared else self.policy.retry.new_state()

    # ------------------------------------------------------------------ processes

    def _client_done(self) -> None:
        self.active_clients -= 1
        if self.active_clients == 0 and self.arrivals_done and not self.all_done.triggered:
            self.all_done.succeed()

    def _spawn(self, gen: simpy.events.ProcessGenerator) -> None:
        """Start a client, counted from now (not from its first step)."""
        self.active_clients += 1
        Task(gen, self._client_done)

    def _open_loop(
        self, times_s: np.ndarray, service_s: np.ndarray
    ) -> simpy.events.ProcessGenerator:
        env = self.env
        row = Row()
        kind = self.scenario.service.kind
        for t, s in zip(times_s.tolist(), service_s.tolist(), strict=True):
            now = env.now
            if t > now:
                yield env.timeout(t - now)
                now = env.now
            index = self.rec.new_job(now)
            if kind is ServiceKind.OCC:
                body = occ_client(self, index, row)
            elif kind is ServiceKind.RPC:
                body = rpc_client(self, index, s)
            else:
                body = job_client(self, index, s)
            self._spawn(body)
        self.arrivals_done = True
        if self.active_clients == 0 and not self.all_done.triggered:
            self.all_done.succeed()

    def _closed_loop_user(self, start_s: float, think: ClosedLoop) -> simpy.events.ProcessGenerator:
        env = self.env
        yield env.timeout(start_s)
        while env.now < self.scenario.duration_s:
            index = self.rec.new_job(env.now)
            service_s = self.scenario.service.service_time.sample_s(self.streams.service)
            yield from job_client(self, index, service_s)
            yield env.timeout(think.think.sample_s(self.streams.think))

    def _closed_loop(self, starts_s: np.ndarray, think: ClosedLoop) -> None:
        for s in starts_s:
            self._spawn(self._closed_loop_user(s, think))
        self.arrivals_done = True

    def _sampler(self) -> simpy.events.ProcessGenerator:
        env, rec, svc = self.env, self.rec, self.service
        bucket_s = self.scenario.bucket_s
        concurrency = max(1, self.scenario.service.concurrency)
        # lists while running (numpy item assignment is slow); run() copies them over
        s = self.sampled = {name: [0] * rec.n for name in GAUGES}
        in_flight, queue, busy = s["in_flight"], s["queue_length"], s["busy_slots"]
        instances, connected = s["active_instances"], s["clients_connected"]
        reconnecting, disconnected = s["clients_reconnecting"], s["clients_disconnected"]
        for b in range(rec.n):
            yield env.timeout(bucket_s)
            in_flight[b] = rec.in_flight
            queue[b] = len(svc.queue)
            busy[b] = svc.busy
            instances[b] = svc.capacity() // concurrency
            connected[b] = rec.connected
            reconnecting[b] = rec.reconnecting
            disconnected[b] = rec.disconnected

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
            Task(self._open_loop(times, service_s))
        env.process(self._sampler())
        env.process(self._stream_drops())
        env.process(self._capacity_restores())
        if progress is not None:
            env.process(self._progress(progress, label))
        deadline = env.timeout(self.horizon_s)
        with no_cyclic_gc():
            env.run(until=self.all_done | deadline)
        self.deadlines.clear()
        for name, values in self.sampled.items():
            self.rec.gauges[name][:] = values
        self.rec.close(env.now)
        self.rec.degraded_accepts = self.service.degraded_accepts
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
) -> PolicyRun:
    """Simulate ``policy`` in ``scenario``; the same seed gives the same numbers."""
    streams = Streams.from_seed(scenario.seed if seed is None else seed, replication)
    world = World(scenario, policy, streams)
    rec = world.run(progress, f"{policy.name} (replication {replication + 1})")
    # A SimPy environment with events still queued (timers past the end, suspended
    # processes) is a reference cycle, and the run made it with the cyclic GC off. Free
    # it now, while it is young and cheap to collect (a few ms), not at some later full
    # collection: otherwise every run would hold its memory until then.
    del world
    gc.collect(1)
    return PolicyRun(policy, replication, rec)
