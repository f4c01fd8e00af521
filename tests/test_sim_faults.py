"""One test per fault kind: each shows up where and when the scenario says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.world.metrics import JobOutcome

from .simhelp import base, run_world, scenario_from


def window(world, name: str, start_s: float, end_s: float) -> int:  # type: ignore[no-untyped-def]
    b = world.scenario.bucket_s
    return int(world.rec.counters[name][int(start_s / b) : int(end_s / b)].sum())


def outside(world, name: str, start_s: float, end_s: float) -> int:  # type: ignore[no-untyped-def]
    return int(world.rec.counters[name].sum()) - window(world, name, start_s, end_s)


def test_outage_503_rejects_only_inside_its_window_and_seed_retries_succeed(tmp_path: Path) -> None:
    w = run_world(scenario_from(tmp_path, base("  - {kind: outage, start_s: 5, end_s: 7}")))
    assert window(w, "rejected_503", 4.9, 7) > 0
    assert outside(w, "rejected_503", 4.9, 7) == 0
    assert w.rec.outcome.count(JobOutcome.COMPLETED) == len(w.rec.outcome)


def test_outage_refuse_gives_connection_refused(tmp_path: Path) -> None:
    w = run_world(
        scenario_from(tmp_path, base("  - {kind: outage, start_s: 5, end_s: 7, answer: refuse}"))
    )
    assert window(w, "error_refused", 4.9, 7) > 0
    assert w.rec.counters["rejected_503"].sum() == 0
    # the seed plan does not retry a refused connection: those clients fail
    assert JobOutcome.FAILED in w.rec.outcome


def test_latency_spike_slows_answers_into_timeouts(tmp_path: Path) -> None:
    spike = (
        "  - {kind: latency_spike, start_s: 5, end_s: 10,"
        " extra_latency: {kind: constant, value_s: 3}}"
    )
    w = run_world(scenario_from(tmp_path, base(spike)))
    assert window(w, "error_timeout", 5, 10) > 0  # 3 s extra > the 2 s request timeout
    assert outside(w, "error_timeout", 5, 10) == 0


def test_loss_makes_clients_wait_for_their_timeout(tmp_path: Path) -> None:
    w = run_world(
        scenario_from(tmp_path, base("  - {kind: loss, start_s: 5, end_s: 10, probability: 0.5}"))
    )
    lost = window(w, "error_timeout", 5, 10)
    sent = (
        window(w, "offered_first", 5, 10)
        + window(w, "offered_retry", 5, 10)
        + window(w, "offered_reconnect", 5, 10)
    )
    assert 0.3 < lost / sent < 0.7


def test_reset_gives_econnreset(tmp_path: Path) -> None:
    w = run_world(
        scenario_from(tmp_path, base("  - {kind: reset, start_s: 5, end_s: 10, probability: 1}"))
    )
    assert window(w, "error_reset", 5, 10) > 0
    assert outside(w, "error_reset", 5, 10) == 0


def test_refuse_fault_gives_econnrefused(tmp_path: Path) -> None:
    w = run_world(
        scenario_from(tmp_path, base("  - {kind: refuse, start_s: 5, end_s: 10}", "full-jitter"))
    )
    assert window(w, "error_refused", 5, 10) > 0


def test_partition_loses_everything_in_its_window(tmp_path: Path) -> None:
    w = run_world(scenario_from(tmp_path, base("  - {kind: partition, start_s: 5, end_s: 6}")))
    sent = window(w, "offered_first", 5, 6) + window(w, "offered_retry", 5, 6)
    assert sent > 0 and window(w, "error_timeout", 5, 6) == sent


def test_stream_drop_cuts_streams_and_resume_loses_nothing(tmp_path: Path) -> None:
    w = run_world(
        scenario_from(
            tmp_path, base("  - {kind: stream_drop, start_s: 8, end_s: 9, fraction: 1.0}")
        )
    )
    assert sum(w.rec.reconnects) > 0
    assert window(w, "offered_reconnect", 8, 20) == sum(w.rec.reconnects)
    assert sum(w.rec.events_lost) == 0 and sum(w.rec.events_duplicated) == 0


def test_stream_drop_without_resume_duplicates_events(tmp_path: Path) -> None:
    text = base("  - {kind: stream_drop, start_s: 8, end_s: 9}").replace(
        "  - seed-default", "  - {name: restart, base: seed-default, reconnect: {resume: false}}"
    )
    w = run_world(scenario_from(tmp_path, text))
    assert sum(w.rec.events_duplicated) > 0


def test_store_outage_degrades_gracefully(tmp_path: Path) -> None:
    w = run_world(scenario_from(tmp_path, base("  - {kind: store_outage, start_s: 2, end_s: 6}")))
    assert w.service.degraded_accepts > 0
    assert w.rec.counters["rejected_503"].sum() == 0


def test_store_outage_fails_with_503_when_configured(tmp_path: Path) -> None:
    text = base("  - {kind: store_outage, start_s: 2, end_s: 6}").replace(
        "  progress_events: 10", "  progress_events: 10\n  store_on_outage: fail"
    )
    w = run_world(scenario_from(tmp_path, text))
    assert w.service.degraded_accepts == 0
    assert window(w, "rejected_503", 1.9, 6) > 0


def test_capacity_drop_queues_work_then_drains(tmp_path: Path) -> None:
    w = run_world(
        scenario_from(
            tmp_path, base("  - {kind: capacity_drop, start_s: 2, end_s: 8, instances: 0}")
        )
    )
    b = w.scenario.bucket_s
    queue = w.rec.gauges["queue_length"]
    busy = w.rec.gauges["busy_slots"]
    assert queue[int(7 / b)] > 0
    assert queue[int(12 / b)] < queue[int(7 / b)]
    assert w.rec.gauges["active_instances"][int(5 / b)] == 0
    assert busy.max() <= 100


def test_errors_fault_answers_its_status(tmp_path: Path) -> None:
    fault = "  - {kind: errors, start_s: 5, end_s: 10, probability: 1, status: 502}"
    w = run_world(scenario_from(tmp_path, base(fault)))
    assert window(w, "rejected_other", 4.9, 10) > 0
    assert outside(w, "rejected_other", 4.9, 10) == 0


def test_rate_limit_answers_429_and_retry_after_is_honoured(tmp_path: Path) -> None:
    text = base(count=300, spread=1).replace(
        "  progress_events: 10",
        "  progress_events: 10\n  rate_limit: {rate_per_s: 50, burst: 10, retry_after_s: 2}",
    )
    w = run_world(scenario_from(tmp_path, text))
    assert w.rec.counters["rejected_429"].sum() > 0


def test_job_deadline_gives_a_clear_timed_out_outcome(tmp_path: Path) -> None:
    w = run_world(scenario_from(tmp_path, base(job_timeout=1.5, count=20)))
    assert set(w.rec.outcome) == {JobOutcome.TIMED_OUT}
    ends = np.asarray(w.rec.ended_s) - np.asarray(w.rec.arrival_s)
    assert np.allclose(ends, 1.5)


def test_autoscaling_adds_instances_after_a_cold_start(tmp_path: Path) -> None:
    text = (
        base(count=600, spread=5)
        .replace(
            "  progress_events: 10",
            "  progress_events: 10\n"
            "  autoscale: {max_instances: 8, cold_start_s: 3, interval_s: 1}",
        )
        .replace("queue_limit: 50", "queue_limit: 1000")
    )
    w = run_world(scenario_from(tmp_path, text))
    instances = w.rec.gauges["active_instances"]
    b = w.scenario.bucket_s
    assert instances[int(2.9 / b)] == 2  # nothing is warm before a cold start ends
    assert instances.max() > 2


ALL_SERVICE_FAULTS = """\
  - {kind: outage, start_s: 3, end_s: 6, retry_after_s: 1}
  - {kind: outage, start_s: 9, end_s: 11, answer: refuse}
  - {kind: errors, start_s: 12, end_s: 16, probability: 0.4, status: 502}
  - {kind: store_outage, start_s: 14, end_s: 18}
  - {kind: stream_drop, start_s: 4, end_s: 20, every_s: 3, fraction: 0.5}
  - {kind: capacity_drop, start_s: 17, end_s: 19, instances: 1}"""


def test_arrivals_the_fault_timeline_decides_need_no_event_and_change_nothing(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A request whose answer the fault timeline alone fixes (an outage, a quiet stream
    connect) is answered when sent, without simulating its arrival; every figure must be
    what simulating each arrival gives."""
    from sim.world.service import JobService

    scenario = scenario_from(tmp_path, base(ALL_SERVICE_FAULTS, count=400))
    fast = run_world(scenario)
    monkeypatch.setattr(JobService, "settled", lambda self, at_s, stream: None)
    slow = run_world(scenario)
    assert fast.rec.counters["rejected_503"].sum() > 0  # the outage was met
    assert fast.rec.counters["error_refused"].sum() > 0
    assert fast.rec.counters["rejected_other"].sum() > 0  # the errors fault drew
    for name in fast.rec.counters:
        assert np.array_equal(fast.rec.counters[name], slow.rec.counters[name]), name
    for name in fast.rec.gauges:
        assert np.array_equal(fast.rec.gauges[name], slow.rec.gauges[name]), name
    assert fast.rec.outcome == slow.rec.outcome
    assert fast.rec.ended_s == slow.rec.ended_s
    assert fast.rec.attempts == slow.rec.attempts
    assert fast.rec.reconnects == slow.rec.reconnects
    assert fast.env.now == slow.env.now


