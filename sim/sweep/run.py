"""Run a sweep: points through the executor, results into ``sweep.json`` and ``points.csv``.

Every finished (point, replication) is stored in ``OUT/points/`` under its key at once, so
an interrupted sweep keeps it, and a re-run, or a sweep extended by more values or trials,
computes only what is missing. Outputs hold no times and no paths of workers: the same
sweep writes the same bytes on any executor.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sim import __version__
from sim.decide.figures import names as figure_names
from sim.execute import Executor, ResultCache, Unit, UnitResult, execute
from sim.execute.executors import OnProgress
from sim.results import mean_and_ci, scenario_record
from sim.scenario.errors import ScenarioError
from sim.sweep import analysis
from sim.sweep.points import Point, SweepWorkload, strategy_points
from sim.sweep.spec import Choice, SweepSpec


class SweepInterrupted(Exception):
    """Raised (from KeyboardInterrupt) after the finished points were written."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.record = record


def _units(
    workload: SweepWorkload,
    points: Sequence[Point],
    replications: int,
    costs: Mapping[int, float],
    keys: dict[str, list[str]],
) -> list[Unit]:
    """Every point's units; each point's unit keys go into ``keys`` (by point id)."""
    out: list[Unit] = []
    for p in points:
        units = workload.units(p, replications, costs[p.index])
        keys[p.id] = [u.key for u in units]
        out.extend(units)
    return out


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    executor: Executor,
    on_progress: OnProgress | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every point of ``spec`` (the cached ones are read, not run), write the outputs,
    return the sweep record. ScenarioError when a point cannot be built (before anything
    runs, for grid / random / halton). On KeyboardInterrupt the points finished so far are
    written (``complete: false``) and SweepInterrupted is raised."""
    out_dir.mkdir(parents=True, exist_ok=True)
    workload = SweepWorkload.of(spec)
    cache = ResultCache(out_dir / "points")
    done: dict[str, UnitResult] = {}
    keys: dict[str, list[str]] = {}  # point id -> its units' keys
    points: list[Point] = []

    def keep(result: UnitResult) -> None:
        done[result.key] = result

    try:
        if spec.strategy == "search":
            from sim.sweep.search import search

            def run_batch(batch: Sequence[Point]) -> list[Mapping[str, Any] | None]:
                costs = {}
                for p in batch:
                    with contextlib.suppress(ScenarioError):  # told the sampler: failed
                        costs[p.index] = workload.cost_s(p)
                points.extend(batch)
                buildable = [p for p in batch if p.index in costs]
                units = _units(workload, buildable, spec.replications, costs, keys)
                execute(workload, units, executor, cache, on_progress, keep)
                by_point = _summaries(buildable, keys, done)
                return [by_point.get(p.id, (None, None))[0] for p in batch]

            search(spec, workload, run_batch, on_batch)
        else:
            points = strategy_points(spec)
            costs = workload.check(points, str(spec.file), spec.line)
            units = _units(workload, points, spec.replications, costs, keys)
            execute(workload, units, executor, cache, on_progress, keep)
    except KeyboardInterrupt:
        record = sweep_record(spec, workload, points, keys, done, complete=False)
        write_outputs(out_dir, record)
        raise SweepInterrupted(record) from None
    record = sweep_record(spec, workload, points, keys, done, complete=True)
    write_outputs(out_dir, record)
    return record


def _summaries(
    points: Sequence[Point],
    keys: Mapping[str, Sequence[str]],
    done: Mapping[str, UnitResult],
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Summary and CI of every point whose replications all finished: means over the
    replications, the percentiles pooled over their samples (:func:`mean_and_ci`)."""
    out = {}
    for p in points:
        mine = keys.get(p.id, ())
        if mine and all(k in done for k in mine):
            results = [done[k] for k in mine]
            samples = [r.samples for r in results if r.samples is not None]
            pooled = samples if len(samples) == len(results) > 1 else None
            out[p.id] = mean_and_ci([r.summary for r in results], pooled)
    return out


