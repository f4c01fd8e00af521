"""Expectations through the commands: `herdlab run` gives a verdict (terminal, results.json,
report, exit code), `herdlab check` runs folders in parallel and writes JUnit XML, and a
baseline catches a worse policy."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .simhelp import SCENARIOS
from .test_cli import herdlab

# 200 users meet a 4 s burst of 503s; `immediate` retries without waiting and gives up
BURST = """\
name: burst
seed: 0
duration_s: 60
clients:
  count: 200
  arrival: {kind: burst, at_s: 0, spread_s: 20}
  job_timeout_s: 40
service:
  instances: 2
  service_time: {kind: lognormal, median_s: 3, sigma: 0.3}
faults:
  - {kind: outage, start_s: 10, end_s: 14, answer: "503"}
policies:
  - immediate
  - seed-default
expect:
  - {metric: success_rate, policy: seed-default, min: 0.99}
"""
BROKEN = BURST + "  - {metric: success_rate, policy: immediate, min: 0.99}\n"


def _write(folder: Path, text: str, name: str = "burst.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_failing_expectation_fails_the_run_everywhere_it_is_shown(tmp_path: Path) -> None:
    scenario = _write(tmp_path, BROKEN)
    out = tmp_path / "out"
    result = herdlab("run", str(scenario), "--out", str(out), "--quiet")
    assert result.returncode == 1, result.stderr
    # terminal: the verdict table, with the bound, the observed value and FAIL
    row = next(line for line in result.stdout.splitlines() if f"{scenario}:18" in line)
    assert row.split()[1:] == ["immediate", "success_rate", ">=", "0.99", "0.8", "FAIL"]
    assert "checks: FAIL: 1 passed, 1 failed" in result.stdout
    # results.json keeps every verdict
    checks = json.loads((out / "results.json").read_text())["checks"]
    assert checks["status"] == "FAIL"
    assert [(v["policy"], v["status"]) for v in checks["verdicts"]] == [
        ("seed-default", "PASS"),
        ("immediate", "FAIL"),
    ]
    assert checks["verdicts"][1]["where"] == f"{scenario}:18"
    # the report shows them at the top, before the summary table
    report = (out / "report.html").read_text()
    assert report.index('id="checks"') < report.index('id="summary"')
    assert '<td class="FAIL">FAIL' in report and "checks: FAIL: 1 passed, 1 failed" in report


def test_a_run_whose_expectations_hold_exits_0(tmp_path: Path) -> None:
    result = herdlab(
        "run", str(_write(tmp_path, BURST)), "--out", str(tmp_path / "o"), "--quiet", "--no-report"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checks: PASS: 1 passed, 0 failed" in result.stdout


def test_an_interval_straddling_a_bound_fails_unless_accepted(tmp_path: Path) -> None:
    # immediate's success rate over 3 replications: 0.80 [0.77, 0.83]
    scenario = _write(tmp_path, BURST + "  - {metric: success_rate, policy: immediate, min: 0.8}\n")
    args = ["run", str(scenario), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]
    result = herdlab(*args, "--replications", "3")
    assert result.returncode == 1
    assert "INCONCLUSIVE" in result.stdout and "add replications" in result.stdout
    accepted = herdlab(*args, "--replications", "3", "--accept-inconclusive")
    assert accepted.returncode == 0, accepted.stdout
    assert "1 inconclusive (accepted)" in accepted.stdout


def test_check_runs_a_folder_prints_one_summary_and_writes_junit(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    _write(folder, BURST, "good.yaml")
    _write(folder, BROKEN.replace("name: burst", "name: broken"), "broken.yaml")
    _write(folder, "policies:\n  - full-jitter\n", "policy-file.yaml")  # not a scenario
    junit = tmp_path / "junit.xml"
    result = herdlab(
        "check", str(folder), "--out", str(tmp_path / "out"), "--junit-xml", str(junit),
        "--jobs", "2", "--replications", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "FAIL          broken (2 checks)" in result.stdout
    assert "PASS          burst (1 checks)" in result.stdout
    assert f"skipped (no expectations): {folder / 'policy-file.yaml'}" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAIL: 2 scenario(s), 3 checks: 2 passed")
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    cases = {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}
    assert set(cases) == {
        "broken::seed-default::success_rate",
        "broken::immediate::success_rate",
        "burst::seed-default::success_rate",
    }
    failure = cases["broken::immediate::success_rate"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    # the bound, the observed value and its CI over the two replications
    assert message.startswith("FAIL: immediate success_rate = 0.")
    assert "expected >= 0.99" in message and " [0." in message
    assert cases["broken::immediate::success_rate"].get("line") == "18"
    assert (tmp_path / "out" / "broken" / "results.json").exists()


def test_check_refuses_a_broken_scenario_before_running_anything(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _write(folder, BURST.replace("metric: success_rate", "metric: succes_rate"))
    result = herdlab("check", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"{folder / 'burst.yaml'}:17: expect[0].metric:" in result.stderr
    assert "did you mean 'success_rate'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    nothing = herdlab("check", str(tmp_path / "empty-or-missing"))
    assert nothing.returncode == 2


def test_a_baseline_passes_an_unchanged_policy_and_catches_a_worse_one(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "a", BURST)
    base = tmp_path / "base"
    made = herdlab("check", str(scenario), "--out", str(base), "--quiet")
    assert made.returncode == 0, made.stdout + made.stderr
    # the same scenario again: every figure equals the baseline's
    again = herdlab(
        "run", str(scenario), "--out", str(tmp_path / "again"), "--baseline", str(base),
        "--quiet", "--no-report",
    )  # fmt: skip
    assert again.returncode == 0, again.stdout
    assert "0 worse beyond tolerance" in again.stdout
    # seed-default made worse on purpose: one attempt, no retries
    worse = _write(
        tmp_path / "b",
        BURST.replace(
            "  - seed-default\nexpect:",
            "  - {name: seed-default, base: seed-default, retry: {max_attempts: 1}}\nexpect: []",
        ).split("\n  - {metric")[0],
    )
    result = herdlab("check", str(worse), "--baseline", str(base), "--out", str(tmp_path / "w"))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    regression = next(line for line in lines if "seed-default" in line and "success_rate" in line)
    assert regression.split()[1:3] == ["baseline", "seed-default"]
    assert regression.endswith("FAIL") and "(baseline 1 - 5%)" in regression
    assert any("worse beyond tolerance" in line and "burst" in line for line in lines)


def test_a_baseline_of_another_scenario_or_format_is_refused(tmp_path: Path) -> None:
    scenario = _write(tmp_path, BURST)
    base = tmp_path / "base"
    herdlab("run", str(scenario), "--out", str(base), "--quiet", "--no-report")
    other = herdlab(
        "run", str(SCENARIOS / "job-timeout.yaml"), "--baseline", str(base),
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert other.returncode == 2
    assert "a baseline of scenario 'burst', not 'job-timeout'" in other.stderr
    assert not (tmp_path / "o").exists()  # refused before running
    record = json.loads((base / "results.json").read_text())
    record["results_format"] = 0
    (base / "results.json").write_text(json.dumps(record))
    old = herdlab("run", str(scenario), "--baseline", str(base), "--out", str(tmp_path / "o"))
    assert old.returncode == 2 and "results format 0" in old.stderr


@pytest.mark.slow
def test_every_shipped_scenario_passes_herdlab_check(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = herdlab(
        "check", str(SCENARIOS), "--out", str(tmp_path / "out"), "--junit-xml", str(junit)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    root = ET.parse(junit).getroot()
    assert int(root.get("tests", "0")) >= 50 and root.get("failures") == "0"
    shipped = {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert {s.get("name") for s in root.iter("testsuite")} == shipped


@pytest.mark.integration
def test_a_real_run_checks_the_expectations_of_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = herdlab(
        "run", str(SCENARIOS / "job-timeout.yaml"), "--mode", "real", "--scale", "0.1",
        "--out", str(out), "--quiet", "--no-report",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    checks = json.loads((out / "results.json").read_text())["checks"]
    assert checks["status"] == "PASS"
    assert {v["metric"] for v in checks["verdicts"]} == {
        "success_rate",
        "outcomes.gave_up",
        "outcomes.failed",
    }
    # 50 timed-out jobs is the full-scale simulation's count: not a claim about 5 real ones
    assert checks["not_checked"] == [
        f"{SCENARIOS / 'job-timeout.yaml'}:27: outcomes.timed_out: applies to sim runs only"
    ]


def test_check_finds_scenarios_with_expectations_once_each(tmp_path: Path) -> None:
    from harness.cli.check import find_scenarios

    folder = tmp_path / "s"
    good = _write(folder, BURST, "good.yaml")
    _write(folder / "nested", BURST.replace("name: burst", "name: deep"), "deep.yml")
    plain = _write(folder, BURST.split("expect:")[0], "plain.yaml")
    chosen, skipped, problems = find_scenarios(
        [str(folder), str(good), str(tmp_path / "s" / "." / "good.yaml"), str(tmp_path / "no")]
    )
    assert chosen == [good, folder / "nested" / "deep.yml"]
    assert skipped == [plain]
    assert [p.message for p in problems] == ["no such file or folder"]


def test_a_file_nested_too_deep_is_skipped_not_a_traceback(tmp_path: Path) -> None:
    from harness.cli.check import find_scenarios

    folder = tmp_path / "s"
    good = _write(folder, BURST, "good.yaml")
    deep = _write(folder, "expect: " + "[" * 2000 + "]" * 2000 + "\n", "deep.yaml")
    chosen, skipped, problems = find_scenarios([str(folder)])
    assert (chosen, skipped, problems) == ([good], [deep], [])
    result = herdlab("check", str(folder), "--out", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"skipped (no expectations): {deep}" in result.stdout
    # named on the command line it is loaded, and its problem named
    named = herdlab("check", str(deep), "--out", str(tmp_path / "out"))
    assert named.returncode == 2 and "Traceback" not in named.stderr
    assert str(deep) in named.stderr


def test_the_fidelity_suite_is_the_scenarios_with_a_fidelity_block(tmp_path: Path) -> None:
    from harness.cli.check import find_scenarios

    chosen, _, _ = find_scenarios([str(SCENARIOS)], key="fidelity")
    assert sorted(p.stem for p in chosen) == [
        "cloud-run-503-burst",
        "job-timeout",
        "sse-drop-reconnect",
        "store-degradation",
        "thundering-herd",
    ]
    folder = tmp_path / "s"
    _write(folder, BURST)  # expectations, no fidelity: block
    nothing = herdlab("check", "--mode", "both", str(folder), "--out", str(tmp_path / "o"))
    assert nothing.returncode == 2
    assert "no scenario with a fidelity: block" in nothing.stderr
    both = ["--mode", "both"]
    for flags in ([*both, "--replications", "2"], ["--scale", "0.5"], [*both, "--scale", "0"],
                  [*both, "--jobs", "2"]):  # fmt: skip
        refused = herdlab("check", *flags, str(folder), "--out", str(tmp_path / "o"))
        assert refused.returncode == 2, flags
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "o").exists()
