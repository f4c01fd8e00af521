"""The network between clients and the service: latency per message, and its faults."""

from __future__ import annotations

from enum import Enum

import numpy as np

from sim.distributions import sampler
from sim.scenario.model import FaultKind, Network
from sim.world.faults import FaultTimeline


class Fate(Enum):
    """What happens to one request message."""

    DELIVERED = "delivered"
    LOST = "lost"  # never arrives: the client waits for its timeout
    RESET = "reset"  # the connection is reset: the client sees ECONNRESET
    REFUSED = "refused"  # nothing accepts the connection: ECONNREFUSED


# Read on every request (Enum class attributes are slow to read on Python 3.11).
_DELIVERED, _LOST = Fate.DELIVERED, Fate.LOST
_PARTITION, _LATENCY_SPIKE = FaultKind.PARTITION, FaultKind.LATENCY_SPIKE
# a request's fate under each probabilistic fault, checked in this order
_FATE_OF_FAULT = (
    (FaultKind.REFUSE, Fate.REFUSED),
    (FaultKind.RESET, Fate.RESET),
    (FaultKind.LOSS, Fate.LOST),
)


class SimNetwork:
    """Draws latencies from the network stream and applies loss, reset, refuse, partition."""

    __slots__ = ("clean", "draw", "faults", "rng", "spikes")

    def __init__(self, network: Network, faults: FaultTimeline, rng: np.random.Generator) -> None:
        self.draw = sampler(network.latency, rng)  # one latency
        self.faults = faults
        self.rng = rng
        self.spikes = bool(faults.by_kind[FaultKind.LATENCY_SPIKE])
        self.clean = not faults.network_faults  # no loss, reset, refusal or partition ever

    def round_trip_s(self, t_s: float) -> tuple[float, float]:
        """One-way latencies there and back of a request sent at ``t_s``."""
        if self.spikes:
            return self.delay_s(t_s), self.delay_s(t_s)
        draw = self.draw
        return draw(), draw()

    def delay_s(self, t_s: float) -> float:
        """One-way latency of a message sent at ``t_s``, spikes included."""
        d = self.draw()
        if not self.spikes:
            return d
        spike = self.faults.active(_LATENCY_SPIKE, t_s)
        if spike is not None and spike.extra_latency is not None:
            d += spike.extra_latency.sample_s(self.rng)
        return d

    def fate(self, t_s: float) -> Fate:
        """The fate of a request sent at ``t_s``."""
        f = self.faults
        if not f.network_faults or f.quiet(t_s):
            return _DELIVERED
        if f.active(_PARTITION, t_s) is not None:
            return _LOST
        for kind, fate in _FATE_OF_FAULT:
            fault = f.active(kind, t_s)
            if fault is not None and (
                fault.probability >= 1.0 or self.rng.random() < fault.probability
            ):
                return fate
        return _DELIVERED
