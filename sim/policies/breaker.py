"""A circuit breaker in the resilience4j style, over a count-based window.

closed --(failure rate >= threshold over the last ``window_calls`` calls,
          once at least ``min_calls`` were seen)--> open
open   --(``open_s`` elapsed)--> half-open
half-open: lets ``half_open_probes`` calls through; the first failed probe opens
           the breaker again, ``half_open_probes`` successes close it.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

from sim.frozen import frozen


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Read on every attempt, bound once: on Python 3.11 every attribute read on an Enum class
# goes through ``EnumType.__getattr__``'s slow attribute hook.
_CLOSED, _OPEN, _HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


@frozen
class BreakerSpec:
    """Frozen breaker configuration."""

    failure_rate: float = 0.5
    window_calls: int = 20
    min_calls: int = 10
    open_s: float = 5.0
    half_open_probes: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"failure_rate must be within (0, 1], got {self.failure_rate}")
        if self.window_calls < 1 or self.min_calls < 1 or self.half_open_probes < 1:
            raise ValueError("window_calls, min_calls and half_open_probes must be >= 1")
        if self.min_calls > self.window_calls:
            raise ValueError("min_calls must be <= window_calls")
        if self.open_s < 0:
            raise ValueError(f"open_s must be >= 0, got {self.open_s}")

    def new(self) -> CircuitBreaker:
        return CircuitBreaker(self)

    def describe(self) -> str:
        return (
            f"breaker: open at {self.failure_rate * 100:g}% failures of the last"
            f" {self.window_calls} calls (min {self.min_calls}), open {self.open_s:g} s,"
            f" {self.half_open_probes} half-open probes"
        )


class CircuitBreaker:
    """Runtime state of a breaker. ``allow(now_s)`` before a call, ``record`` after it."""

    __slots__ = ("calls", "in_flight_probes", "opened_at_s", "probe_successes", "spec", "state")

    def __init__(self, spec: BreakerSpec) -> None:
        self.spec = spec
        self.state = _CLOSED
        self.calls: deque[bool] = deque(maxlen=spec.window_calls)  # True = failure
        self.opened_at_s = 0.0
        self.in_flight_probes = 0
        self.probe_successes = 0

    def allow(self, now_s: float) -> bool:
        """May a call go out now? Moves open -> half-open when the wait is over."""
        if self.state is _OPEN:
            if now_s - self.opened_at_s < self.spec.open_s:
                return False
            self.state = _HALF_OPEN
            self.in_flight_probes = 0
            self.probe_successes = 0
        if self.state is _HALF_OPEN:
            if self.in_flight_probes >= self.spec.half_open_probes:
                return False
            self.in_flight_probes += 1
        return True

    def record(self, now_s: float, failed: bool) -> None:
        """Record the result of a call that ``allow`` let through."""
        if self.state is _HALF_OPEN:
            if failed:
                self._open(now_s)
                return
            self.probe_successes += 1
            if self.probe_successes >= self.spec.half_open_probes:
                self.state = _CLOSED
                self.calls.clear()
            return
        if self.state is _OPEN:
            return  # a late answer from before the breaker opened
        self.calls.append(failed)
        if len(self.calls) >= self.spec.min_calls:
            rate = sum(self.calls) / len(self.calls)
            if rate >= self.spec.failure_rate:
                self._open(now_s)

    def _open(self, now_s: float) -> None:
        self.state = _OPEN
        self.opened_at_s = now_s
        self.calls.clear()
