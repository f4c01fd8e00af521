"""The simulator's light events keep SimPy's order and semantics."""

from __future__ import annotations

import simpy

from sim.world.events import ClientGen, Task, Timer, Wake, call_after


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
