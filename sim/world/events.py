"""The simulator's own light events, and the driver that runs a client on them.

The world makes one or two timeouts per simulated request. ``env.timeout`` builds a
full :class:`simpy.events.Timeout` (an object with an instance dict, a delay check and
five attribute stores, then a method call to schedule it), and a client run as a
``simpy.Process`` pays for interrupts and failure propagation it never uses.

SimPy's event loop asks three things of what it takes off its queue
(``Environment.step``): ``callbacks`` (a list, set to None once processed), ``_ok``,
and ``_value`` only when ``_ok`` is false. A :class:`Timer` is exactly that, in slots:
it always succeeds, ``delay_s`` after it is made, and is scheduled with the public
``Environment.schedule``, so it takes its place in SimPy's queue and order (time,
priority, then insertion) like any Timeout. A :class:`Wake` is an event triggered by
the world, processed on the spot. A :class:`Task` drives a client's generator on them
(and on ordinary SimPy events, for a condition such as ``a | b``).

None of these is a :class:`simpy.Event`: a ``simpy.Process`` cannot wait for one, nor
can one join a condition. ``tests/test_sim_model.py`` holds them to SimPy's order.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy
from simpy.events import NORMAL, PENDING


class Timer:
    """Succeeds ``delay_s`` after it is made, with ``_value``; then its ``callbacks`` run."""

    __slots__ = ("_value", "callbacks")

    _ok = True  # a Timer never fails (SimPy's step reads this)

    def __init__(self, env: simpy.Environment, delay_s: float, value: Any = None) -> None:
        self.callbacks: list[Callable[[Any], None]] | None = []
        self._value = value
        env.schedule(self, NORMAL, delay_s)  # type: ignore[arg-type]


def call_after(
    env: simpy.Environment, delay_s: float, value: Any, callback: Callable[[Any], None]
) -> None:
    """Run ``callback(timer)`` ``delay_s`` from now, where ``timer._value`` is ``value``."""
    timer = Timer.__new__(Timer)
    # A tuple: nothing can wait for this timer (no one holds it), so its callbacks never
    # grow, and one tuple is one allocation where a list is two (SimPy's step only
    # iterates them).
    timer.callbacks = (callback,)  # type: ignore[assignment]
    timer._value = value
    env.schedule(timer, NORMAL, delay_s)  # type: ignore[arg-type]


class Wake:
    """An event the world triggers with :meth:`wake`, processed at once: the waiting
    client goes on in the same instant, without a trip through the event queue.

    For a wait whose end needs no ordering against other events of that instant (a
    job's end, a cut stream, a deadline). ``wake`` does what ``Environment.step`` does
    with a succeeded event: call its callbacks, once."""

    __slots__ = ("_value", "callbacks")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], None]] | None = []
        self._value: Any = PENDING

    def wake(self) -> None:
        callbacks = self.callbacks
        if callbacks is None:
            return  # woken already
        self.callbacks = None
        self._value = None
        for callback in callbacks:
            callback(self)


Waitable = Timer | Wake | simpy.Event
ClientGen = Generator[Waitable, Any, Any]
"""A simulated client: a generator that yields what it waits for, driven by a Task."""


class _Start:
    """What a Task sends its generator first (as ``next`` would): nothing."""

    __slots__ = ()
    _value = None


_START = _Start()


class Task:
    """A client's generator driven straight from the event callbacks.

    ``simpy.Process`` does more than a client needs (interrupts, failure propagation,
    the active-process bookkeeping) and it is a third of the cost of each resume. A
    client here only ever waits for events that succeed, so this driver sends each
    event's value into the generator and hooks itself onto the next event it yields;
    ``on_end`` runs when the generator returns. An exception in a client propagates
    out of ``env.run``, as it would from a Process.
    """

    __slots__ = ("env", "gen", "on_end")

    def __init__(
        self, env: simpy.Environment, gen: ClientGen, on_end: Callable[[], None] | None = None
    ) -> None:
        """Run ``gen`` up to its first wait, now (a client arriving sends at once)."""
        self.env = env
        self.gen = gen
        self.on_end = on_end
        self.resume(_START)

    def resume(self, event: Waitable | _Start) -> None:
        try:
            target = self.gen.send(event._value)
        except StopIteration:
            if self.on_end is not None:
                self.on_end()
            return
        callbacks = target.callbacks
        if callbacks is None:  # already processed: go on at once
            call_after(self.env, 0, target._value, self.resume)
        else:
            callbacks.append(self.resume)
