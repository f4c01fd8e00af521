"""The simulator agrees with theory, conserves jobs and attempts, and is deterministic."""

from __future__ import annotations

import dataclasses
import gc
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.results import run_scenario
from sim.scenario import load_scenario
from sim.world.metrics import GAUGES, JobOutcome
from sim.world.run import World, run_policy

from .simhelp import SCENARIOS, base, run_world, scenario_from


def erlang_c_wait_s(arrival_per_s: float, mean_service_s: float, servers: int) -> float:
    """Mean queueing delay of M/M/c (Erlang C)."""
    a = arrival_per_s * mean_service_s
    rho = a / servers
    top = a**servers / math.factorial(servers) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(servers)) + top)
    return p_wait / (servers / mean_service_s - arrival_per_s)


MMC = """\
name: mmc
seed: 42
duration_s: 3000
bucket_s: 1
clients:
  arrival: {kind: poisson, schedule: [{from_s: 0, rate_per_s: 8}]}
  job_timeout_s: 1000
  request_timeout_s: 10
  follow_stream: false
service:
  instances: 1
  concurrency: 10
  queue_limit: 100000
  service_time: {kind: exponential, mean_s: 1.0}
network:
  latency: {kind: constant, value_s: 0.0}
policies: [no-retry]
"""


def test_queueing_delay_matches_erlang_c_for_mmc(tmp_path: Path) -> None:
    # M/M/10 at rho = 0.8: Erlang C gives Wq = 0.2048 s. 24,000 jobs at seed 42;
    # tolerance 12% covers the autocorrelated sampling error of one long run.
    world = run_world(scenario_from(tmp_path, MMC))
    waits = np.asarray(world.service.queue_wait_s)
    waits = waits[len(waits) // 10 :]  # drop the warm-up from an empty system
    expected = erlang_c_wait_s(8.0, 1.0, 10)
    assert expected == pytest.approx(0.2048, abs=1e-3)
    assert waits.mean() == pytest.approx(expected, rel=0.12)
    # and the fraction that waits at all is Erlang C's probability of waiting
    p_wait = expected * (10 - 8)
    assert float((waits > 0).mean()) == pytest.approx(p_wait, abs=0.04)


def _conservation(world: World) -> None:
    rec = world.rec
    assert JobOutcome.PENDING not in rec.outcome, "every job ends in exactly one outcome"
    c = rec.counters
    offered = c["offered_first"] + c["offered_retry"] + c["offered_reconnect"]
    answered = (
        c["accepted"]
        + c["stream_connected"]
        + c["rejected_503"]
        + c["rejected_429"]
        + c["rejected_other"]
        + c["error_timeout"]
        + c["error_reset"]
        + c["error_refused"]
    )
    np.testing.assert_array_equal(offered, answered)  # bucket by bucket
    assert rec.in_flight == 0
    assert rec.connected == 0 and rec.reconnecting == 0


@pytest.mark.parametrize(
    "fault",
    [
        "  - {kind: outage, start_s: 5, end_s: 15}",
        "  - {kind: outage, start_s: 5, end_s: 15, answer: refuse}",
        "  - {kind: loss, start_s: 5, end_s: 15, probability: 0.5}",
        "  - {kind: reset, start_s: 5, end_s: 15, probability: 0.5}",
        "  - {kind: partition, start_s: 5, end_s: 8}",
        "  - {kind: stream_drop, start_s: 5, end_s: 15, fraction: 0.5, every_s: 2}",
        "  - {kind: errors, start_s: 5, end_s: 15, probability: 0.3, status: 500}",
    ],
)
@pytest.mark.parametrize("policy", ["seed-default", "full-jitter", "no-retry", "grpc-default"])
def test_conservation_holds_under_every_fault_and_policy(
    tmp_path: Path, fault: str, policy: str
) -> None:
    _conservation(run_world(scenario_from(tmp_path, base(fault, policy))))


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    scenario = scenario_from(
        tmp_path, base("  - {kind: outage, start_s: 5, end_s: 15}", "full-jitter")
    )
    a, b = tmp_path / "a", tmp_path / "b"
    run_scenario(scenario, a)
    run_scenario(scenario, b)
    for name in sorted(p.name for p in a.iterdir()):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_different_seed_gives_different_numbers(tmp_path: Path) -> None:
    scenario = scenario_from(
        tmp_path, base("  - {kind: outage, start_s: 5, end_s: 15}", "full-jitter")
    )
    a = run_scenario(scenario, tmp_path / "a", seed=1)
    b = run_scenario(scenario, tmp_path / "b", seed=2)
    assert a["policies"][0]["per_replication"] != b["policies"][0]["per_replication"]


def test_policies_in_one_run_see_the_same_arrivals(tmp_path: Path) -> None:
    text = base("  - {kind: outage, start_s: 5, end_s: 15}").replace(
        "  - seed-default", "  - seed-default\n  - immediate"
    )
    s = scenario_from(tmp_path, text)
    a, b = run_world(s, 0), run_world(s, 1)
    assert a.rec.arrival_s == b.rec.arrival_s
    assert a.rec.ended_s != b.rec.ended_s  # ... and differ only by what the policy does


def test_replications_give_mean_and_confidence_interval(tmp_path: Path) -> None:
    scenario = scenario_from(
        tmp_path, base("  - {kind: outage, start_s: 5, end_s: 15}", "full-jitter")
    )
    record = run_scenario(scenario, tmp_path / "out", replications=4)
    entry = record["policies"][0]
    reps = [r["attempts_per_job"] for r in entry["per_replication"]]
    assert len(reps) == 4 and len(set(reps)) > 1
    low, high = entry["ci95"]["attempts_per_job"]
    assert low <= entry["summary"]["attempts_per_job"] <= high
    assert entry["summary"]["attempts_per_job"] == pytest.approx(np.mean(reps), abs=1e-6)


def test_occ_reproduces_the_2015_published_ordering(tmp_path: Path) -> None:
    record = run_scenario(load_scenario(SCENARIOS / "occ-contention-2015.yaml"), tmp_path)
    s = {p["name"]: p["summary"] for p in record["policies"]}
    calls = {k: v["server_calls"] for k, v in s.items()}
    # full jitter needs less than half the server calls of plain exponential at 100 clients
    assert calls["full-jitter"] < 0.5 * calls["exponential"]
    # full and equal jitter do about the same work (within 15%), decorrelated a little more
    assert calls["equal-jitter"] == pytest.approx(calls["full-jitter"], rel=0.15)
    assert calls["decorrelated"] > calls["full-jitter"]
    # plain exponential takes far the longest to finish all the work
    makespan = {k: v["makespan_s"] for k, v in s.items()}
    assert makespan["exponential"] == max(makespan.values())
    assert makespan["exponential"] > 2 * makespan["full-jitter"]
    assert all(v["success_rate"] == 1.0 for v in s.values())


def test_retry_storm_outlives_its_trigger_without_a_budget_and_not_with_one(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(SCENARIOS / "retry-storm-metastable.yaml")
    record = run_scenario(scenario, tmp_path)
    s = {p["name"]: p["summary"] for p in record["policies"]}

    def late_goodput_per_s(entry: dict[str, Any]) -> float:
        """Calls answered per second over the scenario's last 60 s (long after the trigger)."""
        rows = np.genfromtxt(tmp_path / entry["timeseries"], delimiter=",", names=True)
        late = (rows["t_s"] >= scenario.duration_s - 60) & (rows["t_s"] < scenario.duration_s)
        return float(rows["completed"][late].sum()) / 60

    late = {p["name"]: late_goodput_per_s(p) for p in record["policies"]}
    for name in ("seed-default", "exponential"):
        assert late[name] < 0.5 * 8, f"{name} should stay overloaded"
        assert s[name]["success_rate"] < 0.5
        assert s[name]["work_amplification"] > 5  # the server works for nobody
        assert s[name]["recovery_s"] is None
    for name in ("sre-budget", "grpc-default", "no-retry"):
        assert late[name] > 0.9 * 8, f"{name} should serve the 8 calls/s again"
        assert s[name]["success_rate"] > 0.7
        assert s[name]["work_amplification"] < 1.5
        # ... but the calls lost during the trigger were given up: not a recovery
        assert s[name]["recovery_s"] is None


def test_thundering_herd_no_jitter_spikes_and_full_jitter_surges_less_at_recovery(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(SCENARIOS / "thundering-herd.yaml")
    fine = dataclasses.replace(scenario, peak_window_s=0.1)  # a wave lasts well under 1 s
    record = run_scenario(fine, tmp_path, [fine.policy("exponential"), fine.policy("full-jitter")])
    s = {p["name"]: p["summary"] for p in record["policies"]}
    assert s["exponential"]["peak_offered_per_s"] > 3 * s["full-jitter"]["peak_offered_per_s"]
    assert s["full-jitter"]["recovery_load_ratio"] < s["exponential"]["recovery_load_ratio"]
    # about 4,000 streams give up under both: neither has recovered
    assert s["full-jitter"]["recovery_s"] is None
    assert s["exponential"]["recovery_s"] is None


def test_a_run_makes_no_reference_cycle_per_client() -> None:
    """Runs go without the cyclic GC, so a finished client must be freed by reference
    counting: what a run leaves to the collector must not grow with the client count."""
    scenario = load_scenario(SCENARIOS / "thundering-herd.yaml")
    left: list[int] = []
    for count in (1_000, 3_000):
        small = dataclasses.replace(
            scenario, clients=dataclasses.replace(scenario.clients, count=count)
        )
        gc.collect()
        gc.disable()
        try:
            run_policy(small, small.policy("full-jitter"))
            left.append(gc.collect())
        finally:
            gc.enable()
    # one cycle per client would leave thousands; what is left is the world itself
    assert left[1] - left[0] < 100 and left[1] < 1_000, left


def test_runs_in_a_row_do_not_accumulate_memory() -> None:
    """Each run's world is freed when it returns (its SimPy environment is a reference
    cycle, made with the cyclic GC off): the memory held after run 2 and after run 5 is
    the same, give or take allocator noise."""
    scenario = load_scenario(SCENARIOS / "thundering-herd.yaml")
    small = dataclasses.replace(
        scenario, clients=dataclasses.replace(scenario.clients, count=1_000)
    )
    held: list[int] = []
    tracemalloc.start()
    try:
        for _ in range(5):
            run_policy(small, small.policy("full-jitter"))
            held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert held[4] - held[1] < 100_000, held  # one run's recorder alone is ~300 KB


@pytest.mark.parametrize("kind", ["job", "rpc", "occ"])
def test_closed_loop_users_make_clients_of_the_scenarios_service_kind(
    tmp_path: Path, kind: str
) -> None:
    """A closed-loop user submits a job, waits for its end, thinks, submits the next: of
    the scenario's service kind. An ``occ`` user's job is an optimistic update of the
    row (reads and conditional writes, nothing reaches the job service); an ``rpc``
    user's a synchronous call, its result in the answer (accepted when it ends); a
    ``job`` user's a created job whose result comes later (the 0.5 s of service after
    it was accepted)."""
    text = (
        base(count=5, duration=20, follow=False)
        .replace(
            "arrival: {kind: burst, at_s: 0, spread_s: 10}",
            "arrival: {kind: closed, think: {kind: constant, value_s: 1}}",
        )
        .replace("value_s: 2}", "value_s: 0.5}")  # the service time, within the timeout
    )
    if kind == "occ":
        start = text.index("service:")
        text = text[:start] + "service: {kind: occ}\n" + text[text.index("network:") :]
    else:
        text = text.replace("service:\n", f"service:\n  kind: {kind}\n")
    world = run_world(scenario_from(tmp_path, text))
    rec = world.rec
    done = np.asarray(rec.outcome) == JobOutcome.COMPLETED
    assert len(done) > 5 * 10  # each user goes round its loop (1.5-2 s a job with thinking)
    assert done.all()
    accepted, ended = np.asarray(rec.accepted_s)[done], np.asarray(rec.ended_s)[done]
    if kind == "occ":
        assert rec.server_writes >= len(done) and rec.server_calls >= 2 * len(done)
        assert world.service.admitted_work_s == 0  # the job service saw nothing
    else:
        assert rec.server_calls == 0
        assert world.service.admitted_work_s == pytest.approx(0.5 * len(done))
    if kind == "rpc":
        assert np.array_equal(accepted, ended)  # the answer is the result
    elif kind == "job":
        # accepted when the creation is answered, ended when the work is done (0.5 s after
        # it reached the service, one 10 ms trip before that answer came back)
        assert np.all(ended - accepted >= 0.49 - 1e-9)


@pytest.mark.parametrize("name", ["occ-contention-2015", "thundering-herd"])
def test_a_run_without_gauges_has_the_same_summary_and_no_series(name: str) -> None:
    """The gauges (sampled every bucket) are for the time series and, in a scenario with
    faults, for the recovery time: where nothing reads them, a replication skips them,
    and every other figure stays the same."""
    from sim.world.summary import reads_gauges, summarize

    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    policy = scenario.policies[0]
    with_them = run_policy(scenario, policy, replication=1).recorder
    without = run_policy(scenario, policy, replication=1, gauges=False).recorder
    assert without.gauges == {}  # reading one fails, it does not give zeros
    assert set(with_them.gauges) == set(GAUGES)
    assert reads_gauges(scenario) == bool(scenario.faults)
    if not reads_gauges(scenario):
        assert summarize(without, scenario) == summarize(with_them, scenario)
