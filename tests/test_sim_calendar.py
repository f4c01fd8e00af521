"""The calendar environment processes SimPy's events in SimPy's order, whatever its
bucket width: a run on it is the same run, event for event."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import simpy

from sim.scenario import load_scenario
from sim.world import run as world_run
from sim.world.calendar import CalendarEnvironment, bucket_for
from sim.world.events import call_after

ROOT = Path(__file__).resolve().parent.parent
Trace = list[tuple[float, int]]


def _random_world(env: simpy.Environment, seed: int, events: int) -> Trace:
    """Events at random times, many at equal times and with both priorities, each of
    which may schedule more (now, in its own bucket, far later, never due); returns the
    order they were processed in."""
    rng = np.random.default_rng(seed)
    fired: Trace = []
    made = [0]

    def make(delay_s: float, urgent: bool) -> None:
        name = made[0]
        made[0] += 1
        event = env.event()
        event.callbacks.append(lambda _e: fired.append((env.now, name)))
        event.callbacks.append(lambda _e: spawn())
        event._ok, event._value = True, None
        env.schedule(event, simpy.events.URGENT if urgent else simpy.events.NORMAL, delay_s)

    def spawn() -> None:
        if made[0] >= events:
            return
        for _ in range(int(rng.integers(1, 3))):  # grows until ``events`` are made
            kind = rng.integers(0, 5)
            if kind == 0:
                delay_s = 0.0  # the same instant
            elif kind == 1:
                delay_s = float(rng.choice([0.25, 0.5, 1.0]))  # shared times, ties
            elif kind == 2:
                delay_s = float(rng.exponential(0.01))  # within a bucket or so
            elif kind == 3:
                delay_s = float(rng.exponential(5.0))
            else:
                delay_s = 1e16 if rng.random() < 0.05 else float(rng.uniform(0, 100))
            make(delay_s, bool(rng.random() < 0.2))

    for _ in range(50):
        make(float(rng.choice([0.0, 0.5, rng.uniform(0, 10)])), bool(rng.random() < 0.2))
    env.run(until=1e17)
    return fired


@pytest.mark.parametrize("bucket_s", [1e-6, 1e-3, 0.37, 1.0, 1e3])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_events_are_processed_in_simpys_order_whatever_the_bucket(
    bucket_s: float, seed: int
) -> None:
    expected = _random_world(simpy.Environment(), seed, 3000)
    got = _random_world(CalendarEnvironment(bucket_s), seed, 3000)
    assert len(expected) >= 3000
    assert got == expected


def test_peek_now_and_run_until_behave_as_simpys() -> None:
    def observe(env: simpy.Environment) -> list[object]:
        seen: list[object] = [env.peek()]
        call_after(env, 2.5, None, lambda _t: seen.append(env.now))
        call_after(env, 0.05, None, lambda _t: seen.append(env.now))
        seen.append(env.peek())
        env.run(until=1.0)  # stops between the two
        seen += [env.now, env.peek()]
        env.run()
        seen.append(env.now)
        with pytest.raises(simpy.core.EmptySchedule):
            env.step()
        return seen

    expected = observe(simpy.Environment())
    assert expected[:4] == [simpy.core.Infinity, 0.05, 0.05, 1.0]
    assert observe(CalendarEnvironment(0.1)) == expected
    assert observe(CalendarEnvironment(100.0)) == expected


def test_a_failed_event_crashes_the_run_as_in_simpy() -> None:
    env = CalendarEnvironment(1.0)

    def proc(env: simpy.Environment):  # type: ignore[no-untyped-def]
        yield env.timeout(3.0)
        raise ValueError("the client broke")

    env.process(proc(env))
    with pytest.raises(ValueError, match="the client broke"):
        env.run()
    assert env.now == 3.0


def test_a_bucket_width_must_be_a_positive_finite_number() -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="bucket_s"):
            CalendarEnvironment(bad)
    assert bucket_for(0.0) == 1.0  # an idle run: wide buckets
    assert bucket_for(1e12) == 1e-6
    assert bucket_for(2560.0) == pytest.approx(0.1)  # 256 events a bucket


@pytest.mark.parametrize(
    "name", ["thundering-herd", "retry-storm-metastable", "store-degradation", "job-timeout"]
)
def test_a_world_on_the_calendar_is_the_world_on_simpys_heap(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every figure of a run, on SimPy's own environment and on calendars of very
    different widths (the width is a cost knob, never a model parameter)."""
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    if scenario.clients.count and scenario.clients.count > 2000:
        scenario = dataclasses.replace(
            scenario, clients=dataclasses.replace(scenario.clients, count=2000)
        )
    policy = scenario.policies[0]

    def figures(make_env: object) -> dict[str, object]:
        monkeypatch.setattr(world_run, "CalendarEnvironment", make_env)
        rec = world_run.run_policy(scenario, policy).recorder
        got: dict[str, object] = {k: bytes(v) for k, v in rec.live.items()}
        for attr in ("outcome", "accepted_s", "attempts", "sent_s"):
            got[attr] = bytes(memoryview(getattr(rec, attr)))
        got["gauges"] = {k: v.tobytes() for k, v in rec.gauges.items()}
        return got

    reference = figures(lambda _bucket_s: simpy.Environment())
    assert reference["sent_s"], "the run sent requests"
    for width in (1e-4, 0.05, 10.0):
        assert figures(lambda _b, width=width: CalendarEnvironment(width)) == reference
