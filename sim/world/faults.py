"""The fault timeline: which faults are active at a simulated instant."""

from __future__ import annotations

import bisect
import math

from sim.scenario.model import Fault, FaultKind

NETWORK_KINDS = (FaultKind.PARTITION, FaultKind.REFUSE, FaultKind.RESET, FaultKind.LOSS)


class FaultTimeline:
    """Answers "what is wrong at time t" for the network and the service.

    Between two consecutive fault edges (starts and ends) the set of active faults does
    not change, so the answer for the segment holding the last instant asked about is
    kept: the world asks about "now" several times per request, and "now" stays inside
    one segment for long stretches. Each query is then two comparisons and a lookup.
    """

    __slots__ = ("by_kind", "edges", "faults", "network_faults", "seg_active", "seg_hi", "seg_lo")

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = faults
        self.by_kind: dict[FaultKind, tuple[Fault, ...]] = {
            kind: tuple(f for f in faults if f.kind is kind) for kind in FaultKind
        }
        self.network_faults = any(self.by_kind[k] for k in NETWORK_KINDS)
        self.edges = sorted({f.start_s for f in faults} | {f.end_s for f in faults})
        self.seg_lo = self.seg_hi = 0.0  # an empty segment: the first query fills it
        self.seg_active: dict[FaultKind, Fault] = {}

    def _segment(self, t_s: float) -> None:
        edges = self.edges
        i = bisect.bisect_right(edges, t_s)
        self.seg_lo = edges[i - 1] if i > 0 else -math.inf
        self.seg_hi = edges[i] if i < len(edges) else math.inf
        active: dict[FaultKind, Fault] = {}
        for f in self.faults:  # the first fault of each kind, in the scenario's order
            if f.start_s <= t_s < f.end_s and f.kind not in active:
                active[f.kind] = f
        self.seg_active = active

    def active(self, kind: FaultKind, t_s: float) -> Fault | None:
        """The first fault of ``kind`` active at ``t_s``, if any."""
        if not self.seg_lo <= t_s < self.seg_hi:
            self._segment(t_s)
        return self.seg_active.get(kind)

    def quiet(self, t_s: float) -> bool:
        """No fault of any kind is active at ``t_s``."""
        if not self.seg_lo <= t_s < self.seg_hi:
            self._segment(t_s)
        return not self.seg_active

    @property
    def last_end_s(self) -> float | None:
        return max((f.end_s for f in self.faults), default=None)

    @property
    def first_start_s(self) -> float | None:
        return min((f.start_s for f in self.faults), default=None)
