"""The cost estimate: an upper estimate of what a run makes, and refusals that name the knob."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.cost import Limits, attempts_within, available_memory_bytes, estimate, refusals
from sim.policies.backoff import Backoff, BackoffKind, Jitter
from sim.scenario import load_scenario
from sim.world.run import run_policy

from .conftest import MINIMAL, SCENARIOS

WriteYaml = Callable[[str], Path]
ROOMY = Limits(memory_bytes=math.inf, seconds=math.inf)


@pytest.mark.parametrize(
    "name", ["cloud-run-503-burst", "job-timeout", "sse-drop-reconnect", "occ-contention-2015"]
)
def test_estimate_is_at_least_what_each_policy_makes(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    cost = estimate(scenario, scenario.policies)
    for policy, est in zip(scenario.policies, cost.policies, strict=True):
        rec = run_policy(scenario, policy).recorder
        offered = sum(
            int(rec.counters[k].sum())
            for k in ("offered_first", "offered_retry", "offered_reconnect")
        )
        assert est.jobs >= len(rec.arrival_s), policy.name
        assert est.requests >= offered, policy.name
        assert cost.buckets == rec.n


def test_every_shipped_scenario_fits_a_small_machine() -> None:
    small = Limits(memory_bytes=1e9, seconds=600)
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = load_scenario(path)
        assert refusals(estimate(scenario, scenario.policies), small) == [], path.name


def test_a_huge_burst_is_refused_naming_clients_count(write_yaml: WriteYaml) -> None:
    scenario = load_scenario(write_yaml(MINIMAL.replace("count: 10", "count: 5000000")))
    found = refusals(estimate(scenario, scenario.policies), Limits(memory_bytes=2e9))
    assert [r.knob.path for r in found] == ["clients.count"]
    assert "5,000,000 clients -> ~5.08 GB peak memory" in found[0].message
    assert "lower clients.count" in found[0].message
    assert scenario.lines["clients.count"] == 4


def test_a_ten_million_client_herd_validates_and_fits_a_roomy_machine(tmp_path: Path) -> None:
    # thundering-herd scaled to 10 M clients as benchmarks/sim_scale.py scales it (rate
    # and instances with the clients): within the schema's bounds, and not refused when
    # 16 GB may be taken (80% of 20 GB available): 10 GB estimated, 0.45 KB a client
    # measured at 1 M
    text = (SCENARIOS / "thundering-herd.yaml").read_text()
    for old, new in (
        ("count: 10000\n", "count: 10000000\n"),
        ("rate_per_s: 100}", "rate_per_s: 104167}"),
        ("instances: 40\n", "instances: 40000\n"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "herd-10m.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert scenario.clients.count == 10_000_000
    cost = estimate(scenario, [scenario.policy("full-jitter")])
    assert refusals(cost, Limits(memory_bytes=16e9)) == []
    # every policy at once is four such runs: over the hour, refused naming the knob
    every = refusals(estimate(scenario, scenario.policies), Limits(memory_bytes=16e9))
    assert [r.knob.path for r in every] == ["clients.count"]
    assert "x 4 runs" in every[0].message


def test_memory_grows_with_clients_and_time_with_replications(write_yaml: WriteYaml) -> None:
    small = load_scenario(write_yaml(MINIMAL))
    big = load_scenario(write_yaml(MINIMAL.replace("count: 10", "count: 10000"), "big.yaml"))
    assert estimate(big, big.policies).memory_bytes > estimate(small, small.policies).memory_bytes
    one = estimate(small, small.policies, replications=1)
    five = estimate(small, small.policies, replications=5)
    assert five.seconds == pytest.approx(5 * one.seconds) and five.runs == 5


def test_a_closed_loop_that_never_lets_time_pass_is_unbounded(write_yaml: WriteYaml) -> None:
    text = (
        MINIMAL.replace(
            "arrival: {kind: burst, at_s: 1}",
            "arrival: {kind: closed, think: {kind: constant, value_s: 0}}",
        )
        + "network: {latency: {kind: constant, value_s: 0}}\n"
    )
    scenario = load_scenario(write_yaml(text))
    cost = estimate(scenario, scenario.policies)
    assert math.isinf(cost.jobs)
    found = refusals(cost, Limits(memory_bytes=1e12, seconds=1e9))
    assert found and found[0].knob.path == "clients.arrival.think"
    assert "unbounded" in found[0].message and "~unbounded" not in found[0].message


def test_unlimited_zero_delay_reconnects_are_refused_naming_the_policy(
    write_yaml: WriteYaml,
) -> None:
    text = (
        MINIMAL
        + "  - name: forever\n    base: immediate\n    reconnect: {max_attempts: null}\n"
        + "network: {latency: {kind: constant, value_s: 0}}\n"
    )
    scenario = load_scenario(write_yaml(text))
    found = refusals(estimate(scenario, scenario.policies), ROOMY)
    assert found == []  # no ceiling, no refusal
    found = refusals(estimate(scenario, scenario.policies), Limits(1e12, seconds=3600))
    assert [r.knob.path for r in found] == ["policies[1].reconnect.max_attempts"]


def test_fine_buckets_are_named_when_they_dominate(write_yaml: WriteYaml) -> None:
    text = MINIMAL.replace("duration_s: 60", "duration_s: 100000") + "bucket_s: 0.2\n"
    scenario = load_scenario(write_yaml(text))
    found = refusals(estimate(scenario, scenario.policies), Limits(memory_bytes=200e6))
    assert [r.knob.path for r in found] == ["bucket_s"]


def test_attempts_within_a_lifetime() -> None:
    flat = Backoff(kind=BackoffKind.CONSTANT, base_s=1.0, cap_s=1.0)
    # 1 s attempts 1 s apart fit 5 in 10 s: at 1, 3, 5, 7, 9
    assert attempts_within(flat, None, 10.0, 1.0) == 5
    assert attempts_within(flat, 3, 10.0, 1.0) == 3
    assert attempts_within(flat, 0, 10.0, 1.0) == 0
    zero = Backoff(kind=BackoffKind.CONSTANT, base_s=0.0, cap_s=0.0)
    assert math.isinf(attempts_within(zero, None, 10.0, 0.0))
    assert attempts_within(zero, 7, 10.0, 0.0) == 7
    full = Backoff(base_s=1.0, cap_s=8.0, jitter=Jitter.FULL)  # means 0.5, 1, 2, 4, 4, ...
    assert attempts_within(full, None, 100.0, 0.0) == 1 + 4 + math.floor((100 - 7.5) / 4)


def test_available_memory_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  100 kB\nMemAvailable:   2048 kB\n")
    assert available_memory_bytes(meminfo) == 2048 * 1024
    assert math.isinf(available_memory_bytes(tmp_path / "missing"))


def _herdlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={"PYTHONPATH": str(SCENARIOS.parent), "PATH": "/usr/bin:/bin"},
    )


def test_run_refuses_with_the_estimate_and_the_knob_and_force_runs(tmp_path: Path) -> None:
    # unlimited reconnects without any wait: the estimate cannot bound them, but with no
    # fault no stream ever drops, so the real run is quick
    path = tmp_path / "s.yaml"
    path.write_text(
        MINIMAL
        + "  - name: forever\n    base: immediate\n    reconnect: {max_attempts: null}\n"
        + "network: {latency: {kind: constant, value_s: 0}}\n"
    )
    refused = _herdlab("run", str(path), "--no-report", "--out", "o", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert f"{path}:10: policies[1].reconnect.max_attempts: forever: unlimited" in refused.stderr
    assert "refused before running" in refused.stderr and "--force" in refused.stderr
    assert not (tmp_path / "o").exists()
    forced = _herdlab("run", str(path), "--no-report", "--out", "o", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "--force: running anyway" in forced.stderr
    assert (tmp_path / "o" / "results.json").exists()
