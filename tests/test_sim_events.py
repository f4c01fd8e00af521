"""The simulator's light events keep SimPy's order and semantics."""

from __future__ import annotations

import pytest
import simpy

from sim.world.events import ClientGen, Lane, Task, Timer, Wake, call_after


def test_timers_and_simpy_timeouts_fire_in_time_then_creation_order() -> None:
    env = simpy.Environment()
    fired: list[tuple[float, str]] = []

    def note(name: str):  # type: ignore[no-untyped-def]
        return lambda event: fired.append((env.now, name))

    # equal times fire in the order they were made, whichever kind they are
    env.timeout(2.0).callbacks.append(note("timeout a"))
    call_after(env, 2.0, None, note("timer b"))
    Timer(env, 1.0).callbacks.append(note("timer c"))  # type: ignore[union-attr]
    env.timeout(2.0).callbacks.append(note("timeout d"))
    call_after(env, 0.5, None, note("timer e"))
    env.run()
    assert fired == [
        (0.5, "timer e"),
        (1.0, "timer c"),
        (2.0, "timeout a"),
        (2.0, "timer b"),
        (2.0, "timeout d"),
    ]


def test_a_timer_carries_its_value_to_its_callback() -> None:
    env = simpy.Environment()
    got: list[object] = []
    call_after(env, 1.0, "job 7", lambda timer: got.append(timer._value))
    env.run()
    assert got == ["job 7"]


def test_a_task_waits_on_timers_wakes_and_simpy_events() -> None:
    env = simpy.Environment()
    wake = Wake()
    seen: list[tuple[float, object]] = []
    ended: list[float] = []

    def client() -> ClientGen:
        value = yield Timer(env, 1.5, "slept")
        seen.append((env.now, value))
        value = yield wake  # woken by the world at 4.0
        seen.append((env.now, value))
        done = env.timeout(0.0, "ready")
        yield env.timeout(1.0)  # `done` is processed while we sleep
        value = yield done  # already processed: the task goes on at once, with its value
        seen.append((env.now, value))

    Task(env, client(), lambda: ended.append(env.now))
    call_after(env, 4.0, None, lambda _: wake.wake())
    env.run()
    assert seen == [(1.5, "slept"), (4.0, None), (5.0, "ready")]
    assert ended == [5.0]


def test_a_wake_runs_its_callbacks_once() -> None:
    wake = Wake()
    calls: list[object] = []
    wake.callbacks.append(calls.append)  # type: ignore[union-attr]
    wake.wake()
    wake.wake()  # a second trigger (a deadline after the job's end) does nothing
    assert calls == [wake]
    assert wake.callbacks is None


@pytest.mark.parametrize("driver", ["simpy", "lane"])
def test_a_lane_runs_its_entries_in_time_order_between_simpy_events(driver: str) -> None:
    """On its own timers under ``env.run``, or driving SimPy's loop itself (``Lane.run``):
    the same order either way."""
    env = simpy.Environment()
    lane = Lane(env)
    fired: list[tuple[str, float]] = []

    def entry(name: str, then: tuple[float, str] | None = None):  # type: ignore[no-untyped-def]
        def run(at_s: float) -> None:
            fired.append((name, at_s))
            if then is not None:  # an entry that sends another message
                lane.push(at_s + then[0], entry(then[1]))

        return run

    env.timeout(1.0).callbacks.append(lambda _: fired.append(("simpy", env.now)))
    lane.push(0.4, entry("a", (0.3, "a2")))  # a2 at 0.7, still before SimPy's 1.0
    lane.push(0.2, entry("b", (1.5, "b2")))  # b2 at 1.7, after it
    lane.push(0.4, entry("c"))  # ties go in creation order
    # what the rest of the world must see goes back onto SimPy's queue, at its time
    lane.push(1.2, lambda at_s: lane.in_world(at_s, lambda _: fired.append(("end", env.now))))
    if driver == "simpy":
        env.run()
    else:
        lane.run(until=env.timeout(5.0))
    assert fired == [
        ("b", 0.2),
        ("a", 0.4),
        ("c", 0.4),
        ("a2", 0.7),
        ("simpy", 1.0),
        ("end", 1.2),
        ("b2", 1.7),
    ]


def test_the_deadline_queue_lets_ended_clients_go_behind_an_open_one() -> None:
    from sim.world.client import Deadlines

    class Client:  # what Deadlines reads of a JobClient
        def __init__(self, deadline_s: float) -> None:
            self.deadline_s = deadline_s
            self.closed = False

    env = simpy.Environment()
    deadlines = Deadlines(env)
    oldest = Client(90.0)  # still open: the head's pops alone would keep every later one
    deadlines.watch(oldest)  # type: ignore[arg-type]
    for i in range(50_000):
        client = Client(90.0 + i * 1e-3)
        deadlines.watch(client)  # type: ignore[arg-type]
        client.closed = True  # ends at once
    assert deadlines.queue[0] is oldest
    assert len(deadlines.queue) < 10_000  # swept, not 50,001
