"""Time distributions for service times, network latency and think times.

Each knows its analytic mean, so simulated results can be checked against theory.
All values in seconds; every draw goes through the caller's Generator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sim.frozen import frozen

if TYPE_CHECKING:
    # numpy only for annotations here: a scenario is parsed (``herdlab validate``)
    # without importing it; the world that draws from a Generator has it loaded anyway
    import numpy as np


class Distribution(Protocol):
    """A non-negative random duration."""

    @property
    def mean_s(self) -> float: ...
    def sample_s(self, rng: np.random.Generator) -> float: ...
    def samples_s(self, rng: np.random.Generator, n: int) -> np.ndarray: ...
    def describe(self) -> str: ...


@frozen
class Constant:
    """Always ``value_s``."""

    value_s: float

    @property
    def mean_s(self) -> float:
        return self.value_s

    def sample_s(self, rng: np.random.Generator) -> float:
        return self.value_s

    def samples_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np  # not at import time: see the imports above

        return np.full(n, self.value_s)

    def describe(self) -> str:
        return f"{self.value_s * 1000:g} ms"


@frozen
class Exponential:
    """Exponentially distributed, with mean ``mean``."""

    mean: float

    @property
    def mean_s(self) -> float:
        return self.mean

    def sample_s(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean))

    def samples_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)

    def describe(self) -> str:
        return f"Exp(mean {self.mean * 1000:g} ms)"


@frozen
class FoldedNormal:
    """``|Normal(mean, sd)|``: the 2015 AWS post's network delay."""

    mean: float
    sd_s: float

    @property
    def mean_s(self) -> float:
        # Mean of a folded normal distribution.
        mu, sigma = self.mean, self.sd_s
        if sigma == 0:
            return abs(mu)
        return sigma * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * sigma**2)) + mu * (
            1 - 2 * _normal_cdf(-mu / sigma)
        )

    def sample_s(self, rng: np.random.Generator) -> float:
        return abs(float(rng.normal(self.mean, self.sd_s)))

    def samples_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return abs(rng.normal(self.mean, self.sd_s, n))  # ndarray.__abs__: np.absolute

    def describe(self) -> str:
        return f"|N({self.mean * 1000:g} ms, {self.sd_s * 1000:g} ms)|"


@frozen
class LogNormal:
    """Log-normally distributed: ``median_s`` times ``exp(sigma * Z)``, Z standard normal."""

    median_s: float
    sigma: float

    @property
    def mean_s(self) -> float:
        return self.median_s * math.exp(self.sigma**2 / 2)

    def sample_s(self, rng: np.random.Generator) -> float:
        return float(rng.lognormal(math.log(self.median_s), self.sigma))

    def samples_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(math.log(self.median_s), self.sigma, n)

    def describe(self) -> str:
        return f"LogNormal(median {self.median_s * 1000:g} ms, sigma {self.sigma:g})"


@frozen
class Uniform:
    """Uniformly distributed between ``low_s`` and ``high_s``."""

    low_s: float
    high_s: float

    @property
    def mean_s(self) -> float:
        return (self.low_s + self.high_s) / 2

    def sample_s(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low_s, self.high_s))

    def samples_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low_s, self.high_s, n)

    def describe(self) -> str:
        return f"U({self.low_s * 1000:g} ms, {self.high_s * 1000:g} ms)"


def one_at_a_time(draw_block: Callable[[], np.ndarray]) -> Callable[[], float]:
    """A function returning one value per call, taken in order from blocks that
    ``draw_block`` makes when the last is used up (the first at the first call): one
    vectorised Generator call per block instead of one per value, and each value a
    C-level iterator step, no Python frame. The same numbers in the same order as
    drawing the blocks one after another."""
    blocks = iter(lambda: draw_block().tolist(), None)  # never None: endless
    return itertools.chain.from_iterable(blocks).__next__


def sampler(dist: Distribution, rng: np.random.Generator, block: int = 4096) -> Callable[[], float]:
    """Draws from ``dist`` one at a time, ``block`` at a time from ``rng``."""
    return one_at_a_time(lambda: dist.samples_s(rng, block))


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))
