"""A SimPy environment whose event queue is a calendar: events bucketed by time.

``simpy.Environment`` keeps every scheduled event in one binary heap. A large herd
holds millions of them at once (a third of the clients that have arrived wait on
something), so every push and pop walks ~20 levels of tuples scattered over gigabytes,
and nearly every level is a cache miss: the cost per event grows with the herd.

:class:`CalendarEnvironment` files an event under its time's bucket
(``int(time / bucket_s)``): a future bucket is a plain list, appended to; the current
one is a small heap, sorted when the clock reaches it. A pop then works on a few
hundred neighbours in time, which the cache holds, and a push into a later bucket is
an append.

The order is SimPy's, exactly: every entry is SimPy's own key (time, priority,
insertion number, event); buckets are ordered by time (``int(t / bucket_s)`` never
decreases as ``t`` grows), and within one the heap orders by the whole key. So any
bucket width gives the same run, event for event: the width only moves the cost.
``tests/test_sim_calendar.py`` holds it to SimPy's order.
"""

from __future__ import annotations

import math
from heapq import heapify, heappop, heappush
from typing import Any

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, EventPriority

_Key = tuple[float, EventPriority, int, Any]  # SimPy's queue entry: (time, priority, eid, event)

# A time at or past this (an event never due, say) shares the last bucket.
_FAR_S = 1e15


class CalendarEnvironment(simpy.Environment):
    """``simpy.Environment`` with a calendar queue; the same events in the same order.

    ``bucket_s`` is a cost knob, not a model parameter: aim for a few hundred events
    per bucket (:func:`bucket_for`)."""

    def __init__(self, bucket_s: float, initial_time: float = 0) -> None:
        if not (bucket_s > 0 and math.isfinite(bucket_s)):
            raise ValueError(f"bucket_s must be a positive number of seconds, not {bucket_s!r}")
        super().__init__(initial_time)
        self._per_bucket = 1.0 / bucket_s
        self._far_i = int(_FAR_S * self._per_bucket) + 1
        # ``_queue`` (SimPy's name) is the current bucket's heap, index ``_now_i``
        self._now_i = int(initial_time * self._per_bucket) if initial_time < _FAR_S else self._far_i
        self._later: dict[int, list[_Key]] = {}  # bucket index -> its entries, unsorted
        self._later_i: list[int] = []  # a heap of the indices in ``_later``

    def queued(self) -> int:
        """The number of events scheduled and not yet processed."""
        return len(self._queue) + sum(map(len, self._later.values()))

    def schedule(self, event: Any, priority: EventPriority = NORMAL, delay: float = 0) -> None:
        """Schedule ``event`` with ``priority``, ``delay`` from now (as SimPy's)."""
        at = self._now + delay
        key = (at, priority, next(self._eid), event)
        i = int(at * self._per_bucket) if at < _FAR_S else self._far_i
        if i <= self._now_i:
            heappush(self._queue, key)
            return
        later = self._later.get(i)
        if later is None:
            self._later[i] = [key]
            heappush(self._later_i, i)
        else:
            later.append(key)

    def _advance(self) -> bool:
        """Make the next non-empty bucket the current one; False if there is none."""
        if not self._later_i:
            return False
        i = heappop(self._later_i)
        queue = self._queue = self._later.pop(i)
        heapify(queue)
        self._now_i = i
        return True

    def peek(self) -> float:
        """The time of the next scheduled event, or ``simpy.core.Infinity``."""
        queue = self._queue
        if queue:
            return queue[0][0]
        if self._advance():
            return self._queue[0][0]
        return simpy.core.Infinity

    def step(self) -> None:
        """Process the next event (as ``simpy.Environment.step``)."""
        queue = self._queue
        if not queue:
            if not self._advance():
                raise EmptySchedule
            queue = self._queue
        self._now, _, _, event = heappop(queue)

        # What SimPy's step does with the event, unchanged (simpy 4.1).
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            self.schedule(event, EventPriority(-1))
            raise

        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


def bucket_for(events_per_s: float, per_bucket: int = 256) -> float:
    """A bucket width for a run expected to process ``events_per_s`` on average."""
    return min(1.0, max(1e-6, per_bucket / max(events_per_s, 1.0)))
