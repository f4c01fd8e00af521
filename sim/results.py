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
from sim.cost import estimate
from sim.decide.decision import decide
from sim.decide.objective import objective_for
from sim.execute import Executor, FixedWorkload, InProcess, Unit, UnitResult, execute
from sim.execute.executors import OnProgress
from sim.policies.describe import describe_policy
from sim.policies.policy import Policy
from sim.scenario.model import Scenario
from sim.world.metrics import COUNTERS, GAUGES, JobOutcome, Recorder
from sim.world.run import Progress, run_policy
from sim.world.summary import PERCENTILES, distributions, inverted_cdf, samples, summarize

#: the layout of results.json; a baseline in another format is refused. Raise it when a
#: figure's meaning or the record's shape changes.
RESULTS_FORMAT = 1

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


def pooled_percentile(
    per_rep: Sequence[np.ndarray], q: float
) -> tuple[float, tuple[float, float]] | None:
    """The ``q``-th percentile of every replication's samples together, and its 95% CI.

    Pooling, not averaging: a mean of per-replication percentiles inherits the bias a
    percentile of a small sample has (a p99 of a few hundred values sits low), and no
    number of replications removes it. The pooled percentile's standard error is taken
    from the spread of the per-replication percentiles (sd / sqrt(R), Student t with
    R - 1 degrees of freedom), as in the method of batch means: replications are the
    independent batches, while samples within one are not independent (a queue carries
    its state from one job to the next). None when there are no samples."""
    return _pooled_percentile(_Sorted.of(per_rep), q)


class _Sorted:
    """One figure's samples, sorted once for all its percentiles: every replication's
    together (``pooled``, empty when there are none) and each non-empty one's (``each``)."""

    __slots__ = ("each", "pooled")

    def __init__(self, pooled: np.ndarray, each: list[np.ndarray]) -> None:
        self.pooled = pooled
        self.each = each

    @classmethod
    def of(cls, per_rep: Sequence[np.ndarray]) -> _Sorted:
        arrays = [np.asarray(a, dtype=float) for a in per_rep]
        pooled = np.sort(np.concatenate(arrays)) if arrays else np.empty(0)
        return cls(pooled, [np.sort(a) for a in arrays if len(a)])


def _pooled_percentile(samples: _Sorted, q: float) -> tuple[float, tuple[float, float]] | None:
    """:func:`pooled_percentile` on samples already sorted."""
    if len(samples.pooled) == 0:
        return None
    value = inverted_cdf(samples.pooled, q)
    each = [inverted_cdf(a, q) for a in samples.each]
    if len(each) < 2:
        return value, (value, value)
    half = t95(len(each) - 1) * float(np.std(each, ddof=1)) / math.sqrt(len(each))
    return value, (value - half, value + half)


