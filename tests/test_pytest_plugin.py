"""The pytest plugin, as a project that only installed herdlab uses it: `pytest scenarios/`
collects every expectation as a test, with --junitxml and -n."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from .test_cli_check import BROKEN, BURST

OCC = """\
name: occ-tiny
duration_s: 30
clients: {count: 10, arrival: {kind: burst}, follow_stream: false}
service: {kind: occ}
policies: [full-jitter]
expect:
  - {metric: success_rate, min: 1.0}
"""


def _project(pytester: pytest.Pytester, **files: str) -> None:
    folder = pytester.path / "scenarios"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)


def test_pytest_collects_every_expectation_and_fails_the_broken_one(
    pytester: pytest.Pytester,
) -> None:
    _project(
        pytester,
        burst=BROKEN,
        policies="policies:\n  - full-jitter\n",  # a policy file: not collected
        plain=BURST.split("expect:")[0].replace("name: burst", "name: plain"),  # no expect
    )
    result = pytester.runpytest("scenarios", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenarios/burst.yaml::immediate::success_rate FAILED*",
            "scenarios/burst.yaml::seed-default::success_rate PASSED*",
            "*burst::immediate::success_rate*",
            "FAIL: immediate success_rate = 0.8, expected >= 0.99 ?*burst.yaml:18?",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_pytest_junitxml_has_one_testcase_per_expectation(pytester: pytest.Pytester) -> None:
    _project(pytester, burst=BROKEN)
    result = pytester.runpytest("scenarios", "--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert cases == [
        ("scenarios.burst.yaml.immediate", "success_rate"),
        ("scenarios.burst.yaml.seed-default", "success_rate"),
    ]
    failures = [f.get("message", "") for f in root.iter("failure")]
    assert len(failures) == 1 and "expected >= 0.99" in failures[0]


def test_pytest_runs_the_expectations_across_xdist_workers(pytester: pytest.Pytester) -> None:
    _project(pytester, burst=BROKEN)
    result = pytester.runpytest_subprocess(
        "scenarios", "-n", "2", "--dist", "loadscope", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAIL: immediate success_rate = 0.8, expected >= 0.99*"])


def test_the_ini_glob_chooses_which_files_are_scenarios(pytester: pytest.Pytester) -> None:
    _project(pytester, burst=BURST, other=BROKEN.replace("name: burst", "name: other"))
    pytester.makeini("[pytest]\nherdlab_scenarios = scenarios/burst.yaml\n")
    result = pytester.runpytest("scenarios", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_broken_scenario_is_a_collection_error_with_its_line(pytester: pytest.Pytester) -> None:
    _project(pytester, burst=BURST.replace("policy: seed-default", "policy: seed-defualt"))
    result = pytester.runpytest("scenarios", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*burst.yaml:17: expect?0?.policy: 'seed-defualt' is not a policy*seed-default*"]
    )


def test_real_mode_skips_sim_only_expectations_and_refuses_a_sim_only_service(
    pytester: pytest.Pytester,
) -> None:
    _project(
        pytester,
        burst=BURST.replace("min: 0.99}", "min: 0.99, mode: sim}"),
        occ=OCC,
    )
    result = pytester.runpytest(
        "scenarios", "--herdlab-mode", "real", "-rs", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(skipped=1, failed=1)
    out = result.stdout.str()
    assert "burst.yaml: applies to sim runs only" in out
    assert "service.kind: kind 'occ' runs in simulation only" in out
