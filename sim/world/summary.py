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
_LOST = (JobOutcome.FAILED, JobOutcome.GAVE_UP, JobOutcome.TIMED_OUT)


def offered_per_s(rec: Recorder, bucket_s: float) -> np.ndarray:
    c = rec.counters
    total = c["offered_first"] + c["offered_retry"] + c["offered_reconnect"]
    return np.asarray(total, dtype=float) / bucket_s


def goodput_per_s(rec: Recorder, bucket_s: float) -> np.ndarray:
    """Completions whose client received the result, per second, per bucket (by end time)."""
    return np.asarray(rec.counters["completed"], dtype=float) / bucket_s


def backlog(rec: Recorder) -> np.ndarray:
    """Work still owed, per bucket: jobs queued at the service plus clients waiting out a
    retry's or a reconnect's delay."""
    return np.asarray(rec.gauges["queue_length"] + rec.gauges["clients_backing_off"], dtype=float)


def send_times_s(rec: Recorder) -> np.ndarray:
    """Every offered request's send time, in order (a real run records them out of order)."""
    t = np.asarray(rec.sent_s, dtype=float)
    if len(t) > 1 and bool(np.any(t[1:] < t[:-1])):
        t = np.sort(t)
    return t


def peak_per_s(
    sent_s: np.ndarray, window_s: float, start_s: float = -math.inf, end_s: float = math.inf
) -> float:
    """The most requests sent in any window ``[t, t + window_s)`` whose start ``t`` lies in
    ``[start_s, end_s)``, per second. Exact, from the send times: no bucket is involved.
    The busiest window can always start at a send (slide it right to its first request),
    so only windows starting at a send are counted."""
    i0 = int(np.searchsorted(sent_s, start_s, "left"))
    i1 = int(np.searchsorted(sent_s, end_s, "left"))
    if i1 <= i0:
        return 0.0
    starts = sent_s[i0:i1]
    counts = np.searchsorted(sent_s, starts + window_s, "left") - np.arange(i0, i1)
    return float(counts.max()) / window_s


def _pre_fault(scenario: Scenario) -> tuple[float, float] | None:
    """The window the pre-fault level is measured in: up to 10 s before the first fault."""
    if not scenario.faults:
        return None
    first = min(f.start_s for f in scenario.faults)
    lo = max(0.0, first - PRE_FAULT_WINDOW_S)
    return (lo, first) if first > lo else None


def baseline_offered_per_s(sent_s: np.ndarray, scenario: Scenario) -> float | None:
    """Requests per second sent in the 10 s (at most) before the first fault."""
    window = _pre_fault(scenario)
    if window is None:
        return None
    lo, hi = window
    n = int(np.searchsorted(sent_s, hi, "left") - np.searchsorted(sent_s, lo, "left"))
    return n / (hi - lo)


def load_ratios(
    sent_s: np.ndarray, scenario: Scenario, baseline: float | None
) -> tuple[float | None, float | None]:
    """(peak during the faults, peak after the last fault ended) over the baseline: the
    busiest ``peak_window_s`` whose start lies within a fault window, and the busiest
    one starting between the last fault's end and the end of the scenario."""
    if not baseline:
        return None, None
    w = scenario.peak_window_s
    during = max(peak_per_s(sent_s, w, f.start_s, f.end_s) for f in scenario.faults)
    last = max(f.end_s for f in scenario.faults)
    after = peak_per_s(sent_s, w, last, max(last, scenario.duration_s))
    return round(during / baseline, 6), round(after / baseline, 6)


def _trailing_mean(x: np.ndarray, width: int) -> np.ndarray:
    out: np.ndarray = np.convolve(x, np.ones(width) / width, mode="full")[: len(x)]
    return out


def reads_gauges(scenario: Scenario) -> bool:
    """Whether :func:`summarize` reads the recorder's gauges (the backlog, for
    :func:`recovery_s`): only when the scenario has a pre-fault window."""
    return _pre_fault(scenario) is not None


