"""Fidelity: the simulation of a scenario against a real run of it, figure by figure.

For every policy run on both sides, each figure in :data:`COMPARED` gives one row: the
simulated value, the real one, the tolerance (the scenario's ``fidelity:`` block, or
its defaults) and a :class:`~sim.decide.verdict.Verdict` with source ``fidelity``:
PASS when the real value lies within the tolerance of the simulated one.

Two things can make a row mean less than PASS / FAIL says, and a row says so:

- **by construction**: the real harness cannot make this figure the way the model does
  (say, a toxic with toxicity below 1 picks pooled connections, not requests). Such a
  row is INCONCLUSIVE with the reason, not a failure;
- **degraded**: the real run could not keep its own schedule (``harness/watch.py``),
  so its figures describe the harness as much as the policy. The row keeps its
  status, marked.

The success rate is compared in percentage points (absolute); every other figure
relatively, ``|real - sim| <= tolerance * |sim|``, with a small absolute floor where the
figure is measured in steps (recovery in buckets of the trailing mean, peak load in
whole requests per window).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sim.decide.figures import figure, value
from sim.decide.verdict import Bound, Status, Verdict
from sim.scenario.model import Fidelity

SOURCE = "fidelity"


@dataclass(frozen=True, slots=True)
class Compared:
    """One figure of the fidelity table and the ``fidelity:`` key of its tolerance."""

    figure: str
    key: str
    absolute: bool = False  # the tolerance is in the figure's unit, not relative
    scale: float = 1.0  # the tolerance's unit in the figure's (percentage points: 0.01)


COMPARED = (
    Compared("success_rate", "success_rate_pp", absolute=True, scale=0.01),
    Compared("attempts_per_job", "attempts_per_job"),
    Compared("completion_s.p50", "completion_p50"),
    Compared("completion_s.p95", "completion_p95"),
    Compared("peak_offered_per_s", "peak_offered"),
    Compared("recovery_s", "recovery"),
)
for _c in COMPARED:  # every compared figure is a registered one
    figure(_c.figure)


@dataclass(frozen=True, slots=True)
class Floors:
    """Absolute floors of relative tolerances, in each figure's unit: the resolution the
    figure is measured with (a difference below it is no difference)."""

    recovery_s: float = 0.0
    peak_offered_per_s: float = 0.0

    def of(self, name: str) -> float:
        return {"recovery_s": self.recovery_s, "peak_offered_per_s": self.peak_offered_per_s}.get(
            name, 0.0
        )


@dataclass(frozen=True, slots=True)
class FidelityRow:
    """One figure of one policy, sim against real, with its verdict."""

    verdict: Verdict
    sim: float | None
    real: float | None
    tolerance: str
    by_construction: str = ""
    degraded: bool = False

    @property
    def counts(self) -> bool:
        """Whether the row decides the table's status (by-construction rows do not)."""
        return not self.by_construction

    def to_json(self) -> dict[str, Any]:
        return {
            **self.verdict.to_json(),
            "sim": self.sim,
            "real": self.real,
            "tolerance": self.tolerance,
            "by_construction": self.by_construction,
            "degraded": self.degraded,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FidelityRow:
        return cls(
            verdict=Verdict.from_json(d),
            sim=d.get("sim"),
            real=d.get("real"),
            tolerance=d.get("tolerance", ""),
            by_construction=d.get("by_construction", ""),
            degraded=bool(d.get("degraded", False)),
        )


def tolerance_text(c: Compared, tol: float) -> str:
    if c.absolute:
        return f"± {tol:g} pp" if c.scale == 0.01 else f"± {tol:g}"
    return f"± {tol * 100:g}%"


def judge(
    c: Compared,
    tol: float,
    sim: float | None,
    real: float | None,
    floor: float = 0.0,
) -> tuple[Status, str, str]:
    """The status of one comparison, the bound as text and a note."""
    if sim is None and real is None:
        return Status.PASS, "null on both sides", "null on both sides"
    if sim is None or real is None:
        side = "sim" if sim is None else "real"
        return Status.FAIL, "a value on both sides", f"null in {side} only"
    width = tol * c.scale if c.absolute else max(tol * abs(sim), floor)
    bound = Bound(sim - width, sim + width)
    return bound.judge(real), str(bound), ""


def chance_pp(p_sim: float, n_sim: int, p_real: float, n_real: int) -> float:
    """Half-width, in percentage points, of the 95% band two independent samples of one
    success probability differ by: ``1.96 * sqrt(p (1 - p) (1/n1 + 1/n2))``, p pooled."""
    if n_sim <= 0 or n_real <= 0:
        return 0.0
    p = (p_sim * n_sim + p_real * n_real) / (n_sim + n_real)
    return 100 * 1.96 * math.sqrt(p * (1 - p) * (1 / n_sim + 1 / n_real))


def compare(
    sim: Mapping[str, Mapping[str, Any]],
    real: Mapping[str, Mapping[str, Any]],
    tolerances: Fidelity,
    *,
    floors: Floors | None = None,
    degraded: Collection[str] = (),
    by_construction: Mapping[str, str] | None = None,
    independent_draws: bool = False,
) -> list[FidelityRow]:
    """The fidelity table: for every policy in both ``sim`` and ``real`` (name ->
    summary), one row per compared figure.

    ``degraded`` names the policies whose real run was degraded; ``by_construction``
    maps a figure name, or ``policy::figure``, to why that figure cannot match.
    ``independent_draws``: each side draws some faults with its own dice (a toxic's
    toxicity, a share of streams cut), so even two faithful worlds differ by chance;
    the success rate's tolerance then widens to the 95% band of that chance when wider
    (with 100 jobs at p = 0.15, about ± 10 pp)."""
    floors = floors or Floors()
    notes = by_construction or {}
    rows: list[FidelityRow] = []
    for policy, sim_summary in sim.items():
        if policy not in real:
            continue
        real_summary = real[policy]
        for c in COMPARED:
            tol = float(getattr(tolerances, c.key))
            s, r = value(sim_summary, c.figure), value(real_summary, c.figure)
            text = tolerance_text(c, tol)
            if independent_draws and c.figure == "success_rate" and s is not None and r is not None:
                n_s, n_r = (
                    int(value(sim_summary, "jobs") or 0),
                    int(value(real_summary, "jobs") or 0),
                )
                band = chance_pp(s, n_s, r, n_r)
                if band > tol:
                    tol = round(band, 1)
                    text = f"{text} (± {tol:g} pp: chance)"
            status, bound, note = judge(c, tol, s, r, floors.of(c.figure))
            reason = notes.get(f"{policy}::{c.figure}", notes.get(c.figure, ""))
            if reason:
                status = Status.INCONCLUSIVE
                note = f"cannot match by construction: {reason}"
            is_degraded = policy in degraded
            if is_degraded:
                note = "; ".join(x for x in (note, "from a degraded real run") if x)
            sim_text = "null" if s is None else f"{s:.4g}"
            verdict = Verdict(
                source=SOURCE,
                policy=policy,
                metric=c.figure,
                bound=f"{bound} (sim {sim_text} {text})",
                observed=r,
                ci95=None,
                status=status,
                note=note,
                where=f"fidelity.{c.key}",
            )
            rows.append(FidelityRow(verdict, s, r, text, reason, is_degraded))
    return rows


def table_status(rows: list[FidelityRow]) -> Status:
    """PASS when every row that counts passes; FAIL when any fails; rows that cannot
    match by construction do not count."""
    statuses = {row.verdict.status for row in rows if row.counts}
    if Status.FAIL in statuses:
        return Status.FAIL
    if Status.INCONCLUSIVE in statuses:
        return Status.INCONCLUSIVE
    return Status.PASS
