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
can one join a condition. ``tests/test_sim_events.py`` holds them to SimPy's order.
"""

from __future__ import annotations

import heapq
import itertools
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


class Lane:
    """A private time-ordered queue for messages that nothing else in the world sees
    until they are done, run between SimPy's own events.

    The OCC experiment is four messages per try, and a message on SimPy's queue costs
    a Timer, ``Environment.schedule`` and ``Environment.step``, three times what the
    2015 simulator's plain heap costs per message. Between two of SimPy's events
    (gauge samples, arrivals, the end of the run) nothing outside the lane can happen,
    so the lane runs its own entries up to the next one (``Environment.peek``) in a
    plain heap loop: the same order, (time, then creation) as SimPy's, and each
    callback gets its exact time, while ``env.now`` stays where SimPy's clock is. One
    SimPy timer is pending for the lane's head. Whatever the rest of the world must
    see goes back onto SimPy's queue at its time (:meth:`in_world`), and the lane stops
    before anything later. An entry at the very instant of a SimPy event runs after
    it (continuous random times make such a tie a measure-zero event).

    The lane runs on its own timers when SimPy's ``env.run`` drives the world, or
    drives SimPy's loop itself (:meth:`run`), which spares every timer.
    """

    __slots__ = ("armed", "env", "heap", "limit_s", "running", "seq")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.heap: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = itertools.count()  # creation order: ties go as in SimPy
        self.armed: list[float] = []  # times of the lane's pending SimPy timers
        self.running = False
        self.limit_s = 0.0  # while running: the next SimPy event's time

    def push(self, at_s: float, callback: Callable[[float], None]) -> None:
        """Run ``callback(at_s)`` at ``at_s`` (>= now)."""
        heapq.heappush(self.heap, (at_s, next(self.seq), callback))
        if not self.running and (not self.armed or at_s < self.armed[0]):
            self._arm(at_s)

    def in_world(self, at_s: float, callback: Callable[[Any], None]) -> None:
        """Run ``callback(timer)`` at ``at_s`` on SimPy's queue, where the rest of the
        world sees it (``env.now`` is then ``at_s``)."""
        call_after(self.env, max(0.0, at_s - self.env.now), None, callback)
        self.limit_s = min(self.limit_s, at_s)

    def run(self, until: simpy.Event) -> None:
        """Run SimPy's loop and the lane's together until ``until`` has been processed,
        as ``env.run(until=until)`` would: the lane's entries up to SimPy's next event
        (``Environment.peek``), then that event (``Environment.step``), and so on.
        Entries pushed from SimPy's callbacks need no timer of their own (see ``push``),
        so an interruption of the lane costs one ``step``, not a timer, a ``step`` and a
        re-arm: in the OCC table, ~300 of them a run (gauge samples and clients' ends)."""
        env, heap, pop = self.env, self.heap, heapq.heappop
        step, peek = env.step, env.peek
        self.running = True  # from here on, push arms no timer
        try:
            while until.callbacks is not None:  # None once processed
                self.limit_s = peek()
                while heap and heap[0][0] < self.limit_s:
                    at_s, _, callback = pop(heap)
                    callback(at_s)
                step()
        except simpy.core.EmptySchedule:  # as env.run says it
            raise RuntimeError(
                f'No scheduled events left but "until" event was not triggered: {until}'
            ) from None
        finally:
            self.running = False

    def _arm(self, at_s: float) -> None:
        heapq.heappush(self.armed, at_s)
        call_after(self.env, max(0.0, at_s - self.env.now), None, self._run)

    def _run(self, _timer: Timer) -> None:
        heapq.heappop(self.armed)  # timers fire in time order: this is the earliest
        if self.running:
            return  # armed before ``run`` took over, which runs the entries itself
        heap, pop = self.heap, heapq.heappop
        self.limit_s = self.env.peek()
        self.running = True
        while heap and heap[0][0] < self.limit_s:
            at_s, _, callback = pop(heap)
            callback(at_s)
        self.running = False
        if heap and (not self.armed or heap[0][0] < self.armed[0]):
            self._arm(heap[0][0])