def recovery_s(rec: Recorder, scenario: Scenario) -> float | None:
    """Seconds from the end of the last fault until the system serves its users as before:
    goodput (completions a client received), as a trailing 2 s mean, is at least 90% of
    its mean over the 10 s before the first fault, and the backlog (queue + clients
    waiting to retry or reconnect), as a trailing 2 s mean, is back within 10% (+1) of its
    pre-fault mean. None if that never happens within the scenario's duration, if there
    is no pre-fault goodput to compare with, or if the faults made users give up: when
    jobs that ended without their result after the first fault began (beyond the
    pre-fault rate of such ends) exceed 10% of the completions the pre-fault goodput
    gives over the faults' span. A quiet system whose clients gave up has not recovered."""
    window = _pre_fault(scenario)
    if window is None:
        return None
    first, last = window[1], max(f.end_s for f in scenario.faults)
    b = scenario.bucket_s
    lo, hi = int(window[0] / b), int(first / b)
    if hi <= lo:
        return None
    good = goodput_per_s(rec, b)
    base_good = float(good[lo:hi].mean())
    if base_good <= 0:
        return None
    # giving up is not recovering
    outcome = np.asarray(rec.outcome, dtype=np.int64)
    ended = np.asarray(rec.ended_s)
    lost_at = ended[np.isin(outcome, _LOST)]
    pre_lost_rate = float(np.count_nonzero((lost_at >= window[0]) & (lost_at < first))) / (
        first - window[0]
    )
    end_s = max(rec.end_s, first)
    excess_lost = np.count_nonzero(lost_at >= first) - pre_lost_rate * (end_s - first)
    if excess_lost > RECOVERY_BAND * base_good * (last - first):
        return None
    owed = backlog(rec)
    base_owed = float(owed[lo:hi].mean())
    width = max(1, round(RECOVERY_SMOOTHING_S / b))
    good_s, owed_s = _trailing_mean(good, width), _trailing_mean(owed, width)
    start = math.ceil(last / b) + width - 1  # the window lies wholly after the fault
    end = min(len(good), math.ceil(scenario.duration_s / b))
    for i in range(start, end):
        if (
            good_s[i] >= (1 - RECOVERY_BAND) * base_good
            and owed_s[i] <= (1 + RECOVERY_BAND) * base_owed + 1
        ):
            return round((i + 1) * b - last, 6)
    return None


