"""The fault timeline: which faults are active at a simulated instant."""

from __future__ import annotations

from sim.scenario.model import Fault, FaultKind


class FaultTimeline:
    """Answers "what is wrong at time t" for the network and the service."""

    __slots__ = ("by_kind", "faults", "network_faults")

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = faults
        self.by_kind: dict[FaultKind, tuple[Fault, ...]] = {
            kind: tuple(f for f in faults if f.kind is kind) for kind in FaultKind
        }
        network_kinds = (FaultKind.PARTITION, FaultKind.REFUSE, FaultKind.RESET, FaultKind.LOSS)
        self.network_faults = any(self.by_kind[k] for k in network_kinds)

    def active(self, kind: FaultKind, t_s: float) -> Fault | None:
        """The first fault of ``kind`` active at ``t_s``, if any."""
        for f in self.by_kind[kind]:
            if f.start_s <= t_s < f.end_s:
                return f
        return None

    @property
    def last_end_s(self) -> float | None:
        return max((f.end_s for f in self.faults), default=None)

    @property
    def first_start_s(self) -> float | None:
        return min((f.start_s for f in self.faults), default=None)
