"""A scenario's ``objective:`` block: parsed into one Objective, every mistake with its line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sim.decide.objective import Objective, default_objective, objective_for
from sim.decide.verdict import Bound
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.errors import Problem

from .conftest import MINIMAL, REPO

WriteYaml = Callable[[str], Path]


def problems(path: Path) -> tuple[Problem, ...]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value.problems


def test_an_objective_block_becomes_one_objective(write_yaml: WriteYaml) -> None:
    s = load_scenario(
        write_yaml(
            MINIMAL + "objective:\n"
            "  maximize: success_rate\n"
            "  subject_to: {recovery_load_ratio: {max: 3}}\n"
            "  then: [completion_s.p99]\n"
        )
    )
    assert s.objective is not None
    assert s.objective.goal == "maximize" and s.objective.metric == "success_rate"
    (limit,) = s.objective.subject_to
    assert limit.metric == "recovery_load_ratio" and limit.bound == Bound(high=3)
    assert s.objective.then == ("completion_s.p99",)
    assert objective_for(s) is s.objective
    # results.json keeps it in the grammar's own shape, and reads it back
    assert Objective.from_json(s.objective.to_json()) == s.objective


def test_without_an_objective_the_default_applies(write_yaml: WriteYaml) -> None:
    s = load_scenario(write_yaml(MINIMAL))
    assert s.objective is None
    assert objective_for(s) == default_objective("job", faults=False)
    assert not objective_for(s).subject_to  # nothing to recover from
    assert default_objective("job").subject_to[0].metric == "recovery_load_ratio"
    assert default_objective("occ").metric == "server_writes"


def test_a_misspelt_figure_names_its_line_and_the_closest_figure(write_yaml: WriteYaml) -> None:
    path = write_yaml(MINIMAL + "objective:\n  maximize: sucess_rate\n")
    (p,) = problems(path)
    assert (p.line, p.path) == (9, "objective.maximize")
    assert "did you mean 'success_rate'" in p.message


def test_a_misspelt_constraint_names_its_line_and_the_closest_figure(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(
        MINIMAL
        + "objective:\n  maximize: success_rate\n"
        + "  subject_to:\n    recovery_load_ration: {max: 3}\n"
    )
    (p,) = problems(path)
    assert (p.line, p.path) == (11, "objective.subject_to.recovery_load_ration")
    assert "did you mean 'recovery_load_ratio'" in p.message


@pytest.mark.parametrize(
    ("block", "path", "rule"),
    [
        ("  maximize: success_rate\n  minimize: attempts_per_job\n", "objective", "exactly one"),
        ("  then: [completion_s.p99]\n", "objective", "exactly one"),
        ("  maximize: attempts_per_job\n", "objective.maximize", "use minimize"),
        ("  minimize: server_writes\n", "objective.minimize", "occ services only"),
        (
            "  maximize: success_rate\n  subject_to: {recovery_s: {}}\n",
            "objective.subject_to.recovery_s",
            "give min, max or both",
        ),
        (
            "  maximize: success_rate\n  subject_to: {recovery_s: {min: 5, max: 1}}\n",
            "objective.subject_to.recovery_s.max",
            "must be >= min",
        ),
        ("  maximize: success_rate\n  then: [jobs]\n", "objective.then[0]", "no better direction"),
    ],
)
def test_objective_rules(write_yaml: WriteYaml, block: str, path: str, rule: str) -> None:
    (p,) = problems(write_yaml(MINIMAL + "objective:\n" + block))
    assert p.path == path and rule in p.message
    assert p.line >= 8  # on the objective block, not at the top of the file


def test_validate_reports_an_objective_mistake_as_file_line_and_exits_2(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(MINIMAL + "objective:\n  minimize: p99\n")
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert f"{path}:9: objective.minimize: 'p99' is not one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_peak_window_is_a_scenario_key_with_its_rules(write_yaml: WriteYaml) -> None:
    assert load_scenario(write_yaml(MINIMAL)).peak_window_s == 1.0
    assert load_scenario(write_yaml(MINIMAL + "peak_window_s: 0.25\n")).peak_window_s == 0.25
    (p,) = problems(write_yaml(MINIMAL + "peak_window_s: 100\n"))
    assert p.path == "peak_window_s" and "duration_s" in p.message
