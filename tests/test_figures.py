"""The summary figures that answer "which policy?": what each one counts, and its invariants."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sim.scenario import load_scenario
from sim.world.summary import offered_per_s, summarize

from .simhelp import SCENARIOS, base, run_world, scenario_from

# Steady arrivals, so there is a pre-fault level to come back to; a 503 outage at 20-30 s.
STEADY = """\
name: steady
seed: 7
duration_s: 80
bucket_s: 0.1
clients:
  arrival: {{kind: poisson, schedule: [{{from_s: 0, rate_per_s: 20}}]}}
  job_timeout_s: 60
  request_timeout_s: 2
  follow_stream: false
service:
  instances: 2
  concurrency: 50
  queue_limit: 100
  service_time: {{kind: constant, value_s: 1}}
network:
  latency: {{kind: constant, value_s: 0.01}}
faults:
  - {{kind: outage, start_s: 20, end_s: 30, answer: "503"}}
policies:
  - no-retry
  - name: patient
    base: full-jitter
    retry: {{max_attempts: 40, backoff: {{base_s: 0.5, cap_s: 2}}}}
{extra}
"""


def summaries(scenario_text: str, tmp_path: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    scenario = scenario_from(tmp_path, scenario_text)
    return {
        p.name: summarize(run_world(scenario, i).rec, scenario)
        for i, p in enumerate(scenario.policies)
    }


# ------------------------------------------------------------------ peak load


@pytest.mark.parametrize("policy", ["exponential", "full-jitter"])
def test_peak_offered_load_does_not_depend_on_the_bucket_width(policy: str) -> None:
    herd = load_scenario(SCENARIOS / "thundering-herd.yaml")
    herd = dataclasses.replace(herd, clients=dataclasses.replace(herd.clients, count=4000))
    index = [p.name for p in herd.policies].index(policy)
    by_bucket = {}
    bucketed_peak = {}
    for bucket_s in (0.1, 1.0):
        scenario = dataclasses.replace(herd, bucket_s=bucket_s)
        rec = run_world(scenario, index).rec
        by_bucket[bucket_s] = summarize(rec, scenario)
        bucketed_peak[bucket_s] = float(offered_per_s(rec, bucket_s).max())
    fine, coarse = by_bucket[0.1], by_bucket[1.0]
    for name in (
        "peak_offered_per_s",
        "baseline_offered_per_s",
        "fault_load_ratio",
        "recovery_load_ratio",
    ):
        assert fine[name] == coarse[name], name
    # what the old figure (the busiest bucket) gave: it moved with the bucket
    assert bucketed_peak[0.1] > 1.2 * bucketed_peak[1.0]


def test_a_shorter_peak_window_sees_a_higher_or_equal_peak() -> None:
    herd = load_scenario(SCENARIOS / "thundering-herd.yaml")
    herd = dataclasses.replace(herd, clients=dataclasses.replace(herd.clients, count=4000))
    rec = run_world(herd, 1).rec  # exponential: synchronized waves
    peaks = [
        summarize(rec, dataclasses.replace(herd, peak_window_s=w))["peak_offered_per_s"]
        for w in (5.0, 1.0, 0.1)
    ]
    assert peaks == sorted(peaks)
    # 5 s windows cover a whole wave: the peak there is at least the mean over any 5 s
    assert peaks[0] >= 0.2 * peaks[1]


def test_load_ratios_compare_with_the_load_before_the_first_fault(tmp_path: Path) -> None:
    s = summaries(STEADY.format(extra=""), tmp_path)
    for name in ("no-retry", "patient"):
        # 20 jobs/s, each one create: the baseline is the arrival rate
        assert s[name]["baseline_offered_per_s"] == pytest.approx(20, rel=0.25)
    assert s["no-retry"]["fault_load_ratio"] < 2  # one attempt each, whatever happens
    # the patient policy's retries pile up during the outage and arrive with the recovery
    assert s["patient"]["recovery_load_ratio"] > s["no-retry"]["recovery_load_ratio"]


def test_without_faults_there_is_no_baseline_and_no_ratio(tmp_path: Path) -> None:
    s = summaries(
        STEADY.format(extra="")
        .replace('  - {kind: outage, start_s: 20, end_s: 30, answer: "503"}\n', "")
        .replace("faults:\n", "faults: []\n"),
        tmp_path,
    )
    for summary in s.values():
        assert summary["baseline_offered_per_s"] is None
        assert summary["fault_load_ratio"] is None and summary["recovery_load_ratio"] is None
        assert summary["recovery_s"] is None


# ------------------------------------------------------------------ recovery


def test_giving_up_is_not_recovering(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, STEADY.format(extra=""))
    runs = {p.name: run_world(scenario, i).rec for i, p in enumerate(scenario.policies)}
    s = {name: summarize(rec, scenario) for name, rec in runs.items()}
    # no-retry gives up on every job that met the outage: its offered load is back to
    # normal as soon as the outage ends (what the old recovery_s measured) ...
    b = scenario.bucket_s
    load = offered_per_s(runs["no-retry"], b)
    before, after = load[int(10 / b) : int(20 / b)].mean(), load[int(30 / b) : int(35 / b)].mean()
    assert after == pytest.approx(before, rel=0.2)
    assert s["no-retry"]["outcomes"]["gave_up"] > 150  # ~10 s x 20 jobs/s
    # ... but those users were never served: it has not recovered
    assert s["no-retry"]["recovery_s"] is None
    # the patient policy serves them once the service is back, and then it has recovered
    assert s["patient"]["success_rate"] == 1.0
    assert s["patient"]["recovery_s"] is not None
    assert 0 < s["patient"]["recovery_s"] < 20


def test_recovery_waits_for_the_backlog_of_retries_to_drain(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, STEADY.format(extra=""))
    rec = run_world(scenario, 1).rec  # patient
    recovered_at = 30 + summarize(rec, scenario)["recovery_s"]
    waiting = rec.gauges["clients_backing_off"]
    b = scenario.bucket_s
    assert waiting[int(29 / b)] > 50  # during the outage, clients wait to retry
    # once recovered, the 2 s before it hold almost nobody waiting
    assert (
        waiting[int((recovered_at - 2) / b) : int(recovered_at / b)].mean()
        <= 1.1 * waiting[int(10 / b) : int(20 / b)].mean() + 1
    )


# ------------------------------------------------------------------ finished work and waste


def test_jobs_finished_after_their_client_gave_up_are_completed_unseen(tmp_path: Path) -> None:
    # streams cut at 5 s while the jobs (2 s each) run; no reconnects: every cut client
    # gives up, and the service still finishes its job
    text = base(
        faults="  - {kind: stream_drop, start_s: 5, end_s: 6, fraction: 1.0}",
        policy="no-retry",
        count=100,
        spread=10,
    )
    scenario = scenario_from(tmp_path, text)
    s = summarize(run_world(scenario).rec, scenario)
    gave_up = s["outcomes"]["gave_up"]
    assert gave_up > 0
    assert s["completed_unseen"] == gave_up  # each of them was accepted and finished
    assert s["outcomes"]["completed"] + gave_up == s["jobs"]
    # their work was done for nobody
    assert s["wasted_work_s"] == pytest.approx(2.0 * gave_up)
    assert s["work_amplification"] == pytest.approx(100 / s["outcomes"]["completed"])


def test_a_policy_that_reconnects_leaves_no_completed_work_unseen(tmp_path: Path) -> None:
    text = base(
        faults="  - {kind: stream_drop, start_s: 5, end_s: 6, fraction: 1.0}",
        policy="seed-default",
        count=100,
    )
    scenario = scenario_from(tmp_path, text)
    s = summarize(run_world(scenario).rec, scenario)
    assert s["success_rate"] == 1.0
    assert s["completed_unseen"] == 0
    assert s["wasted_work_s"] == 0 and s["work_amplification"] == 1.0


def test_server_work_is_at_least_the_work_clients_received(tmp_path: Path) -> None:
    for path in ("retry-storm-metastable.yaml", "cloud-run-503-burst.yaml"):
        scenario = load_scenario(SCENARIOS / path)
        for i in range(len(scenario.policies)):
            s = summarize(run_world(scenario, i).rec, scenario)
            if s["work_amplification"] is not None:
                assert s["work_amplification"] >= 1.0
                assert s["wasted_work_s"] >= -1e-9


def test_queue_wait_is_written_out_and_matches_the_service(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "retry-storm-metastable.yaml")
    world = run_world(scenario, 0)
    s = summarize(world.rec, scenario)
    waits = np.asarray(world.service.queue_wait_s)
    assert s["queue_wait_s"]["mean"] == pytest.approx(waits.mean(), abs=1e-6)
    assert s["queue_wait_s"]["p95"] == pytest.approx(
        np.percentile(waits, 95, method="inverted_cdf"), abs=1e-6
    )
    assert s["queue_wait_s"]["p95"] >= s["queue_wait_s"]["mean"] > 0


# ------------------------------------------------------------------ OCC


def test_occ_counts_one_write_and_one_read_per_try() -> None:
    scenario = load_scenario(SCENARIOS / "occ-contention-2015.yaml")
    for i in range(len(scenario.policies)):
        rec = run_world(scenario, i).rec
        s = summarize(rec, scenario)
        assert s["server_writes"] == sum(rec.attempts)  # every try ends in one write
        assert s["server_reads"] == s["server_writes"]
        assert s["server_calls"] == s["server_reads"] + s["server_writes"]
        # one write wins per client: the rest were the contention's waste
        assert s["outcomes"]["completed"] == 100
        assert s["work_amplification"] == pytest.approx(s["server_writes"] / 100)


# Means over 2,000 runs of the 2015 post's own simulator (aws-samples/
# aws-arch-backoff-simulator, src/backoff_simulator.py, its model run unchanged at 100
# clients; the post shows its results as charts): its "calls" (writes) and its "time"
# (until the last client is done, here in seconds).
ORIGINAL_2015 = {
    "exponential": (1853.5, 63.32),
    "decorrelated": (1002.1, 4.581),
    "equal-jitter": (811.9, 6.589),
    "full-jitter": (795.9, 4.906),
    "no-backoff": (2423.6, 2.029),
}


def test_occ_writes_and_times_are_the_2015_simulators(tmp_path: Path) -> None:
    from sim.results import run_scenario

    scenario = load_scenario(SCENARIOS / "occ-contention-2015.yaml")
    chosen = [scenario.policy(name) for name in ORIGINAL_2015]
    record = run_scenario(scenario, tmp_path, chosen, replications=8)
    for p in record["policies"]:
        writes, time_s = ORIGINAL_2015[p["name"]]
        s = p["summary"]
        assert s["server_writes"] == pytest.approx(writes, rel=0.04), p["name"]
        assert s["makespan_s"] == pytest.approx(time_s, rel=0.12), p["name"]
    outcome = {p["name"]: p["summary"]["server_writes"] for p in record["policies"]}
    assert outcome["full-jitter"] < outcome["equal-jitter"] < outcome["decorrelated"]


def test_the_readme_figure_table_is_the_registrys() -> None:
    from sim.decide.figures import markdown_table

    readme = (SCENARIOS.parent / "README.md").read_text()
    begin, end = "<!-- figures:begin -->\n", "\n<!-- figures:end -->"
    assert begin in readme and end in readme
    table = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert table == markdown_table(), "run: python -m sim.decide.figures, paste into README"
