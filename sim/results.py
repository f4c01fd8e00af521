"""Results of a scenario run: ``results.json`` and one time-series CSV per policy.

Same scenario + seed gives byte-identical files: no timestamps, no dict-order
accidents, floats written by ``repr`` after rounding.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim import __version__
from sim.policies.describe import describe_policy
from sim.policies.policy import Policy
from sim.scenario.model import Scenario
from sim.world.metrics import COUNTERS, GAUGES, JobOutcome, Recorder
from sim.world.run import Progress, run_policy
from sim.world.summary import distributions, summarize

# two-sided 95% Student t quantiles for n-1 degrees of freedom
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    15: 2.131,
    20: 2.086,
    30: 2.042,
}


def t95(dof: int) -> float:
    for k in sorted(_T95, reverse=True):
        if dof >= k:
            return _T95[k] if dof <= 30 else 1.96
    return _T95[1]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _unflatten(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in d.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


def mean_and_ci(per_rep: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mean of every figure over replications, and its 95% confidence interval."""
    flat = [_flatten(s) for s in per_rep]
    mean: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    for key in flat[0]:
        values = [f[key] for f in flat]
        if any(v is None for v in values):
            mean[key] = None
            ci[key] = None
            continue
        arr = np.asarray(values, dtype=float)
        m = float(arr.mean())
        mean[key] = round(m, 6)
        if len(arr) > 1:
            half = t95(len(arr) - 1) * float(arr.std(ddof=1)) / math.sqrt(len(arr))
            ci[key] = [round(m - half, 6), round(m + half, 6)]
        else:
            ci[key] = [round(m, 6), round(m, 6)]
    return _unflatten(mean), _unflatten(ci)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def timeseries_csv(rec: Recorder, scenario: Scenario) -> str:
    """Per-bucket counters (by send time) and gauges (at bucket end)."""
    # buckets the sampler closed before the run ended: later gauges were never sampled
    n = min(max(1, int(rec.end_s / scenario.bucket_s)), rec.n)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["t_s", *COUNTERS, *GAUGES])
    for i in range(n):
        w.writerow(
            [round(i * scenario.bucket_s, 6)]
            + [int(rec.counters[c][i]) for c in COUNTERS]
            + [int(rec.gauges[g][i]) for g in GAUGES]
        )
    return buf.getvalue()


JOB_COLUMNS = (
    "job",
    "arrival_s",
    "outcome",
    "attempts",
    "reconnects",
    "accepted_after_s",
    "ended_after_s",
    "events_lost",
    "events_duplicated",
)


def jobs_csv(rec: Recorder) -> str:
    """One row per client's job: how it ended, after how many attempts and reconnects,
    when it was accepted and ended (seconds after its arrival; empty if never)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(JOB_COLUMNS)
    for i, arrival in enumerate(rec.arrival_s):
        accepted, ended = rec.accepted_s[i], rec.ended_s[i]
        w.writerow(
            [
                i,
                round(arrival, 6),
                JobOutcome(rec.outcome[i]).key,
                rec.attempts[i],
                rec.reconnects[i],
                round(accepted - arrival, 6) if accepted >= 0 else "",
                round(ended - arrival, 6) if ended >= 0 else "",
                rec.events_lost[i],
                rec.events_duplicated[i],
            ]
        )
    return buf.getvalue()


def scenario_record(scenario: Scenario) -> dict[str, Any]:
    s = scenario.service
    return {
        "name": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "sha256": scenario.sha256,
        "seed": scenario.seed,
        "duration_s": scenario.duration_s,
        "bucket_s": scenario.bucket_s,
        "clients": scenario.clients.count,
        "service_kind": s.kind.value,
        "capacity_per_s": round(s.capacity_per_s, 6),
        "slots": s.instances * s.concurrency,
        "faults": [
            {"kind": f.kind.value, "start_s": f.start_s, "end_s": f.end_s, "label": f.describe()}
            for f in scenario.faults
        ],
        "expect": [
            {"metric": e.metric, "policy": e.policy, "min": e.min, "max": e.max}
            for e in scenario.expect
        ],
    }


def new_record(scenario: Scenario, mode: str, seed: int, replications: int) -> dict[str, Any]:
    """The head of a results record; ``policies`` fills as each policy finishes."""
    return {
        "herdlab_version": __version__,
        "mode": mode,
        "complete": False,
        "seed": seed,
        "replications": replications,
        "scenario": scenario_record(scenario),
        "policies": [],
    }


def policy_entry(
    out_dir: Path,
    scenario: Scenario,
    policy: Policy,
    first: Recorder,
    per_replication: list[dict[str, Any]],
) -> dict[str, Any]:
    """One policy's results: the CSV and distributions of its first replication written or
    taken, every figure's mean and 95% CI over ``per_replication`` summaries."""
    csv_name = f"timeseries-{slug(policy.name)}.csv"
    (out_dir / csv_name).write_text(timeseries_csv(first, scenario))
    jobs_name = f"jobs-{slug(policy.name)}.csv"
    (out_dir / jobs_name).write_text(jobs_csv(first))
    mean, ci = mean_and_ci(per_replication)
    return {
        "name": policy.name,
        "description": describe_policy(policy, draws=2000),
        "summary": mean,
        "ci95": ci,
        "per_replication": per_replication,
        "distributions": distributions(first),
        "timeseries": csv_name,
        "jobs": jobs_name,
    }


def run_scenario(
    scenario: Scenario,
    out_dir: Path,
    policies: Sequence[Policy] | None = None,
    seed: int | None = None,
    replications: int = 1,
    progress: Progress | None = None,
    on_policy_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Simulate every policy, write ``results.json`` and CSVs into ``out_dir``, return the record.

    ``results.json`` is rewritten after every policy, marked incomplete until the
    last, so an interrupted run keeps what it computed.
    """
    policies = list(policies if policies is not None else scenario.policies)
    seed = scenario.seed if seed is None else seed
    out_dir.mkdir(parents=True, exist_ok=True)
    record = new_record(scenario, "sim", seed, replications)
    for policy in policies:
        per_rep = []
        first: Recorder | None = None
        for r in range(replications):
            run = run_policy(scenario, policy, seed=seed, replication=r, progress=progress)
            per_rep.append(summarize(run.recorder, scenario))
            first = first or run.recorder  # only the first replication's series is kept
        assert first is not None
        entry = policy_entry(out_dir, scenario, policy, first, per_rep)
        record["policies"].append(entry)
        write_results(out_dir, record)
        if on_policy_done is not None:
            on_policy_done(entry)
    record["complete"] = True
    write_results(out_dir, record)
    return record


def write_results(out_dir: Path, record: dict[str, Any]) -> None:
    path = out_dir / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
