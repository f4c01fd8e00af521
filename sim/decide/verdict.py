"""One verdict type for expectations, baselines and fidelity rows.

A verdict says whether an observed figure lies within a bound. With replications the
observed value has a 95% confidence interval, and a bound holds only when the whole
interval lies on the right side of it: an interval that straddles the bound is
INCONCLUSIVE (more replications would decide it), never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"

    @property
    def ok(self) -> bool:
        return self is Status.PASS


@dataclass(frozen=True, slots=True)
class Bound:
    """``low <= x <= high`` (either side may be open)."""

    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{_num(self.low)} <= x <= {_num(self.high)}"
        if self.low is not None:
            return f">= {_num(self.low)}"
        if self.high is not None:
            return f"<= {_num(self.high)}"
        return "any"

    def judge(self, observed: float | None, ci95: tuple[float, float] | None = None) -> Status:
        """PASS when the observed value (its whole CI, if given) lies within the bound, FAIL
        when it (its whole CI) lies outside, INCONCLUSIVE when the CI straddles a side.
        A missing observation (a null figure) fails: nothing was measured to hold."""
        if observed is None or not math.isfinite(observed):
            return Status.FAIL
        lo, hi = ci95 if ci95 is not None else (observed, observed)
        inside_all = (self.low is None or lo >= self.low) and (self.high is None or hi <= self.high)
        if inside_all:
            return Status.PASS
        outside_all = (self.low is not None and hi < self.low) or (
            self.high is not None and lo > self.high
        )
        if outside_all or ci95 is None:
            return Status.FAIL
        return Status.INCONCLUSIVE


@dataclass(frozen=True, slots=True)
class Verdict:
    """One checked claim: which figure of which policy, against what, and the answer.

    ``source`` says what made it: ``expect`` (a scenario's expectation), ``baseline``
    (a comparison with an earlier run), ``fidelity`` (sim against real) or ``client``
    (one rule of a lab client's conformance to a policy, ``harness/conformance.py``).
    ``where`` points at what a user would edit (``FILE:LINE`` of the expectation), when
    there is one.
    """

    source: str
    policy: str
    metric: str
    bound: str
    observed: float | None
    ci95: tuple[float, float] | None
    status: Status
    note: str = ""
    where: str = ""

    @property
    def name(self) -> str:
        """A readable id: ``policy::metric`` (the check command's and pytest's test name)."""
        return f"{self.policy}::{self.metric}"

    def observed_text(self) -> str:
        if self.observed is None:
            return "null"
        text = _num(self.observed)
        if self.ci95 is not None and self.ci95[0] != self.ci95[1]:
            text += f" [{_num(self.ci95[0])}, {_num(self.ci95[1])}]"
        return text

    def message(self) -> str:
        """One line for a terminal, a JUnit failure or a pytest failure."""
        text = (
            f"{self.status.value}: {self.policy} {self.metric} = {self.observed_text()},"
            f" expected {self.bound}"
        )
        if self.note:
            text += f" ({self.note})"
        if self.where:
            text += f" [{self.where}]"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "policy": self.policy,
            "metric": self.metric,
            "bound": self.bound,
            "observed": self.observed,
            "ci95": list(self.ci95) if self.ci95 is not None else None,
            "status": self.status.value,
            "note": self.note,
            "where": self.where,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Verdict:
        ci = d.get("ci95")
        return cls(
            source=d["source"],
            policy=d["policy"],
            metric=d["metric"],
            bound=d["bound"],
            observed=d["observed"],
            ci95=(float(ci[0]), float(ci[1])) if ci else None,
            status=Status(d["status"]),
            note=d.get("note", ""),
            where=d.get("where", ""),
        )


def overall(verdicts: list[Verdict], accept_inconclusive: bool = False) -> Status:
    """FAIL if any failed; INCONCLUSIVE if any is (and that is not accepted); else PASS."""
    statuses = {v.status for v in verdicts}
    if Status.FAIL in statuses:
        return Status.FAIL
    if Status.INCONCLUSIVE in statuses and not accept_inconclusive:
        return Status.INCONCLUSIVE
    return Status.PASS


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"