def sweep_record(
    spec: SweepSpec,
    workload: SweepWorkload,
    points: Sequence[Point],
    keys: Mapping[str, Sequence[str]],
    done: Mapping[str, UnitResult],
    complete: bool,
) -> dict[str, Any]:
    """The sweep's record (``sweep.json``): every finished point, ranked and analysed."""
    from sim.scenario.loader import build_scenario

    summaries = _summaries(points, keys, done)
    names = spec.policy_names
    objective = spec.objective
    rows: list[dict[str, Any]] = []
    policy_of: dict[str, dict[str, Any]] = {}
    for p in points:
        if p.id not in summaries:
            continue
        mean, ci = summaries[p.id]
        _, policy = workload.plain(p)
        policy_of[p.id] = policy
        rows.append(
            {
                "id": p.id,
                "policy": names[p.policy],
                "params": {q.path: v for q, v in zip(spec.parameters, p.values, strict=True)},
                "summary": mean,
                "ci95": ci,
                "recovered": analysis.recovered(mean) if spec.values["faults"] else None,
            }
        )
    ranked = analysis.rank_points(objective, rows)
    place = {r.name: r for r in ranked}
    for row in rows:
        r = place[row["id"]]
        row["rank"] = r.rank
        row["feasible"] = r.feasible
        row["broken"] = list(r.broken)
    order = [r.name for r in ranked]
    kind = spec.values["service"]["kind"]
    px, py = spec.pareto_xy or analysis.default_pareto_axes(objective, kind)
    axes = analysis.map_axes(spec.parameters, spec.map_xy, rows) if rows else None
    scenario_paths = [q.path for q in spec.parameters if not q.in_policy]
    base = build_scenario(
        {**spec.values, "expect": []},
        fresh_checker(spec),
        spec.scenario_file,
        spec.raw,
    )
    return {
        "herdlab_version": __version__,
        "complete": complete,
        "name": spec.name,
        "sweep_file": str(spec.file),
        "scenario": scenario_record(base),
        "strategy": spec.strategy,
        "trials": spec.trials if spec.strategy != "grid" else None,
        "seed": spec.seed,
        "replications": spec.replications,
        "objective": objective.describe(),
        "policies": list(names),
        "parameters": [_parameter_record(q) for q in spec.parameters],
        "points_planned": len(points),
        "points": rows,
        "ranking": order,
        "pareto": {"x": px, "y": py, "front": analysis.pareto_front(rows, px, py)},
        "maps": analysis.maps(rows, names, axes, objective.metric) if axes else None,
        "best_by_value": analysis.best_by_value(spec.parameters, rows, order),
        "recommended": analysis.recommended(rows, order, policy_of, scenario_paths, objective),
    }


def fresh_checker(spec: SweepSpec) -> Any:
    import yaml

    from sim.scenario.grammar import Checker

    return Checker(str(spec.scenario_file), yaml.SafeLoader(""), [], spec.lines)


def _parameter_record(q: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"path": q.path, "in": "policy" if q.in_policy else "scenario"}
    if isinstance(q.values, Choice):
        out["values"] = list(q.values.values)
    else:
        out["range"] = [q.values.low, q.values.high]
        out["log"] = q.values.log
        out["points"] = q.values.points
    return out


def points_csv(record: Mapping[str, Any]) -> str:
    """One row per point: id, policy, parameters, rank, feasible, recovered, then every
    figure of the registry with its 95% CI (``.lo`` / ``.hi``)."""
    params = [p["path"] for p in record["parameters"]]
    figs = figure_names(record["scenario"]["service_kind"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["id", "policy", *params, "rank", "feasible", "recovered"]
        + [c for f in figs for c in (f, f"{f}.lo", f"{f}.hi")]
    )
    from sim.decide.figures import interval, value

    for row in record["points"]:
        cells: list[Any] = [row["id"], row["policy"]]
        cells += [_cell(row["params"][p]) for p in params]
        rec = row["recovered"]
        cells += [row["rank"], int(row["feasible"]), "" if rec is None else int(rec)]
        for f in figs:
            v = value(row["summary"], f)
            ci = interval(row["ci95"], f)
            cells += ["" if v is None else v, *(("", "") if ci is None else ci)]
        w.writerow(cells)
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return "null" if v is None else v


def write_outputs(out_dir: Path, record: Mapping[str, Any]) -> None:
    """``sweep.json`` and ``points.csv``, each written whole and renamed into place."""
    for name, text in (
        ("sweep.json", json.dumps(record, indent=2, allow_nan=False) + "\n"),
        ("points.csv", points_csv(record)),
    ):
        tmp = out_dir / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out_dir / name)
