"""One objective ranks policies: a goal, constraints, tie-breakers.

``objective: {maximize: success_rate, subject_to: {recovery_load_ratio: {max: 3}},
then: [completion_s.p99]}`` reads: among the policies that meet every constraint, the one
with the highest success rate; ties (within ``tie_tolerance`` of the goal figure) go to the
lowest p99. Policies that break a constraint rank after every one that does not, fewest
broken first. The report's verdict, the sweep's ranking and relative expectations all rank
with this one object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sim.decide.figures import figure, interval, value
from sim.decide.verdict import Bound

if TYPE_CHECKING:
    from sim.scenario.model import Scenario

Goal = Literal["maximize", "minimize"]


@dataclass(frozen=True, slots=True)
class Constraint:
    metric: str
    bound: Bound

    def __str__(self) -> str:
        return f"{self.metric} {self.bound}"

    def holds(self, summary: Mapping[str, Any]) -> bool:
        x = value(summary, self.metric)
        if x is None:
            return False
        return (self.bound.low is None or x >= self.bound.low) and (
            self.bound.high is None or x <= self.bound.high
        )


@dataclass(frozen=True, slots=True)
class Ranked:
    """One policy's place: 1 is the best."""

    rank: int
    name: str
    goal_value: float | None
    feasible: bool
    broken: tuple[str, ...]  # the constraints it breaks, as text
    summary: Mapping[str, Any] = field(repr=False)
    ci95: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Objective:
    metric: str
    goal: Goal
    subject_to: tuple[Constraint, ...] = ()
    then: tuple[str, ...] = ()
    #: goal values within this of the best (among policies breaking as many constraints)
    #: count as a tie with it, decided by ``then``
    tie_tolerance: float = 0.0

    def __post_init__(self) -> None:
        for name in (self.metric, *self.then, *(c.metric for c in self.subject_to)):
            figure(name)  # UnknownFigure for a name the registry does not know

    def describe(self) -> str:
        text = f"{self.goal} {self.metric}"
        if self.subject_to:
            text += " subject to " + ", ".join(str(c) for c in self.subject_to)
        if self.then:
            text += ", then " + ", ".join(f"{_direction(m)} {m}" for m in self.then)
        return text

    def _key(self, summary: Mapping[str, Any], best: dict[int, float]) -> tuple[Any, ...]:
        broken = sum(not c.holds(summary) for c in self.subject_to)
        goal = value(summary, self.metric)
        # None (nothing measured) ranks last among equals; maximize sorts on the negation
        goal_key = (1, 0.0) if goal is None else (0, -goal if self.goal == "maximize" else goal)
        if (
            goal is not None
            and broken in best
            and abs(goal_key[1] - best[broken]) <= self.tie_tolerance
        ):
            goal_key = (0, best[broken])  # tied with the best of its class: then decides
        tail: list[tuple[int, float]] = []
        for name in self.then:
            x = value(summary, name)
            sign = -1.0 if figure(name).better == "higher" else 1.0
            tail.append((1, 0.0) if x is None else (0, sign * x))
        return (broken, goal_key, *tail)

    def rank(
        self,
        entries: Sequence[tuple[str, Mapping[str, Any]]],
        ci95: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Ranked]:
        """Every (name, summary) ranked best first; stable for equal keys (input order)."""
        best: dict[int, float] = {}
        if self.tie_tolerance > 0:
            for _, summary in entries:
                key = self._key(summary, {})
                if key[1][0] == 0:
                    best[key[0]] = min(best.get(key[0], key[1][1]), key[1][1])
        order = sorted(range(len(entries)), key=lambda i: self._key(entries[i][1], best))
        out = []
        for place, i in enumerate(order, start=1):
            name, summary = entries[i]
            broken = tuple(str(c) for c in self.subject_to if not c.holds(summary))
            out.append(
                Ranked(
                    rank=place,
                    name=name,
                    goal_value=value(summary, self.metric),
                    feasible=not broken,
                    broken=broken,
                    summary=summary,
                    ci95=(ci95 or {}).get(name),
                )
            )
        return out

    def goal_interval(self, ranked: Ranked) -> tuple[float, float] | None:
        return interval(ranked.ci95, self.metric)

    def to_json(self) -> dict[str, Any]:
        """The objective as ``results.json`` keeps it (the scenario grammar's shape)."""
        return {
            self.goal: self.metric,
            "subject_to": {
                c.metric: {"min": c.bound.low, "max": c.bound.high} for c in self.subject_to
            },
            "then": list(self.then),
            "tie_tolerance": self.tie_tolerance,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Objective:
        goal: Goal = "maximize" if "maximize" in d else "minimize"
        return cls(
            str(d[goal]),
            goal,
            tuple(
                Constraint(name, Bound(b.get("min"), b.get("max")))
                for name, b in d.get("subject_to", {}).items()
            ),
            tuple(d.get("then", ())),
            float(d.get("tie_tolerance", 0.0)),
        )


def _direction(name: str) -> str:
    better = figure(name).better
    return "highest" if better == "higher" else "lowest" if better == "lower" else "by"


#: how close two success rates must be to count as a tie in the default objective
DEFAULT_SUCCESS_TIE = 0.001
#: the default objective's limit on the surge after the last fault, in x the pre-fault load
DEFAULT_MAX_RECOVERY_LOAD = 3.0


def default_objective(service_kind: str, faults: bool = True) -> Objective:
    """What a scenario without ``objective:`` is ranked by. For a job or rpc service: the
    most users served (success rates within 0.1 percentage point tie), subject to a
    recovery surge of at most 3x the pre-fault load when there are faults, then the
    fewest attempts per job, then the shortest p99 completion. For OCC, the 2015 post's
    two views: the fewest writes, then the earliest finish."""
    if service_kind == "occ":
        return Objective("server_writes", "minimize", then=("makespan_s",))
    limits = (
        (Constraint("recovery_load_ratio", Bound(high=DEFAULT_MAX_RECOVERY_LOAD)),)
        if faults
        else ()
    )
    return Objective(
        "success_rate",
        "maximize",
        subject_to=limits,
        then=("attempts_per_job", "completion_s.p99"),
        tie_tolerance=DEFAULT_SUCCESS_TIE,
    )


def objective_for(scenario: Scenario) -> Objective:
    """The scenario's own objective, or the default for its service kind."""
    if scenario.objective is not None:
        return scenario.objective
    return default_objective(scenario.service.kind.value, bool(scenario.faults))
