"""Backoff and jitter: how long a client waits before retry number ``n`` (n = 1, 2, ...).

Formulas (``docs/policies-and-faults.md``; herdlab numbers retries
from 1, so the first retry waits ``base``: the seed plan's ``attempt`` and the
2015 AWS post's ``attempt`` both count from 0, gRPC A6 writes ``n-1``)::

    constant             v_n = base
    exponential          v_n = min(cap, base * multiplier**(n-1))

    jitter none          d_n = v_n
    jitter proportional  d_n = v_n * U(1-p, 1+p)                  (seed plan, p = 0.10)
    jitter full          d_n = U(0, v_n)                          (AWS 2015)
    jitter equal         d_n = v_n/2 + U(0, v_n/2)                (AWS 2015)
    jitter decorrelated  d_n = min(cap, U(base, 3 * d_{n-1})), d_0 = base   (AWS 2015)
    jitter decorrelated-v2 (Polly, Dotnet.Jitter):
                         t_n = (n-1) + U(0,1),  f(t) = 2**t * tanh(sqrt(4 t)),
                         d_n = min(cap, (f(t_n) - f(t_{n-1})) * base / 1.4),  f(t_0) = 0

Decorrelated jitters depend on the previous draw, so a backoff hands out a fresh
``delays_s(rng)`` iterator per request; every other jitter is memoryless.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterator
from dataclasses import field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: parsing a scenario does not import numpy
    import numpy as np
    import numpy.typing as npt

from sim.distributions import one_at_a_time
from sim.frozen import frozen


class Draws(Protocol):
    """Where a policy's random numbers come from: a ``numpy.random.Generator``, or
    :class:`BlockDraws` over one (the same numbers, drawn a block at a time)."""

    def random(self) -> float: ...

    def uniform(self, low: float, high: float) -> float: ...


class BlockDraws:
    """Uniform draws from an injected Generator, taken 4,096 at a time.

    The same numbers in the same order as one ``rng.random()`` or ``rng.uniform(a, b)``
    call per draw (numpy computes ``uniform`` as ``a + (b - a) * random()``, and a block
    of ``random`` continues the stream exactly), at a tenth of the per-call cost. The
    simulator's hot path draws this way; the Generator's state runs ahead by what is
    left in the block, so nothing else may draw from that Generator.
    """

    __slots__ = ("random",)

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self.random = one_at_a_time(lambda: rng.random(block))  # one U[0, 1) value

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()


class Jitter(StrEnum):
    """How randomness is mixed into the backoff value."""

    NONE = "none"
    PROPORTIONAL = "proportional"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"
    DECORRELATED_V2 = "decorrelated-v2"


class BackoffKind(StrEnum):
    """The deterministic curve before jitter."""

    CONSTANT = "constant"
    EXPONENTIAL = "exponential"


_POLLY_P_FACTOR = 4.0
_POLLY_SCALING = 1.0 / 1.4


def polly_f(t: float) -> float:
    """Polly's decorrelated-jitter-v2 curve ``f(t) = 2**t * tanh(sqrt(4 t))``; inf past 2**1023."""
    try:
        return float(2.0**t * math.tanh(math.sqrt(_POLLY_P_FACTOR * t)))
    except OverflowError:
        return math.inf


