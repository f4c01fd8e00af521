"""A scenario's expectations, checked against a run's results: one Verdict per (expectation,
policy).

An expectation bounds one figure (``{metric: success_rate, min: 0.99}``) or compares it with
another policy's in the same run (``{metric: peak_offered_per_s, at_most: exponential,
times: 0.25}``). With replications a bound holds only when the figure's 95% confidence
interval lies on its side; a comparison is judged on the paired differences of the
replications (every policy sees the same arrivals and faults per replication), so the noise
the two policies share cancels. Nothing here prints or exits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.decide.figures import figure, interval, value
from sim.decide.verdict import Bound, Status, Verdict, overall
from sim.scenario.model import Expectation, Relative

#: what an INCONCLUSIVE verdict tells the user to do
MORE_REPLICATIONS = "the 95% CI straddles the bound: add replications (--replications) to decide"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The verdicts of one run, and the expectations that could not be checked in it."""

    verdicts: tuple[Verdict, ...] = ()
    #: one line each: an expectation that names a policy the run did not include, or that
    #: is limited to the other mode
    not_checked: tuple[str, ...] = field(default=())

    def status(self, accept_inconclusive: bool = False) -> Status:
        return overall(list(self.verdicts), accept_inconclusive)

    def __add__(self, other: Evaluation) -> Evaluation:
        return Evaluation(self.verdicts + other.verdicts, self.not_checked + other.not_checked)


def evaluate(
    expectations: Sequence[Expectation],
    entries: Sequence[Mapping[str, Any]],
    mode: str,
    source: str,
) -> Evaluation:
    """Check every expectation against the policy entries of a run (``results.json``'s
    ``policies``: name, summary, ci95, per_replication) made in ``mode`` (sim or real).
    ``source`` is the scenario file, for the ``FILE:LINE`` of each verdict."""
    by_name = {str(e["name"]): e for e in entries}
    verdicts = [
        check(exp, by_name[name], by_name, f"{source}:{exp.line}")
        for exp, name in planned(expectations, list(by_name), mode)
    ]
    not_checked: list[str] = []
    for exp in expectations:
        where = f"{source}:{exp.line}"
        if exp.mode is not None and exp.mode != mode:
            not_checked.append(f"{where}: {exp.metric}: applies to {exp.mode} runs only")
            continue
        missing = [p for p in exp.policies or () if p not in by_name]
        if exp.relative is not None and exp.relative.other not in by_name:
            missing.append(exp.relative.other)
        if missing:
            not_checked.append(
                f"{where}: {exp.metric}: this run has no policy {', '.join(missing)}"
            )
    return Evaluation(tuple(verdicts), tuple(not_checked))


def planned(
    expectations: Sequence[Expectation], policies: Sequence[str], mode: str | None
) -> list[tuple[Expectation, str]]:
    """The (expectation, policy) pairs a run of ``policies`` in ``mode`` checks, in order:
    each expectation for each policy it names (every policy when it names none), but not the
    policy a relative expectation compares with, and none whose reference did not run.
    ``mode`` None: both modes."""
    out = []
    for exp in expectations:
        if mode is not None and exp.mode is not None and exp.mode != mode:
            continue
        if exp.relative is not None and exp.relative.other not in policies:
            continue
        for name in policies:
            if exp.applies_to(name) and (exp.relative is None or name != exp.relative.other):
                out.append((exp, name))
    return out


def unique_names(pairs: Sequence[tuple[str, str, int]]) -> list[str]:
    """``policy::metric`` for each (policy, metric, line), with ``@line`` added where one
    policy and metric are checked by more than one expectation (``seed-default::success_rate@33``).
    The check command's JUnit names and the pytest plugin's test ids both read this."""
    counts: dict[tuple[str, str], int] = {}
    for policy, metric, _ in pairs:
        counts[(policy, metric)] = counts.get((policy, metric), 0) + 1
    return [
        f"{policy}::{metric}@{line}" if counts[(policy, metric)] > 1 else f"{policy}::{metric}"
        for policy, metric, line in pairs
    ]


