"""Compare a run with an earlier one (a baseline, e.g. main's results): every figure of every
policy both runs share, direction-aware, within a tolerance.

A figure may get worse than the baseline by at most its tolerance: an amount in its unit
(``success_rate: 0.01``) or a share of the baseline's value (``completion_s.p99: 10%``).
Better is always fine; figures with no direction (``jobs``) are not compared. With
replications the run's 95% CI must lie within the tolerance (straddling it is
INCONCLUSIVE). A baseline of another scenario, another mode or another results format is
refused, never compared. Nothing here prints or exits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.decide.expect import Evaluation
from sim.decide.figures import FIGURES, interval, value
from sim.decide.verdict import Bound, Status, Verdict
from sim.results import RESULTS_FORMAT
from sim.scenario.model import Tolerance

#: the tolerance of a figure neither ``--tolerance`` nor the scenario's ``tolerances`` name
DEFAULT_TOLERANCE = Tolerance(0.05, relative=True)


class BaselineError(Exception):
    """A baseline that cannot be compared with this run; the message says why."""


def baseline_file(directory: Path, scenario_name: str) -> Path:
    """``DIR/results.json`` when DIR is one run's results; else ``DIR/NAME/results.json``
    (a folder of runs, as ``herdlab check --out`` writes)."""
    direct = directory / "results.json"
    return direct if direct.exists() else directory / scenario_name / "results.json"


def load_baseline(path: Path) -> dict[str, Any]:
    """The baseline's record; BaselineError when it cannot be read or is not a complete
    herdlab results file of this format."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline (no results.json there)") from None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}:{exc.lineno}: the baseline is not JSON: {exc.msg}") from None
    if not isinstance(record, dict) or "policies" not in record or "scenario" not in record:
        raise BaselineError(f"{path}: not a herdlab results file")
    found = record.get("results_format")
    if found != RESULTS_FORMAT:
        written = f"herdlab {record.get('herdlab_version', '?')}"
        fmt = "without a format number" if found is None else f"in results format {found}"
        raise BaselineError(
            f"{path}: written by {written} {fmt};"
            f" this herdlab reads format {RESULTS_FORMAT}: make the baseline again with it"
        )
    if not record.get("complete", False):
        raise BaselineError(f"{path}: the baseline run is incomplete (it was interrupted)")
    return record


def check_comparable(record: Mapping[str, Any], baseline: Mapping[str, Any], path: Path) -> None:
    """Refuse a baseline of another scenario or mode (BaselineError)."""
    mine, theirs = record["scenario"]["name"], baseline["scenario"]["name"]
    if mine != theirs:
        raise BaselineError(f"{path}: a baseline of scenario {theirs!r}, not {mine!r}")
    if record.get("mode") != baseline.get("mode"):
        raise BaselineError(
            f"{path}: a baseline of a {baseline.get('mode')} run; this is a {record.get('mode')}"
            " run: compare runs of one mode"
        )


def compare(
    record: Mapping[str, Any],
    baseline: Mapping[str, Any],
    tolerances: Mapping[str, Tolerance],
    default: Tolerance = DEFAULT_TOLERANCE,
    where: str = "",
) -> Evaluation:
    """One verdict per (policy in both runs, directed figure measured for this service).

    ``tolerances`` by figure name; ``default`` for the others. ``where`` names the baseline
    (its path) in each verdict."""
    kind = record["scenario"].get("service_kind", "job")
    old_by_name = {p["name"]: p for p in baseline["policies"]}
    verdicts: list[Verdict] = []
    not_checked: list[str] = []
    if record.get("seed") != baseline.get("seed"):
        not_checked.append(
            f"{where}: the baseline ran seed {baseline.get('seed')}, this run {record.get('seed')}:"
            " differences include the seed's"
        )
    for entry in record["policies"]:
        name = entry["name"]
        old = old_by_name.get(name)
        if old is None:
            not_checked.append(f"{where}: policy {name} is not in the baseline")
            continue
        replicated = len(entry.get("per_replication") or ()) > 1
        for fig in FIGURES.values():
            if fig.better == "none" or kind not in fig.kinds:
                continue
            tol = tolerances.get(fig.name, default)
            was = value(old["summary"], fig.name)
            now = value(entry["summary"], fig.name)
            ci = interval(entry.get("ci95"), fig.name) if replicated else None
            verdicts.append(_judge(name, fig.name, fig.better, was, now, ci, tol, where))
    return Evaluation(tuple(verdicts), tuple(not_checked))


def _judge(
    policy: str,
    metric: str,
    better: str,
    was: float | None,
    now: float | None,
    ci: tuple[float, float] | None,
    tol: Tolerance,
    where: str,
) -> Verdict:
    def verdict(bound: str, status: Status, note: str = "") -> Verdict:
        return Verdict("baseline", policy, metric, bound, now, ci, status, note, where)

    if was is None:
        # null in the baseline is the worst a figure can be (never recovered, nothing done)
        note = "null in the baseline" + ("" if now is None else ": now measured")
        return verdict("baseline null", Status.PASS, note)
    allowed = tol.allowed(was)
    if better == "higher":
        bound = Bound(low=was - allowed)
        text = f">= {_num(was - allowed)} (baseline {_num(was)} - {tol})"
    else:
        bound = Bound(high=was + allowed)
        text = f"<= {_num(was + allowed)} (baseline {_num(was)} + {tol})"
    if now is None:
        return verdict(text, Status.FAIL, "null in this run")
    status = bound.judge(now, ci)
    note = ""
    if status is Status.INCONCLUSIVE:
        note = "the 95% CI straddles the tolerance: add replications to decide"
    return verdict(text, status, note)


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"