@frozen
class Backoff:
    """A backoff curve and its jitter. All times in seconds."""

    kind: BackoffKind = BackoffKind.EXPONENTIAL
    base_s: float = 1.0
    multiplier: float = 2.0
    cap_s: float = 30.0
    jitter: Jitter = Jitter.NONE
    jitter_ratio: float = 0.1
    # v_1, v_2, ... up to the first value at the cap (at most 64), worked out once
    _curve_s: tuple[float, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.base_s < 0:
            raise ValueError(f"base_s must be >= 0, got {self.base_s}")
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s ({self.cap_s}) must be >= base_s ({self.base_s})")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter_ratio <= 1:
            raise ValueError(f"jitter_ratio must be within [0, 1], got {self.jitter_ratio}")
        curve = [self._raw_value_s(1)]
        while len(curve) < 64 and curve[-1] < self.cap_s and self.kind is not BackoffKind.CONSTANT:
            curve.append(self._raw_value_s(len(curve) + 1))
        object.__setattr__(self, "_curve_s", tuple(curve))

    def value_s(self, retry: int) -> float:
        """The curve before jitter, ``v_n``, for retry number ``retry`` (>= 1)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, got {retry}")
        curve = self._curve_s
        return curve[retry - 1] if retry <= len(curve) else self._raw_value_s(retry)

    def _raw_value_s(self, retry: int) -> float:
        if self.kind is BackoffKind.CONSTANT:
            return self.base_s
        # Exponent overflow is harmless: the cap wins long before a float overflows,
        # but 2.0**2000 raises, so stop growing once the cap is reached.
        exponent = min(retry - 1, 1024)
        try:
            raw = self.base_s * self.multiplier**exponent
        except OverflowError:
            return self.cap_s
        return min(self.cap_s, raw)

    def delays_s(self, rng: Draws) -> Iterator[float]:
        """Yield the delay before retry 1, 2, 3, ... for one request."""
        jitter = self.jitter
        if jitter is Jitter.DECORRELATED:
            return self._decorrelated(rng)
        if jitter is Jitter.DECORRELATED_V2:
            return self._decorrelated_v2(rng)
        return self._memoryless(rng)

    def _values_s(self) -> Iterator[float]:
        """``v_1, v_2, ...``: the worked-out curve, then the cap for ever once the curve
        has reached it (the curve never shrinks), else each value worked out."""
        curve = self._curve_s
        if self.kind is BackoffKind.CONSTANT or curve[-1] >= self.cap_s:
            return itertools.chain(curve, itertools.repeat(curve[-1]))
        return itertools.chain(curve, map(self._raw_value_s, itertools.count(len(curve) + 1)))

    def _memoryless(self, rng: Draws) -> Iterator[float]:
        """Iterators built of C-level parts (``map`` over the curve and the draws): a
        retry's delay costs no Python frame. ``rng.uniform(a, b)`` is ``a + (b - a) *
        rng.random()`` (numpy's definition, and :class:`BlockDraws`'), written out here
        with the same operations in the same order, so the delays are the same floats."""
        jitter = self.jitter
        if jitter is Jitter.NONE:
            return self._values_s()
        draws = iter(rng.random, None)  # one U[0, 1) a delay, drawn when it is asked for
        if jitter is Jitter.FULL:  # uniform(0, v) = 0 + (v - 0) * u = v * u
            return map(operator.mul, self._values_s(), draws)
        if jitter is Jitter.EQUAL:  # v/2 + uniform(0, v/2) = v/2 + v/2 * u
            two = itertools.repeat(2.0)
            halves = map(operator.truediv, self._values_s(), two)
            again = map(operator.truediv, self._values_s(), two)  # the same values, in step
            return map(operator.add, halves, map(operator.mul, again, draws))
        # PROPORTIONAL: v * uniform(1 - p, 1 + p) = v * ((1 - p) + ((1 + p) - (1 - p)) * u)
        low, high = 1.0 - self.jitter_ratio, 1.0 + self.jitter_ratio
        spread = map(operator.mul, itertools.repeat(high - low), draws)
        factors = map(operator.add, itertools.repeat(low), spread)
        return map(operator.mul, self._values_s(), factors)

    def _decorrelated(self, rng: Draws) -> Iterator[float]:
        base, cap = self.base_s, self.cap_s
        rand = rng.random
        previous_s = base  # d_0 = base
        while True:
            # rng.uniform(base, high), written out as numpy defines it (see _memoryless)
            previous_s = min(cap, base + (max(base, 3.0 * previous_s) - base) * rand())
            yield previous_s

    def _decorrelated_v2(self, rng: Draws) -> Iterator[float]:
        retry = 0
        previous_f = 0.0  # f(t_0) = 0
        while True:
            retry += 1
            f_t = polly_f((retry - 1) + rng.random())
            if math.isinf(f_t):
                # Polly returns the maximum delay once the curve overflows
                yield self.cap_s
                continue
            delay = (f_t - previous_f) * self.base_s * _POLLY_SCALING
            previous_f = f_t
            yield min(self.cap_s, delay)

    def delay_table_s(self, u: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The delays :meth:`delays_s` gives, for many requests at once: row ``i`` of the
        result is one request's delays before retries 1 to ``u.shape[1]``, when its draws
        are ``u[i]`` in order (one U[0, 1) a delay, as :meth:`delays_s` takes them). The
        formulas are those of :meth:`_memoryless` and :meth:`_decorrelated`, on arrays,
        with the same operations in the same order: the same floats (a test holds the two
        to equality). Not for ``decorrelated-v2``, whose ``tanh`` and ``pow`` numpy need
        not compute to libm's last bit."""
        import numpy as np  # here, not at import: parsing a scenario does not need numpy

        jitter = self.jitter
        if jitter is Jitter.DECORRELATED_V2:
            raise ValueError("decorrelated-v2 delays are drawn one request at a time")
        retries = u.shape[1]
        values_s = np.array([self.value_s(n) for n in range(1, retries + 1)], dtype=float)
        if jitter is Jitter.NONE:
            return np.tile(values_s, (u.shape[0], 1))
        if jitter is Jitter.FULL:  # v * u
            return values_s * u
        if jitter is Jitter.EQUAL:  # v/2 + v/2 * u
            halves_s = values_s / 2.0
            return halves_s + halves_s * u
        if jitter is Jitter.PROPORTIONAL:  # v * (low + (high - low) * u)
            low, high = 1.0 - self.jitter_ratio, 1.0 + self.jitter_ratio
            return values_s * (low + (high - low) * u)
        # DECORRELATED: d_n = min(cap, base + (max(base, 3 d_{n-1}) - base) * u), d_0 = base
        base, cap = self.base_s, self.cap_s
        out = np.empty(u.shape)
        previous_s = np.full(u.shape[0], base)
        for n in range(retries):
            previous_s = np.minimum(
                cap, base + (np.maximum(base, 3.0 * previous_s) - base) * u[:, n]
            )
            out[:, n] = previous_s
        return out

    def bounds_s(self, retry: int) -> tuple[float, float]:
        """The closed interval every delay before retry ``retry`` falls in."""
        v = self.value_s(retry)
        if self.jitter is Jitter.NONE:
            return v, v
        if self.jitter is Jitter.PROPORTIONAL:
            return v * (1.0 - self.jitter_ratio), v * (1.0 + self.jitter_ratio)
        if self.jitter is Jitter.FULL:
            return 0.0, v
        if self.jitter is Jitter.EQUAL:
            return v / 2.0, v
        if self.jitter is Jitter.DECORRELATED:
            return min(self.base_s, self.cap_s), self.cap_s
        # decorrelated-v2: f is increasing, so the step is positive and below the cap.
        return 0.0, self.cap_s

    def describe(self) -> str:
        """One line for tables: the curve and the jitter."""
        if self.kind is BackoffKind.CONSTANT:
            curve = f"constant {self.base_s * 1000:g} ms"
        else:
            curve = (
                f"exponential base {self.base_s * 1000:g} ms x{self.multiplier:g}"
                f" cap {self.cap_s * 1000:g} ms"
            )
        if self.jitter is Jitter.PROPORTIONAL:
            return f"{curve}, jitter ±{self.jitter_ratio * 100:g}%"
        return f"{curve}, jitter {self.jitter.value}"