def inverted_cdf(ordered: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of the sorted, non-empty ``ordered``: the observation
    ``np.percentile(x, q, method="inverted_cdf")`` gives, by the same float operations
    (virtual index ``n * (q / 100) - 1``, up to the next whole one), at a twentieth of
    its cost, which a summary pays per percentile and run."""
    index = len(ordered) * (q / 100) - 1
    below = math.floor(index)
    i = below if index - below == 0 else below + 1
    return float(ordered[max(i, 0)])


def _percentile(ordered: np.ndarray, q: float) -> float | None:
    """The ``q``-th percentile of sorted ``ordered`` (inverted CDF: an observed value),
    rounded; None if empty. The same definition pools replications (:mod:`sim.results`)."""
    return round(inverted_cdf(ordered, q), 6) if len(ordered) else None


def completion_times_s(rec: Recorder) -> np.ndarray:
    """Arrival to result, for every job whose client received the result."""
    done = np.asarray(rec.outcome, dtype=np.int64) == JobOutcome.COMPLETED
    times: np.ndarray = (np.asarray(rec.ended_s) - np.asarray(rec.arrival_s))[done]
    return times


def samples(rec: Recorder) -> dict[str, np.ndarray]:
    """The samples a percentile figure is computed from, by figure-name prefix: what
    replications pool (:func:`sim.results.mean_and_ci`)."""
    return {
        "completion_s": completion_times_s(rec),
        "queue_wait_s": np.asarray(rec.queue_wait_s, dtype=float),
    }


#: percentile figures: name -> (sample prefix, q)
PERCENTILES = {
    "completion_s.p50": ("completion_s", 50.0),
    "completion_s.p95": ("completion_s", 95.0),
    "completion_s.p99": ("completion_s", 99.0),
    "queue_wait_s.p95": ("queue_wait_s", 95.0),
}


def summarize(rec: Recorder, scenario: Scenario) -> dict[str, Any]:
    """The figures of :mod:`sim.decide.figures`, for one policy in one replication."""
    outcome = np.asarray(rec.outcome, dtype=np.int64)
    n = len(outcome)
    counts = np.bincount(outcome, minlength=len(JobOutcome))
    ended = np.asarray(rec.ended_s)
    done = outcome == JobOutcome.COMPLETED
    completion = completion_times_s(rec)
    ordered = np.sort(completion)  # once, for its three percentiles
    sent = send_times_s(rec)
    peak = peak_per_s(sent, scenario.peak_window_s)
    occ = scenario.service.kind is ServiceKind.OCC
    capacity = scenario.service.capacity_per_s if not occ else 0.0
    baseline = baseline_offered_per_s(sent, scenario)
    fault_ratio, recovery_ratio = load_ratios(sent, scenario, baseline)
    waits = np.asarray(rec.queue_wait_s, dtype=float)
    completed = int(counts[JobOutcome.COMPLETED])
    if occ:  # a client's result takes one read and one write
        amplification = rec.server_calls / (2 * completed) if completed else None
        wasted = None
    else:
        took_on = rec.admitted_work_s > 0
        amplification = (
            rec.admitted_work_s / rec.useful_work_s if took_on and rec.useful_work_s > 0 else None
        )
        wasted = round(rec.admitted_work_s - rec.useful_work_s, 6) if took_on else None

    return {
        "jobs": n,
        "success_rate": round(float(done.mean()), 6) if n else None,
        "attempts_per_job": round(float(np.mean(rec.attempts)), 6) if n else None,
        "completion_s": {q: _percentile(ordered, p) for q, p in _Q.items()},
        "peak_offered_per_s": round(peak, 6),
        "peak_load_ratio": round(peak / capacity, 6) if capacity > 0 else None,
        "baseline_offered_per_s": round(baseline, 6) if baseline is not None else None,
        "fault_load_ratio": fault_ratio,
        "recovery_load_ratio": recovery_ratio,
        "recovery_s": recovery_s(rec, scenario),
        "outcomes": {o.key: int(counts[o]) for o in JobOutcome if o is not JobOutcome.PENDING},
        "completed_unseen": rec.completed_unseen,
        "work_amplification": round(amplification, 6) if amplification is not None else None,
        "wasted_work_s": wasted,
        "queue_wait_s": {
            "mean": round(float(waits.mean()), 6) if len(waits) else None,
            "p95": _percentile(np.sort(waits), 95.0),
        },
        "server_calls": rec.server_calls,
        "server_writes": rec.server_writes,
        "server_reads": rec.server_calls - rec.server_writes,
        "events_lost": int(sum(rec.events_lost)),
        "events_duplicated": int(sum(rec.events_duplicated)),
        "reconnects_per_job": round(float(np.mean(rec.reconnects)), 6) if n else None,
        "orphaned_jobs": rec.orphaned_jobs,
        "degraded_accepts": rec.degraded_accepts,
        "makespan_s": round(float(ended.max()), 6) if n else None,
    }


_Q = {"p50": 50.0, "p95": 95.0, "p99": 99.0}


def distributions(rec: Recorder) -> dict[str, Any]:
    """Compact per-job distributions for charts: attempts histogram, completion quantiles."""
    completion = completion_times_s(rec)
    attempts: list[int] = (
        np.bincount(np.asarray(rec.attempts, dtype=np.int64)).tolist() if rec.attempts else []
    )
    quantiles = (
        [
            round(float(x), 6)
            for x in np.percentile(completion, np.arange(0, 101), method="inverted_cdf")
        ]
        if len(completion)
        else []
    )
    return {
        "attempts_histogram": {str(k): int(v) for k, v in enumerate(attempts) if v},
        "completion_s_quantiles": quantiles,
    }