def test_a_job_accepted_after_its_deadline_times_out_at_once(tmp_path: Path) -> None:
    """The create answer comes back after the job's deadline (a round trip of 1.6 s, a
    deadline of 1 s): the client does not wait for a job it has no time left for."""
    text = (
        base(count=1, spread=0, job_timeout=1, follow=False)
        .replace("value_s: 0.01", "value_s: 0.8")
        .replace(
            "service_time: {kind: constant, value_s: 2}",
            "service_time: {kind: constant, value_s: 5}",
        )
    )
    w = run_world(scenario_from(tmp_path, text))
    assert list(w.rec.outcome) == [JobOutcome.TIMED_OUT]
    assert w.rec.ended_s[0] == pytest.approx(1.6)
    assert w.rec.accepted_s[0] == pytest.approx(1.6)


def test_a_job_orphaned_by_an_earlier_attempt_does_not_complete_a_later_one(
    tmp_path: Path,
) -> None:
    """Attempt 1 is admitted but its answer is late (a 1.5 s latency spike each way, a
    2 s request timeout): the client gives up on it and the job runs on, an orphan,
    finishing at 3.51 s. Attempt 2 (~3 s) meets a connection reset; attempt 3 (~5 s) is
    accepted. The orphan's end is not the client's job's end: the client waits the
    service time of the job attempt 3 made."""
    text = base(
        "  - {kind: latency_spike, start_s: 0, end_s: 1,"
        " extra_latency: {kind: constant, value_s: 1.5}}\n"
        "  - {kind: reset, start_s: 2.5, end_s: 3.4}",
        count=1,
        spread=0,
        follow=False,
    )
    w = run_world(scenario_from(tmp_path, text))
    assert w.rec.orphaned_jobs == 1
    assert w.rec.counters["error_reset"].sum() == 1
    assert list(w.rec.attempts) == [3]
    assert list(w.rec.outcome) == [JobOutcome.COMPLETED]
    assert w.rec.ended_s[0] - w.rec.accepted_s[0] == pytest.approx(2.0 - 0.01, abs=1e-9)


def test_an_orphan_that_ends_before_its_client_gives_up_does_not_complete_it(
    tmp_path: Path,
) -> None:
    """Attempt 1 is admitted (1.51 s) and its 0.3 s job ends (1.81 s) before the client's
    2 s request timeout; its 201 is still on the way back. The client never learns of
    that job: when attempt 2 (~3 s) is accepted it waits for attempt 2's own job."""
    text = base(
        "  - {kind: latency_spike, start_s: 0, end_s: 1,"
        " extra_latency: {kind: constant, value_s: 1.5}}",
        count=1,
        spread=0,
        follow=False,
    ).replace(
        "service_time: {kind: constant, value_s: 2}",
        "service_time: {kind: constant, value_s: 0.3}",
    )
    w = run_world(scenario_from(tmp_path, text))
    assert w.rec.orphaned_jobs == 1
    assert list(w.rec.attempts) == [2]
    assert list(w.rec.outcome) == [JobOutcome.COMPLETED]
    assert w.rec.ended_s[0] - w.rec.accepted_s[0] == pytest.approx(0.3 - 0.01, abs=1e-9)