def mean_and_ci(
    per_rep: Sequence[dict[str, Any]],
    per_rep_samples: Sequence[dict[str, np.ndarray]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every figure over replications, and its 95% confidence interval: the mean with a
    Student t interval, or, for the percentiles (``pooling: pooled`` in the figure
    registry) when ``per_rep_samples`` are given, :func:`pooled_percentile`."""
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
    # each figure's samples sorted once, for its several percentiles (p50, p95, p99)
    by_figure: dict[str, _Sorted] = {}
    for name, (prefix, q) in PERCENTILES.items() if per_rep_samples else ():
        assert per_rep_samples is not None
        if prefix not in by_figure:
            by_figure[prefix] = _Sorted.of([s[prefix] for s in per_rep_samples])
        pooled = _pooled_percentile(by_figure[prefix], q)
        if pooled is None:
            mean[name], ci[name] = None, None
        else:
            mean[name] = round(pooled[0], 6)
            ci[name] = [round(pooled[1][0], 6), round(pooled[1][1], 6)]
    return _unflatten(mean), _unflatten(ci)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def file_stems(names: Sequence[str]) -> dict[str, str]:
    """A distinct file-name stem per policy name: its slug, and ``-2``, ``-3``... after a
    slug an earlier name already took (``seed+full-jitter`` and ``seed-full-jitter`` both
    slug to ``seed-full-jitter``). Compared case-blind, for case-blind file systems."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        stem = slug(name)
        n = 1
        while (stem if n == 1 else f"{stem}-{n}").lower() in taken:
            n += 1
        stem = stem if n == 1 else f"{stem}-{n}"
        taken.add(stem.lower())
        out[name] = stem
    return out


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


def artifacts_of(rec: Recorder, scenario: Scenario) -> dict[str, Any]:
    """What a results folder keeps of one run besides its summary: the time-series and
    per-job CSV texts and the distributions the charts draw."""
    return {
        "timeseries_csv": timeseries_csv(rec, scenario),
        "jobs_csv": jobs_csv(rec),
        "distributions": distributions(rec),
    }


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
        "peak_window_s": scenario.peak_window_s,
        "clients": scenario.clients.count,
        "service_kind": s.kind.value,
        "capacity_per_s": round(s.capacity_per_s, 6),
        "slots": s.instances * s.concurrency,
        "faults": [
            {"kind": f.kind.value, "start_s": f.start_s, "end_s": f.end_s, "label": f.describe()}
            for f in scenario.faults
        ],
        "objective": objective_for(scenario).to_json(),
        "objective_given": scenario.objective is not None,
        "expect": [
            {
                "metric": e.metric,
                "policy": list(e.policies) if e.policies is not None else None,
                "bound": e.describe(),
                "mode": e.mode,
                "line": e.line,
            }
            for e in scenario.expect
        ],
    }


def new_record(scenario: Scenario, mode: str, seed: int, replications: int) -> dict[str, Any]:
    """The head of a results record; ``policies`` fills as each policy finishes."""
    return {
        "herdlab_version": __version__,
        "results_format": RESULTS_FORMAT,
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
    first: dict[str, Any],
    per_replication: list[dict[str, Any]],
    per_replication_samples: list[dict[str, np.ndarray]] | None = None,
    stem: str | None = None,
) -> dict[str, Any]:
    """One policy's results: the CSVs and distributions of its first replication written or
    taken (``first``: a unit's artifacts), every figure's mean (percentiles: pooled) and
    95% CI over ``per_replication`` summaries and, for the percentiles, their samples.
    ``stem`` names its files (default: the policy's slug; :func:`file_stems` keeps them
    distinct within a run)."""
    stem = stem or slug(policy.name)
    csv_name = f"timeseries-{stem}.csv"
    (out_dir / csv_name).write_text(first["timeseries_csv"])
    jobs_name = f"jobs-{stem}.csv"
    (out_dir / jobs_name).write_text(first["jobs_csv"])
    mean, ci = mean_and_ci(per_replication, per_replication_samples)
    return {
        "name": policy.name,
        "description": describe_policy(policy, draws=2000),
        "summary": mean,
        "ci95": ci,
        "per_replication": per_replication,
        "distributions": first["distributions"],
        "timeseries": csv_name,
        "jobs": jobs_name,
    }


def simulate_policy(
    scenario: Scenario,
    policy: Policy,
    out_dir: Path,
    seed: int,
    replications: int,
    progress: Progress | None = None,
    stem: str | None = None,
) -> dict[str, Any]:
    """Every replication of one policy; writes its CSVs into ``out_dir`` (named by ``stem``,
    see :func:`file_stems`) and returns its entry of ``results.json`` (a unit
    ``herdlab check`` can run in another process)."""
    per_rep = []
    per_rep_samples = []
    first: Recorder | None = None
    for r in range(replications):
        run = run_policy(scenario, policy, seed=seed, replication=r, progress=progress)
        per_rep.append(summarize(run.recorder, scenario))
        per_rep_samples.append(samples(run.recorder))
        first = first or run.recorder  # only the first replication's series is kept
    assert first is not None
    return policy_entry(
        out_dir, scenario, policy, artifacts_of(first, scenario), per_rep, per_rep_samples, stem
    )


def run_scenario(
    scenario: Scenario,
    out_dir: Path,
    policies: Sequence[Policy] | None = None,
    seed: int | None = None,
    replications: int = 1,
    progress: Progress | None = None,
    on_policy_done: Callable[[dict[str, Any]], None] | None = None,
    executor: Executor | None = None,
    on_progress: OnProgress | None = None,
) -> dict[str, Any]:
    """Simulate every policy, write ``results.json`` and CSVs into ``out_dir``, return the record.

    Every (policy, replication) is one unit of :mod:`sim.execute`, run on ``executor``
    (default: in this process, ``progress`` getting its "x% simulated" lines); replication
    r of every policy is seeded by (seed, r), so the figures do not depend on the executor.
    ``results.json`` is rewritten whenever a policy's replications are all done, with the
    policies done so far in the scenario's order, marked incomplete until the last, so an
    interrupted run keeps what it computed.
    """
    policies = tuple(policies if policies is not None else scenario.policies)
    seed = scenario.seed if seed is None else seed
    out_dir.mkdir(parents=True, exist_ok=True)
    record = new_record(scenario, "sim", seed, replications)
    stems = file_stems([p.name for p in policies])
    workload = FixedWorkload(scenario, policies)
    cost = estimate(scenario, policies)
    units = [
        Unit(f"{i}/{r}", i, seed, r, artifacts=r == 0, samples=True, cost_s=c.seconds)
        for i, c in enumerate(cost.policies)
        for r in range(replications)
    ]
    got: dict[int, dict[int, UnitResult]] = {i: {} for i in range(len(policies))}
    entries: dict[int, dict[str, Any]] = {}

    def policy_done(result: UnitResult) -> None:
        i, r = (int(x) for x in result.key.split("/"))
        got[i][r] = result
        if len(got[i]) < replications:
            return
        first = got[i][0].artifacts
        assert first is not None
        reps = [got[i][k] for k in range(replications)]
        per_rep = [u.summary for u in reps]
        per_rep_samples = [u.samples for u in reps if u.samples is not None]
        entries[i] = policy_entry(
            out_dir,
            scenario,
            policies[i],
            first,
            per_rep,
            per_rep_samples,
            stems[policies[i].name],
        )
        record["policies"] = [entries[k] for k in sorted(entries)]
        write_results(out_dir, record)
        if on_policy_done is not None:
            on_policy_done(entries[i])

    execute(
        workload,
        units,
        executor or InProcess(progress),
        on_progress=on_progress,
        on_result=policy_done,
    )
    record["complete"] = True
    record["verdict"] = verdict_record(record)
    write_results(out_dir, record)
    return record


def verdict_record(record: dict[str, Any]) -> dict[str, Any]:
    """The decision as ``results.json`` keeps it: the policies best first, the winner,
    and why (what the report and the terminal say, for tools that read the file)."""
    decision = decide(record)
    return {
        "ranking": [r.name for r in decision.ranking],
        "winner": decision.winner.name if decision.winner is not None else None,
        "why": decision.why,
        "infeasible": {r.name: list(r.broken) for r in decision.ranking if r.broken},
    }


def write_results(out_dir: Path, record: dict[str, Any]) -> None:
    path = out_dir / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
