"""What a sweep's points say: ranking, Pareto front, maps, the recommended policy.

Everything reads the points' mean summaries through the figure registry and ranks with
the scenario's one :class:`~sim.decide.objective.Objective`, as the run report does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from sim.decide.figures import figure, value
from sim.decide.objective import Objective, Ranked
from sim.sweep.spec import Choice, Parameter


def recovered(summary: Mapping[str, Any]) -> bool | None:
    """Whether the load came back to its pre-fault level (``recovery_s`` measured in every
    replication); None for a scenario without faults, where there is nothing to recover
    from."""
    if "recovery_s" not in summary:
        return None
    return summary["recovery_s"] is not None


def rank_points(objective: Objective, rows: Sequence[Mapping[str, Any]]) -> list[Ranked]:
    """Every point ranked best first by the objective (ties: the lower point id)."""
    return objective.rank(
        [(r["id"], r["summary"]) for r in rows], {r["id"]: r["ci95"] for r in rows}
    )


def default_pareto_axes(objective: Objective, service_kind: str) -> tuple[str, str]:
    """(x, y) of the Pareto chart: the first constrained figure (else the peak load ratio,
    or the attempts per job) against the objective's goal figure."""
    y = objective.metric
    for c in objective.subject_to:
        if c.metric != y:
            return c.metric, y
    x = "peak_load_ratio" if service_kind != "occ" else "completion_s.p50"
    if x == y:
        x = "attempts_per_job"
    return x, y


def pareto_front(rows: Sequence[Mapping[str, Any]], x: str, y: str) -> list[str]:
    """Ids of the points no other point beats on both figures (each in its better
    direction), sorted by x: the trade-off itself, whether or not a point meets the
    objective's constraints (the chart and the table show which do)."""
    pool = list(rows)
    fx, fy = figure(x), figure(y)

    def key(r: Mapping[str, Any]) -> tuple[float, float] | None:
        a, b = value(r["summary"], x), value(r["summary"], y)
        if a is None or b is None:
            return None
        # both as "lower is better"
        return (-a if fx.better == "higher" else a, -b if fy.better == "higher" else b)

    scored = [(key(r), r["id"]) for r in pool]
    pts = [(k, i) for k, i in scored if k is not None]
    front = []
    for k, i in pts:
        dominated = any(
            o[0] <= k[0] and o[1] <= k[1] and (o[0] < k[0] or o[1] < k[1]) for o, _ in pts
        )
        if not dominated:
            front.append((k, i))
    front.sort()
    return [i for _, i in front]


def map_axes(
    parameters: Sequence[Parameter],
    chosen: tuple[str, str] | None,
    rows: Sequence[Mapping[str, Any]],
) -> tuple[str, str] | None:
    """The two parameters of the maps: those chosen, else the only two that vary."""
    if chosen is not None:
        return chosen
    varying = [
        p.path for p in parameters if len({_hashable(r["params"][p.path]) for r in rows}) > 1
    ]
    return (varying[0], varying[1]) if len(varying) == 2 else None


def _hashable(v: Any) -> Any:
    return yaml.safe_dump(v, sort_keys=True) if isinstance(v, dict | list) else v


def maps(
    rows: Sequence[Mapping[str, Any]],
    policies: Sequence[str],
    axes: tuple[str, str],
    goal: str,
) -> dict[str, Any]:
    """Per base policy, a grid over the two map parameters: whether each cell recovered
    (all of its points did) and the mean goal figure of its points."""
    x, y = axes
    xs = _ordered(r["params"][x] for r in rows)
    ys = _ordered(r["params"][y] for r in rows)
    out: dict[str, Any] = {"x": x, "y": y, "xs": xs, "ys": ys, "goal": goal, "policies": {}}
    for name in policies:
        rec: list[list[bool | None]] = []
        val: list[list[float | None]] = []
        for yv in ys:
            rec_row: list[bool | None] = []
            val_row: list[float | None] = []
            for xv in xs:
                cell = [
                    r
                    for r in rows
                    if r["policy"] == name and r["params"][x] == xv and r["params"][y] == yv
                ]
                flags = [r["recovered"] for r in cell if r["recovered"] is not None]
                rec_row.append(all(flags) if flags else None)
                vals = [v for v in (value(r["summary"], goal) for r in cell) if v is not None]
                val_row.append(round(sum(vals) / len(vals), 6) if vals else None)
            rec.append(rec_row)
            val.append(val_row)
        out["policies"][name] = {"recovered": rec, "goal": val}
    return out


def _ordered(values: Any) -> list[Any]:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    try:
        return sorted(seen)
    except TypeError:
        return seen


def best_by_value(
    parameters: Sequence[Parameter], rows: Sequence[Mapping[str, Any]], order: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """For each listed parameter with several values: the best-ranked point at each value
    (``is +-10% jitter enough?`` is the best proportional point against the best full)."""
    place = {pid: i for i, pid in enumerate(order)}
    out: dict[str, list[dict[str, Any]]] = {}
    for p in parameters:
        if not isinstance(p.values, Choice) or len(p.values.values) < 2:
            continue
        best = []
        for v in p.values.values:
            at = [r for r in rows if r["params"][p.path] == v]
            if at:
                top = min(at, key=lambda r: place[r["id"]])
                best.append({"value": v, "id": top["id"], "rank": place[top["id"]] + 1})
        out[p.path] = best
    return out


def recommended(
    rows: Sequence[Mapping[str, Any]],
    order: Sequence[str],
    policy_of: Mapping[str, dict[str, Any]],
    scenario_paths: Sequence[str],
    objective: Objective,
) -> dict[str, Any] | None:
    """The policy to use, as a ready-to-paste YAML block. Without scenario parameters: the
    best-ranked point's policy. With them (a robustness sweep), each policy setting is
    judged over every scenario cell it met: the most cells recovered, then the best mean
    goal figure."""
    if not rows:
        return None
    by_id = {r["id"]: r for r in rows}
    if not scenario_paths:
        best = by_id[order[0]]
        why = f"rank 1 of {len(rows)} points by: {objective.describe()}" + (
            "" if best["feasible"] else " (no point met every constraint)"
        )
    else:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in rows:
            groups.setdefault(yaml.safe_dump(policy_of[r["id"]], sort_keys=True), []).append(r)
        sign = 1.0 if figure(objective.metric).better == "higher" else -1.0

        def score(cells: list[Mapping[str, Any]]) -> tuple[int, float]:
            vals = [value(c["summary"], objective.metric) for c in cells]
            got = [v for v in vals if v is not None]
            return (
                sum(bool(c["recovered"]) for c in cells),
                sign * (sum(got) / len(got)) if got else -float("inf"),
            )

        cells = max(groups.values(), key=score)
        n_rec, _ = score(cells)
        best = min(cells, key=lambda c: order.index(c["id"]))
        why = (
            f"recovered in {n_rec} of {len(cells)} scenario cells"
            f" ({', '.join(scenario_paths)}), the most of any policy setting;"
            f" ties by mean {objective.metric}"
        )
    policy = dict(policy_of[best["id"]])
    block = {
        "policies": [{"name": "recommended", **{k: v for k, v in policy.items() if k != "name"}}]
    }
    text = yaml.safe_dump(block, sort_keys=False, default_flow_style=False)
    return {"id": best["id"], "policy": policy, "why": why, "yaml": text}
