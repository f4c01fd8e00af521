"""Expectations and baselines: the grammar (every mistake with its line), the verdicts
(CI-aware, relative, per mode) and the baseline comparison (direction-aware, refusals)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim.decide.baseline import BaselineError, check_comparable, compare, load_baseline
from sim.decide.checks import parse_tolerances
from sim.decide.expect import evaluate, planned, unique_names
from sim.decide.figures import UnknownFigure
from sim.decide.verdict import Status
from sim.results import RESULTS_FORMAT
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.model import Tolerance

from .conftest import MINIMAL

WriteYaml = Callable[..., Path]

TWO = MINIMAL.replace("  - seed-default\n", "  - seed-default\n  - immediate\n")


def _problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return [str(p) for p in info.value.problems]


def test_expectation_mistakes_are_reported_with_file_line_and_a_suggestion(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(
        TWO
        + "expect:\n"
        + "  - {metric: sucess_rate, min: 0.9}\n"  # line 10
        + "  - {metric: success_rate, policy: seed-defualt, min: 0.9}\n"
        + "  - {metric: success_rate, policy: [immediate, nope], min: 0.9}\n"
        + "  - {metric: success_rate, at_least: seed-default, min: 0.9}\n"
        + "  - {metric: success_rate, policy: immediate, at_least: immediate}\n"
        + "  - {metric: success_rate, by: 0.1, max: 1}\n"
        + "  - {metric: server_calls, max: 10}\n"
        + "  - {metric: success_rate}\n"
        + "  - {metric: success_rate, min: 0.9, mode: simulated}\n"
        + "tolerances: {success_rate: 0.01, completion_s.p99: 10%, peak_load: 5%,"
        + " attempts_per_job: lots}\n"
    )
    problems = _problems(path)
    f = str(path)
    expected = [
        f"{f}:10: expect[0].metric: 'sucess_rate' is not one of",
        f"{f}:11: expect[1].policy: 'seed-defualt' is not a policy of this scenario"
        " (did you mean 'seed-default'?); its policies: seed-default, immediate",
        f"{f}:12: expect[2].policy[1]: 'nope' is not a policy of this scenario",
        f"{f}:13: expect[3]: give min/max or at_least, not both",
        f"{f}:14: expect[4].at_least: compares 'immediate' with itself",
        f"{f}:15: expect[5].by: applies only with at_least or at_most",
        f"{f}:16: expect[6].metric: 'server_calls' is measured for occ services only;"
        " this one is job",
        f"{f}:17: expect[7]: give min, max or both, or at_least / at_most another policy",
        f"{f}:18: expect[8].mode: 'simulated' is not one of sim, real",
        f"{f}:19: tolerances.peak_load: unknown key (did you mean 'peak_load_ratio'?)",
        f"{f}:19: tolerances.attempts_per_job: expected a number >= 0 or a percentage like 5%",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, "\n".join(problems))
    assert "(did you mean 'success_rate'?)" in problems[0]
    assert len(problems) == len(expected)


def test_expectations_load_into_policies_relative_bounds_modes_and_tolerances(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(
        TWO
        + "expect:\n"
        + "  - {metric: completion_s.p99, max: 30}\n"
        + "  - {metric: success_rate, policy: immediate, at_most: seed-default, by: 0.1}\n"
        + "  - {metric: peak_offered_per_s, policy: [immediate], at_least: seed-default,"
        + " times: 1.5, mode: sim}\n"
        + "tolerances: {success_rate: 0.01, completion_s.p99: 10%}\n"
    )
    every, rel, ratio = load_scenario(path).expect
    assert every.policies is None and every.describe() == "<= 30" and every.line == 10
    assert rel.relative is not None and rel.describe() == "<= seed-default - 0.1"
    assert rel.relative.threshold(0.9) == pytest.approx(0.8)
    assert ratio.mode == "sim" and ratio.describe() == ">= 1.5 x seed-default"
    assert load_scenario(path).tolerances == {
        "success_rate": Tolerance(0.01, relative=False),
        "completion_s.p99": Tolerance(0.1, relative=True),
    }


def _entry(name: str, per_rep: list[dict[str, Any]]) -> dict[str, Any]:
    """A results.json policy entry from per-replication summaries (mean and t CI)."""
    from sim.results import mean_and_ci

    mean, ci = mean_and_ci(per_rep)
    return {"name": name, "summary": mean, "ci95": ci, "per_replication": per_rep}


def _load(write_yaml: WriteYaml, expect: str) -> Any:
    return load_scenario(write_yaml(TWO + "expect:\n" + expect))


def test_a_bound_passes_fails_or_is_inconclusive_by_the_ci_and_null_fails(
    write_yaml: WriteYaml,
) -> None:
    sc = _load(
        write_yaml, "  - {metric: success_rate, min: 0.9}\n  - {metric: recovery_s, max: 5}\n"
    )
    entries = [
        _entry("seed-default", [{"success_rate": 0.95, "recovery_s": 2.0}]),
        # mean 0.9, CI straddles 0.9
        _entry(
            "immediate",
            [{"success_rate": 0.8, "recovery_s": None}, {"success_rate": 1.0, "recovery_s": None}],
        ),
    ]
    verdicts = evaluate(sc.expect, entries, "sim", "s.yaml").verdicts
    status = {(v.policy, v.metric): v for v in verdicts}
    assert status[("seed-default", "success_rate")].status is Status.PASS
    unsure = status[("immediate", "success_rate")]
    assert unsure.status is Status.INCONCLUSIVE and "add replications" in unsure.note
    assert unsure.ci95 is not None and unsure.ci95[0] < 0.9 < unsure.ci95[1]
    never = status[("immediate", "recovery_s")]
    assert never.status is Status.FAIL and never.observed is None and "null" in never.note
    assert never.where == "s.yaml:11"


def test_a_relative_expectation_is_judged_on_paired_replications(write_yaml: WriteYaml) -> None:
    sc = _load(
        write_yaml,
        "  - {metric: attempts_per_job, policy: seed-default, at_most: immediate, times: 0.5}\n",
    )
    # the two policies move together across replications (common random numbers): the
    # unpaired CIs overlap the threshold, the paired differences are all well below it
    seed = [{"attempts_per_job": x} for x in (1.0, 2.0, 3.0)]
    immediate = [{"attempts_per_job": x} for x in (2.6, 4.6, 6.6)]
    (v,) = evaluate(
        sc.expect, [_entry("seed-default", seed), _entry("immediate", immediate)], "sim", "s"
    ).verdicts
    assert v.status is Status.PASS
    assert v.bound == "<= 0.5 x immediate (= 2.3)"
    assert v.ci95 is not None and v.ci95[1] > 2.3  # the unpaired CI alone would not decide
    assert "paired over 3 replications" in v.note
    worse = [{"attempts_per_job": x} for x in (1.5, 2.5, 3.5)]
    (v,) = evaluate(
        sc.expect, [_entry("seed-default", worse), _entry("immediate", immediate)], "sim", "s"
    ).verdicts
    assert v.status is Status.FAIL


def test_expectations_of_the_other_mode_or_of_policies_not_run_are_listed_not_judged(
    write_yaml: WriteYaml,
) -> None:
    sc = _load(
        write_yaml,
        "  - {metric: success_rate, min: 0.5, mode: real}\n"
        "  - {metric: success_rate, policy: immediate, at_least: seed-default}\n"
        "  - {metric: success_rate, min: 0.5}\n",
    )
    only = [_entry("immediate", [{"success_rate": 0.7}])]
    ev = evaluate(sc.expect, only, "sim", "s.yaml")
    assert [(v.policy, v.status) for v in ev.verdicts] == [("immediate", Status.PASS)]
    assert ev.not_checked == (
        "s.yaml:10: success_rate: applies to real runs only",
        "s.yaml:11: success_rate: this run has no policy seed-default",
    )
    assert len(planned(sc.expect, ["seed-default", "immediate"], None)) == 5
    assert len(planned(sc.expect, ["seed-default", "immediate"], "sim")) == 3


def test_test_names_are_policy_and_metric_with_the_line_where_repeated() -> None:
    names = unique_names([("a", "m", 3), ("a", "m", 4), ("b", "m", 3), ("a", "n", 5)])
    assert names == ["a::m@3", "a::m@4", "b::m", "a::n"]


def _record(name: str, summaries: dict[str, dict[str, Any]], **head: Any) -> dict[str, Any]:
    return {
        "results_format": RESULTS_FORMAT,
        "herdlab_version": "0",
        "complete": True,
        "mode": "sim",
        "seed": 1,
        "scenario": {"name": name, "service_kind": "job"},
        "policies": [
            {"name": p, "summary": s, "ci95": {}, "per_replication": [s]}
            for p, s in summaries.items()
        ],
        **head,
    }


def _summary(success: float, attempts: float, recovery: float | None) -> dict[str, Any]:
    return {"success_rate": success, "attempts_per_job": attempts, "recovery_s": recovery}


def test_a_baseline_comparison_is_direction_aware_within_tolerance() -> None:
    old = _record("s", {"p": _summary(0.95, 1.5, 4.0)})
    same = compare(old, old, {}).verdicts
    assert same and all(v.status is Status.PASS for v in same)
    assert {v.metric for v in same} >= {"success_rate", "attempts_per_job", "recovery_s"}
    assert "jobs" not in {v.metric for v in same}  # no direction: not compared
    # better in every figure: passes; worse beyond 5%: fails, named by figure
    better = _record("s", {"p": _summary(1.0, 1.2, 2.0)})
    assert all(v.status is Status.PASS for v in compare(better, old, {}).verdicts)
    worse = _record("s", {"p": _summary(0.94, 1.7, None)})
    by = {v.metric: v for v in compare(worse, old, {}).verdicts}
    assert by["success_rate"].status is Status.PASS  # 1% worse, within the default 5%
    assert by["attempts_per_job"].status is Status.FAIL
    assert by["attempts_per_job"].bound == "<= 1.575 (baseline 1.5 + 5%)"
    assert by["recovery_s"].status is Status.FAIL  # never recovered now
    tight = compare(worse, old, {"success_rate": Tolerance(0.001, relative=False)}).verdicts
    assert {v.metric: v for v in tight}["success_rate"].status is Status.FAIL


def test_a_baseline_of_another_scenario_mode_or_format_is_refused(tmp_path: Path) -> None:
    record = _record("herd", {"p": _summary(1, 1, 1)})
    with pytest.raises(BaselineError, match="a baseline of scenario 'other', not 'herd'"):
        check_comparable(record, _record("other", {}), tmp_path)
    with pytest.raises(BaselineError, match="a baseline of a real run"):
        check_comparable(record, _record("herd", {}, mode="real"), tmp_path)
    old = tmp_path / "results.json"
    old.write_text(json.dumps(_record("herd", {}, results_format=RESULTS_FORMAT + 1)))
    with pytest.raises(BaselineError, match=f"this herdlab reads format {RESULTS_FORMAT}"):
        load_baseline(old)
    old.write_text(json.dumps(_record("herd", {}, complete=False)))
    with pytest.raises(BaselineError, match="incomplete"):
        load_baseline(old)
    with pytest.raises(BaselineError, match="no such baseline"):
        load_baseline(tmp_path / "nope" / "results.json")


def test_tolerance_options_are_per_figure_or_a_percentage_for_all() -> None:
    t = parse_tolerances(["10%", "success_rate=0.01", "completion_s.p99=20%"])
    assert t.default == Tolerance(0.1, relative=True)
    assert t.per_figure == {
        "success_rate": Tolerance(0.01, relative=False),
        "completion_s.p99": Tolerance(0.2, relative=True),
    }
    with pytest.raises(ValueError, match="a percentage"):
        parse_tolerances(["0.05"])
    with pytest.raises(ValueError, match="not a number >= 0"):
        parse_tolerances(["success_rate=-1"])
    with pytest.raises(UnknownFigure, match="did you mean 'success_rate'"):
        parse_tolerances(["sucess_rate=0.01"])
