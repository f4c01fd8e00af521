"""The scenario's network latency, for real: a Toxiproxy ``latency`` toxic each way.

The simulator delays every message by a draw from ``network.latency`` (one way). For
real, both client proxies (API and streams) carry a latency toxic upstream and one
downstream for the whole run, so a request and its answer each wait about one draw, as
in the model. Toxiproxy delays each chunk by ``latency ± jitter`` ms, uniformly (its own
random source, whole milliseconds), so a distribution is realised as the uniform with
the same mean and standard deviation, cut at zero (README, "Faults for real"):

| distribution | latency | jitter |
|---|---|---|
| constant v | v | 0 |
| uniform [lo, hi] | (lo + hi) / 2 | (hi - lo) / 2 (exact) |
| normal (mean, sd), folded | mean | sd·√3, at most mean |
| exponential (mean) | mean | mean (sd mean·√3 cut to mean: the tail is lost) |
| lognormal (median, sigma) | its mean | its sd·√3, at most the mean |
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.faults import CLIENT_PROXIES
from sim.distributions import Constant, Distribution, Exponential, FoldedNormal, LogNormal, Uniform

#: names of the toxics that carry the scenario's network latency
NETWORK_TOXICS = {"upstream": "network_up", "downstream": "network_down"}


def _sd_s(d: Distribution) -> float:
    if isinstance(d, Constant):
        return 0.0
    if isinstance(d, Uniform):
        return (d.high_s - d.low_s) / math.sqrt(12)
    if isinstance(d, FoldedNormal):
        return d.sd_s
    if isinstance(d, Exponential):
        return d.mean
    if isinstance(d, LogNormal):
        return d.mean_s * math.sqrt(math.exp(d.sigma**2) - 1)
    raise TypeError(f"no standard deviation for {d!r}")


def latency_toxic_ms(d: Distribution) -> tuple[int, int]:
    """(latency, jitter) in whole ms of the Toxiproxy toxic that realises ``d``."""
    if isinstance(d, Uniform):
        return round((d.low_s + d.high_s) * 500), round((d.high_s - d.low_s) * 500)
    mean_ms = d.mean_s * 1000
    if isinstance(d, FoldedNormal):
        mean_ms = d.mean * 1000  # the unfolded mean: Toxiproxy's uniform is symmetric
    jitter_ms = min(mean_ms, _sd_s(d) * 1000 * math.sqrt(3))
    return round(mean_ms), round(jitter_ms)


def exact(d: Distribution) -> bool:
    """Whether the toxic reproduces ``d`` exactly (up to whole milliseconds)."""
    return isinstance(d, Constant | Uniform)


def apply_network_latency(
    toxi: Any, latency: Distribution, proxies: Sequence[str] = CLIENT_PROXIES
) -> tuple[int, int]:
    """Put the latency toxics on every client proxy, both ways; returns (latency,
    jitter) in ms. Nothing is added for a latency under half a millisecond."""
    latency_ms, jitter_ms = latency_toxic_ms(latency)
    if latency_ms == 0 and jitter_ms == 0:
        return 0, 0
    attrs = {"latency": latency_ms, "jitter": jitter_ms}
    for proxy in proxies:
        for stream, name in NETWORK_TOXICS.items():
            toxi.add_toxic(proxy, name, "latency", attrs, stream, 1.0)
    return latency_ms, jitter_ms
