"""`herdlab run`: files written, a summary printed, user mistakes reported cleanly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .simhelp import SCENARIOS
from .test_cli import herdlab


def test_run_writes_results_and_csvs_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = herdlab(
        "run", str(SCENARIOS / "cloud-run-503-burst.yaml"), "--out", str(out), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text())
    assert record["complete"] is True
    names = [p["name"] for p in record["policies"]]
    assert names == ["seed-default", "no-retry"]
    for p in record["policies"]:
        assert (out / p["timeseries"]).exists()
        # one row per job, agreeing with the summary's outcome counts
        with (out / p["jobs"]).open(newline="") as f:
            jobs = list(csv.DictReader(f))
        assert len(jobs) == p["summary"]["jobs"]
        for outcome, count in p["summary"]["outcomes"].items():
            assert sum(j["outcome"] == outcome for j in jobs) == count
        for j in jobs:
            assert int(j["attempts"]) >= 1
            if j["outcome"] == "completed":
                assert 0 <= float(j["accepted_after_s"]) <= float(j["ended_after_s"])
        assert set(p["summary"]) >= {
            "success_rate",
            "attempts_per_job",
            "completion_s",
            "peak_offered_per_s",
            "peak_load_ratio",
            "recovery_s",
            "outcomes",
            "server_calls",
            "events_lost",
            "events_duplicated",
        }
    # the seed's test: 503s, then every client succeeds with seed-default
    assert record["policies"][0]["summary"]["success_rate"] == 1.0
    assert "seed-default" in result.stdout and "success" in result.stdout


def test_run_only_the_named_policy(tmp_path: Path) -> None:
    result = herdlab(
        "run",
        str(SCENARIOS / "job-timeout.yaml"),
        "--out",
        str(tmp_path),
        "--quiet",
        "--policy",
        "full-jitter",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results.json").read_text())
    assert [p["name"] for p in record["policies"]] == ["full-jitter"]
    assert record["policies"][0]["summary"]["outcomes"]["timed_out"] == 50


def test_run_on_a_broken_scenario_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration_s: 10\n")
    result = herdlab("run", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "clients: is required but missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_real_mode_options_in_sim_mode_are_refused(tmp_path: Path) -> None:
    result = herdlab(
        "run", str(SCENARIOS / "job-timeout.yaml"), "--out", str(tmp_path), "--keep-alive"
    )
    assert result.returncode == 2
    assert "--keep-alive applies to --mode real and --mode both only" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_a_seed_numpy_cannot_take_is_a_usage_error(tmp_path: Path) -> None:
    for seed in ("-1", str(2**63)):
        result = herdlab(
            "run", str(SCENARIOS / "job-timeout.yaml"), "--out", str(tmp_path), "--seed", seed
        )
        assert result.returncode == 2, result.stderr
        assert "--seed must be within 0.." in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "results.json").exists()


def test_replications_on_a_process_pool_write_the_same_results(tmp_path: Path) -> None:
    from harness.cli import main

    scenario = SCENARIOS / "cloud-run-503-burst.yaml"
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["run", str(scenario), "--replications", "2", "--no-report", "--quiet"]
    common += ["--accept-inconclusive"]  # 2 replications: wide CIs; this test is about bytes
    assert main([*common, "--workers", "1", "--out", str(a)]) == 0
    assert main([*common, "--workers", "2", "--out", str(b)]) == 0
    for name in ("results.json", *(p.name for p in a.glob("*.csv"))):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_policies_whose_names_slug_alike_get_distinct_files(tmp_path: Path) -> None:
    from sim.results import file_stems, run_scenario
    from sim.scenario import load_scenario

    assert file_stems(["seed+full-jitter", "seed-full-jitter", "Seed-Full-Jitter"]) == {
        "seed+full-jitter": "seed-full-jitter",
        "seed-full-jitter": "seed-full-jitter-2",
        "Seed-Full-Jitter": "Seed-Full-Jitter-3",
    }
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: slugs\nduration_s: 10\nclients: {count: 5, arrival: {kind: burst}}\n"
        "faults: [{kind: outage, start_s: 0, end_s: 3}]\n"
        "policies:\n  - {name: seed+full-jitter, base: full-jitter}\n"
        "  - {name: seed-full-jitter, base: seed-default}\n"
    )
    record = run_scenario(load_scenario(path), tmp_path / "out")
    files = [(p["timeseries"], p["jobs"]) for p in record["policies"]]
    assert files == [
        ("timeseries-seed-full-jitter.csv", "jobs-seed-full-jitter.csv"),
        ("timeseries-seed-full-jitter-2.csv", "jobs-seed-full-jitter-2.csv"),
    ]
    for timeseries, jobs in files:
        assert (tmp_path / "out" / timeseries).exists() and (tmp_path / "out" / jobs).exists()
    # each policy's file holds its own run: full jitter and the seed plan differ
    a, b = ((tmp_path / "out" / t).read_text() for t, _ in files)
    assert a != b