def check(
    exp: Expectation,
    entry: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    where: str,
) -> Verdict:
    """One expectation for one policy's entry (``by_name`` holds the other policies, for a
    relative expectation)."""
    summary = entry["summary"]
    observed = value(summary, exp.metric)
    ci = interval(entry.get("ci95"), exp.metric) if _replications(entry) > 1 else None
    if exp.relative is not None:
        return _relative(exp, exp.relative, entry, by_name[exp.relative.other], where)
    status = Bound(exp.min, exp.max).judge(observed, ci)
    return Verdict(
        source="expect",
        policy=str(entry["name"]),
        metric=exp.metric,
        bound=exp.describe(),
        observed=observed,
        ci95=ci,
        status=status,
        note=_note(status, observed, exp.metric),
        where=where,
    )


def _relative(
    exp: Expectation,
    rel: Relative,
    entry: Mapping[str, Any],
    other: Mapping[str, Any],
    where: str,
) -> Verdict:
    mine = value(entry["summary"], exp.metric)
    theirs = value(other["summary"], exp.metric)
    n = _replications(entry)
    ci = interval(entry.get("ci95"), exp.metric) if n > 1 else None
    bound_text = rel.describe()

    def verdict(status: Status, note: str) -> Verdict:
        return Verdict(
            "expect", str(entry["name"]), exp.metric, bound_text, mine, ci, status, note, where
        )

    if mine is None or theirs is None:
        null = str(entry["name"]) if mine is None else rel.other
        return verdict(Status.FAIL, f"{exp.metric} of {null} is null in this run")
    threshold = rel.threshold(theirs)
    bound_text = f"{bound_text} (= {_num(threshold)})"
    side = Bound(low=0.0) if rel.direction == "at_least" else Bound(high=0.0)
    diffs = _paired(exp.metric, rel, entry, other)
    if diffs is None:
        status = side.judge(mine - threshold)
        return verdict(status, "")
    mean = sum(diffs) / len(diffs)
    half = _t95(len(diffs) - 1) * _sd(diffs) / math.sqrt(len(diffs))
    status = side.judge(mean, (mean - half, mean + half))
    note = (
        f"paired over {len(diffs)} replications: margin {_num(mean)}"
        f" [{_num(mean - half)}, {_num(mean + half)}]"
    )
    if status is Status.INCONCLUSIVE:
        note += f"; {MORE_REPLICATIONS}"
    return verdict(status, note)


def _paired(
    metric: str, rel: Relative, entry: Mapping[str, Any], other: Mapping[str, Any]
) -> list[float] | None:
    """Per replication: this policy's figure minus the threshold from the other's, signed so
    that >= 0 holds for at_least and <= 0 for at_most; None without 2+ paired replications."""
    mine = entry.get("per_replication") or []
    theirs = other.get("per_replication") or []
    if len(mine) < 2 or len(mine) != len(theirs):
        return None
    out = []
    for a, b in zip(mine, theirs, strict=True):
        x, y = value(a, metric), value(b, metric)
        if x is None or y is None:
            return None
        out.append(x - rel.threshold(y))
    return out


def _replications(entry: Mapping[str, Any]) -> int:
    return len(entry.get("per_replication") or ()) or 1


def _note(status: Status, observed: float | None, metric: str) -> str:
    if observed is None:
        return f"null in this run: {figure(metric).definition}"
    if status is Status.INCONCLUSIVE:
        return MORE_REPLICATIONS
    return ""


def _sd(xs: Sequence[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _t95(dof: int) -> float:
    from sim.results import t95

    return t95(dof)


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def checks_record(
    evaluation: Evaluation,
    accept_inconclusive: bool,
    baseline: str | None = None,
) -> dict[str, Any]:
    """What ``results.json`` keeps under ``checks``: the overall status, every verdict, what
    was not checked, and the baseline compared with (if any)."""
    return {
        "status": evaluation.status(accept_inconclusive).value,
        "accept_inconclusive": accept_inconclusive,
        "baseline": baseline,
        "verdicts": [v.to_json() for v in evaluation.verdicts],
        "not_checked": list(evaluation.not_checked),
    }
