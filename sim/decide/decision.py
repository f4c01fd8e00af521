"""Which policy wins a results record under its objective, and one sentence why.

The terminal summary and the HTML report both end (or open) with this decision, made
once here from ``results.json``: the objective the scenario gave (or the default for its
service kind), every policy ranked by it, the winner, and why, with the margin over the
runner-up and whether their 95% confidence intervals overlap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.decide.figures import figure, interval, value
from sim.decide.objective import Objective, Ranked, default_objective


@dataclass(frozen=True, slots=True)
class Decision:
    """The ranking of one results record and its verdict in words."""

    objective: Objective
    objective_given: bool  # the scenario's own, not the default
    ranking: tuple[Ranked, ...]
    why: str  # one sentence

    @property
    def winner(self) -> Ranked | None:
        return self.ranking[0] if self.ranking else None

    def lines(self) -> list[str]:
        """The verdict as terminal lines: the objective, the winner and why."""
        source = "" if self.objective_given else " (default)"
        if self.winner is None:
            return [f"objective{source}: {self.objective.describe()}", "verdict: no policy ran"]
        return [
            f"objective{source}: {self.objective.describe()}",
            f"verdict: {self.winner.name}. {self.why}",
        ]


def objective_of(record: Mapping[str, Any]) -> tuple[Objective, bool]:
    """The objective a results record was ranked by, and whether the scenario gave it.
    Records written before objectives existed get the default for their service kind."""
    sc = record["scenario"]
    given = sc.get("objective")
    if given:
        return Objective.from_json(given), bool(sc.get("objective_given", False))
    return default_objective(sc["service_kind"], bool(sc.get("faults"))), False


def decide(record: Mapping[str, Any]) -> Decision:
    """Rank every policy of ``record`` by its objective and say why the first is first."""
    objective, given = objective_of(record)
    replicated = int(record.get("replications", 1)) > 1
    entries = [(p["name"], p["summary"]) for p in record["policies"]]
    cis = {p["name"]: p.get("ci95") or {} for p in record["policies"]} if replicated else None
    # A constraint on a figure no policy has (no load before the first fault: no
    # recovery_load_ratio) cannot tell policies apart: it is set aside, and said so.
    unmeasured = [
        c for c in objective.subject_to if all(value(s, c.metric) is None for _, s in entries)
    ]
    if unmeasured and entries:
        objective = dataclasses.replace(
            objective, subject_to=tuple(c for c in objective.subject_to if c not in unmeasured)
        )
    ranking = tuple(objective.rank(entries, cis))
    why = _why(objective, ranking, replicated) + _better_but_broken(objective, ranking)
    if unmeasured:
        names = ", ".join(c.metric for c in unmeasured)
        why += f" ({names} is null for every policy, so its limit was not applied.)"
    return Decision(objective, given, ranking, why)


def num(x: float | None) -> str:
    """A figure in a sentence: 3 significant digits, thousands grouped."""
    if x is None:
        return "null"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _ci_text(metric: str, a: Ranked, b: Ranked, replicated: bool) -> str:
    if not replicated:
        return "one replication, so no confidence intervals (run with --replications to get them)"
    ia, ib = interval(a.ci95, metric), interval(b.ci95, metric)
    if ia is None or ib is None:
        return "no confidence interval for this figure"
    overlap = ia[0] <= ib[1] and ib[0] <= ia[1]
    spans = f"95% CIs [{num(ia[0])}, {num(ia[1])}] and [{num(ib[0])}, {num(ib[1])}]"
    if overlap:
        return f"the {spans} overlap, so more replications could still reverse the order"
    return f"the {spans} do not overlap"


def _better_but_broken(objective: Objective, ranking: tuple[Ranked, ...]) -> str:
    """When the winner won among the feasible, and policies past the runner-up do better
    on the goal but break a constraint: how many, and the best of them."""
    if len(ranking) < 3 or not ranking[0].feasible or not ranking[1].feasible:
        return ""  # _why already says it (or nothing ranks past the runner-up)
    win = ranking[0].goal_value
    goal = figure(objective.metric)
    better = [
        r
        for r in ranking
        if not r.feasible
        and r.goal_value is not None
        and win is not None
        and goal.improves(r.goal_value, win)
    ]
    if not better:
        return ""
    best = better[0]
    for r in better[1:]:
        if (
            r.goal_value is not None
            and best.goal_value is not None
            and goal.improves(r.goal_value, best.goal_value)
        ):
            best = r
    many, verb = (
        (f"{len(better)} policies do", "break") if len(better) > 1 else ("1 policy does", "breaks")
    )
    return (
        f" {many} better on {objective.metric} (best: {best.name}, {num(best.goal_value)})"
        f" but {verb} {', '.join(best.broken)}."
    )


def _why(objective: Objective, ranking: tuple[Ranked, ...], replicated: bool) -> str:
    if not ranking:
        return "no policy ran."
    win = ranking[0]
    goal = objective.metric
    if len(ranking) == 1:
        return f"It is the only policy run ({goal} {num(win.goal_value)})."
    second = ranking[1]
    if not win.feasible:
        return (
            f"No policy meets every constraint; {win.name} breaks the fewest"
            f" ({', '.join(win.broken)}) and has {goal} {num(win.goal_value)}."
        )
    if not second.feasible:
        # the best of the rest may do better on the goal but breaks a constraint
        feasible = sum(r.feasible for r in ranking)
        only = "the only policy" if feasible == 1 else f"one of {feasible} policies"
        limits = ", ".join(
            f"{c.metric} {num(value(win.summary, c.metric))}, limit {c.bound}"
            for c in objective.subject_to
        )
        better = (
            win.goal_value is not None
            and second.goal_value is not None
            and figure(goal).improves(second.goal_value, win.goal_value)
        )
        runner = (
            f"{second.name} has the better {goal} ({num(second.goal_value)} against"
            f" {num(win.goal_value)}) but breaks {', '.join(second.broken)}"
            if better
            else f"{second.name}, next, breaks {', '.join(second.broken)}"
        )
        return f"It is {only} within every constraint ({limits}); {runner}."
    a, b = win.goal_value, second.goal_value
    if a is not None and b is not None and abs(a - b) <= objective.tie_tolerance:
        for name in objective.then:
            va, vb = value(win.summary, name), value(second.summary, name)
            if va is not None and vb is not None and va != vb:
                return (
                    f"It ties with {second.name} on {goal} ({num(a)} and {num(b)}, within"
                    f" {num(objective.tie_tolerance)}) and has the better {name}:"
                    f" {num(va)} against {num(vb)}, a margin of {num(abs(va - vb))};"
                    f" {_ci_text(name, win, second, replicated)}."
                )
        return f"It ties with {second.name} on every figure of the objective ({goal} {num(a)})."
    if a is None or b is None:
        return f"It has {goal} {num(a)}; {second.name} has {num(b)}."
    best = "highest" if objective.goal == "maximize" else "lowest"
    feasible = sum(r.feasible for r in ranking)
    scope = (
        f"Of the {feasible} policies within every constraint, it"
        if feasible < len(ranking)
        else "It"
    )
    return (
        f"{scope} has the {best} {goal}, {num(a)} against {num(b)} for {second.name}, a margin"
        f" of {num(abs(a - b))}; {_ci_text(goal, win, second, replicated)}."
    )
