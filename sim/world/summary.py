"""Summary figures of a policy run, under the names ``results.json`` uses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.scenario.model import Scenario, ServiceKind
from sim.world.metrics import JobOutcome, Recorder

RECOVERY_BAND = 0.10  # "back within 10% of its pre-fault level"
RECOVERY_SMOOTHING_S = 2.0  # rolling mean, so Poisson noise does not decide recovery
PRE_FAULT_WINDOW_S = 10.0


def offered_per_s(rec: Recorder, bucket_s: float) -> np.ndarray:
    c = rec.counters
    total = c["offered_first"] + c["offered_retry"] + c["offered_reconnect"]
    return np.asarray(total, dtype=float) / bucket_s


def recovery_s(rec: Recorder, scenario: Scenario) -> float | None:
    """Seconds from the end of the last fault until offered load, smoothed over 2 s, is back
    within 10% of its level in the 10 s before the first fault; None if it never is."""
    if not scenario.faults:
        return None
    first = min(f.start_s for f in scenario.faults)
    last = max(f.end_s for f in scenario.faults)
    b = scenario.bucket_s
    load = offered_per_s(rec, b)
    lo, hi = int(max(0.0, first - PRE_FAULT_WINDOW_S) / b), int(first / b)
    if hi <= lo:
        return None
    baseline = float(load[lo:hi].mean())
    if baseline <= 0:
        return None
    width = max(1, round(RECOVERY_SMOOTHING_S / b))
    smooth = np.convolve(load, np.ones(width) / width, mode="full")[: len(load)]  # trailing mean
    start = math.ceil(last / b) + width - 1  # the window lies wholly after the fault
    end = min(len(load), math.ceil(scenario.duration_s / b))
    for i in range(start, end):
        if abs(smooth[i] - baseline) <= RECOVERY_BAND * baseline:
            return round((i + 1) * b - last, 6)
    return None


def summarize(rec: Recorder, scenario: Scenario) -> dict[str, Any]:
    """The figures the issue names, for one policy in one replication."""
    outcome = np.asarray(rec.outcome, dtype=np.int64)
    n = len(outcome)
    counts = np.bincount(outcome, minlength=len(JobOutcome))
    arrival = np.asarray(rec.arrival_s)
    ended = np.asarray(rec.ended_s)
    done = outcome == JobOutcome.COMPLETED
    completion = ended[done] - arrival[done]
    load = offered_per_s(rec, scenario.bucket_s)
    peak = float(load.max()) if len(load) else 0.0
    capacity = (
        scenario.service.capacity_per_s if scenario.service.kind is not ServiceKind.OCC else 0.0
    )

    def pct(q: float) -> float | None:
        return round(float(np.percentile(completion, q)), 6) if len(completion) else None

    return {
        "jobs": n,
        "success_rate": round(float(done.mean()), 6) if n else None,
        "attempts_per_job": round(float(np.mean(rec.attempts)), 6) if n else None,
        "completion_s": {"p50": pct(50), "p95": pct(95), "p99": pct(99)},
        "peak_offered_per_s": round(peak, 6),
        "peak_load_ratio": round(peak / capacity, 6) if capacity > 0 else None,
        "recovery_s": recovery_s(rec, scenario),
        "outcomes": {o.key: int(counts[o]) for o in JobOutcome if o is not JobOutcome.PENDING},
        "server_calls": rec.server_calls,
        "events_lost": int(sum(rec.events_lost)),
        "events_duplicated": int(sum(rec.events_duplicated)),
        "reconnects_per_job": round(float(np.mean(rec.reconnects)), 6) if n else None,
        "orphaned_jobs": rec.orphaned_jobs,
        "degraded_accepts": rec.degraded_accepts,
        "makespan_s": round(float(ended.max()), 6) if n else None,
    }


def distributions(rec: Recorder) -> dict[str, Any]:
    """Compact per-job distributions for charts: attempts histogram, completion quantiles."""
    outcome = np.asarray(rec.outcome, dtype=np.int64)
    done = outcome == JobOutcome.COMPLETED
    completion = (np.asarray(rec.ended_s) - np.asarray(rec.arrival_s))[done]
    attempts: list[int] = (
        np.bincount(np.asarray(rec.attempts, dtype=np.int64)).tolist() if rec.attempts else []
    )
    quantiles = (
        [round(float(x), 6) for x in np.percentile(completion, np.arange(0, 101))]
        if len(completion)
        else []
    )
    return {
        "attempts_histogram": {str(k): int(v) for k, v in enumerate(attempts) if v},
        "completion_s_quantiles": quantiles,
    }
