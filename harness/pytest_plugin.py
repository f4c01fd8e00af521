"""herdlab's pytest plugin: a scenario's expectations as pytest tests.

Registered through the ``pytest11`` entry point, so a project that installed herdlab runs
``pytest scenarios/``. A YAML file whose name matches the ini option ``herdlab_scenarios``
(default ``*.yaml *.yml``) and whose top level has ``expect:`` is collected as
``FILE::POLICY::METRIC`` items, one per expectation and policy (``METRIC@LINE`` where two
expectations check one policy's figure). An item simulates what it needs (its policy and,
for a relative expectation, the other one; each once per session and process) and fails
with the check command's message. With pytest-xdist, ``-n auto --dist loadscope`` runs each
policy's items in one worker, so each policy is simulated once.

Options: ``--herdlab-mode real`` (run the real harness instead; ``--herdlab-scale F``),
``--herdlab-replications R``, ``--herdlab-accept-inconclusive``.
"""

from __future__ import annotations

import fnmatch
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sim.decide.verdict import Verdict
    from sim.scenario.model import Expectation, Scenario

_EXPECT = re.compile(r"^expect\s*:", re.MULTILINE)
_CACHE = pytest.StashKey[dict[tuple[str, str], dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "herdlab_scenarios",
        type="args",
        default=["*.yaml", "*.yml"],
        help="herdlab: globs of scenario files to collect (matched against the file name and"
        " its path from the rootdir); only files with expect: are collected",
    )
    group = parser.getgroup("herdlab", "herdlab scenario expectations")
    group.addoption(
        "--herdlab-mode",
        choices=("sim", "real"),
        default="sim",
        help="check the expectations on simulated runs (default) or real ones",
    )
    group.addoption(
        "--herdlab-scale",
        type=float,
        default=1.0,
        help="real mode: shrink clients and capacity together by F (0 < F <= 1)",
    )
    group.addoption(
        "--herdlab-replications",
        type=int,
        default=1,
        help="sim mode: replications per policy (bounds then hold on the 95%% CI)",
    )
    group.addoption(
        "--herdlab-accept-inconclusive",
        action="store_true",
        help="an expectation whose 95%% CI straddles its bound passes",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_CACHE] = {}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    rel = (
        file_path.relative_to(parent.config.rootpath).as_posix()
        if _under(file_path, parent.config.rootpath)
        else file_path.as_posix()
    )
    globs = parent.config.getini("herdlab_scenarios")
    if not any(fnmatch.fnmatch(file_path.name, g) or fnmatch.fnmatch(rel, g) for g in globs):
        return None
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not _EXPECT.search(text):
        return None
    file: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return file


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


class ScenarioError(Exception):
    """A scenario file with problems, or a run that could not be made: shown without a
    traceback."""


class ScenarioFile(pytest.File):
    """One scenario file: a collector per policy that one of its expectations checks."""

    def collect(self) -> Iterator[PolicyNode]:
        from sim.decide.expect import planned
        from sim.scenario.errors import ScenarioError as LoadError
        from sim.scenario.loader import load_scenario

        try:
            scenario = load_scenario(self.path)
        except LoadError as exc:
            raise ScenarioError(str(exc)) from None
        pairs = planned(scenario.expect, [p.name for p in scenario.policies], None)
        for policy in scenario.policies:
            mine = [exp for exp, name in pairs if name == policy.name]
            if mine:
                yield PolicyNode.from_parent(
                    self, name=policy.name, scenario=scenario, expectations=mine
                )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class PolicyNode(pytest.Collector):
    """One policy of a scenario: an item per expectation that checks it."""

    def __init__(
        self, *, scenario: Scenario, expectations: list[Expectation], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.expectations = expectations

    def collect(self) -> Iterator[ExpectationItem]:
        from sim.decide.expect import planned, unique_names

        every = planned(self.scenario.expect, [p.name for p in self.scenario.policies], None)
        names = unique_names([(name, exp.metric, exp.line) for exp, name in every])
        for (exp, policy), full in zip(every, names, strict=True):
            if policy == self.name:
                yield ExpectationItem.from_parent(
                    self, name=full.split("::", 1)[1], scenario=self.scenario, expectation=exp
                )


class ExpectationFailed(Exception):
    """An expectation that did not hold; its message is the verdict's."""


class ExpectationItem(pytest.Item):
    """One expectation for one policy."""

    def __init__(self, *, scenario: Scenario, expectation: Expectation, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.expectation = expectation
        assert self.parent is not None
        self.policy = self.parent.name
        mode = self.config.getoption("herdlab_mode")
        if expectation.mode is not None and expectation.mode != mode:
            self.add_marker(pytest.mark.skip(reason=f"applies to {expectation.mode} runs only"))

    def runtest(self) -> None:
        from sim.decide.verdict import Status

        exp = self.expectation
        needed = [self.policy] + ([exp.relative.other] if exp.relative is not None else [])
        entries = {name: self._entry(name) for name in needed}
        verdict = _check(self.scenario, exp, entries[self.policy], entries)
        accept = self.config.getoption("herdlab_accept_inconclusive")
        if verdict.status is Status.FAIL or (verdict.status is Status.INCONCLUSIVE and not accept):
            raise ExpectationFailed(verdict.message())

    def _entry(self, policy: str) -> dict[str, Any]:
        cache = self.config.stash[_CACHE]
        mode = self.config.getoption("herdlab_mode")
        key = (self.scenario.source, policy)
        if key not in cache:
            if mode == "real":
                cache.update(_real_entries(self.scenario, self.config))
            else:
                reps = self.config.getoption("herdlab_replications")
                cache[key] = _sim_entry(self.scenario, policy, reps)
        return cache[key]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ExpectationFailed | ScenarioError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.expectation.line - 1, f"{self.scenario.name}::{self.nodeid_tail}"

    @property
    def nodeid_tail(self) -> str:
        return f"{self.policy}::{self.name}"


def _check(
    scenario: Scenario,
    exp: Expectation,
    entry: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
) -> Verdict:
    from sim.decide.expect import check

    return check(exp, entry, by_name, f"{scenario.source}:{exp.line}")


def _sim_entry(scenario: Scenario, policy_name: str, replications: int) -> dict[str, Any]:
    """One policy's figures over ``replications``, as in results.json (no files written)."""
    from sim.results import mean_and_ci
    from sim.world.run import run_policy
    from sim.world.summary import samples, summarize

    policy = scenario.policy(policy_name)
    per_rep, per_rep_samples = [], []
    for r in range(max(1, replications)):
        recorder = run_policy(scenario, policy, seed=scenario.seed, replication=r).recorder
        per_rep.append(summarize(recorder, scenario))
        per_rep_samples.append(samples(recorder))
    # the same figures as herdlab run's: percentiles pooled over the replications' samples
    mean, ci = mean_and_ci(per_rep, per_rep_samples)
    return {"name": policy_name, "summary": mean, "ci95": ci, "per_replication": per_rep}


def _real_entries(scenario: Scenario, config: pytest.Config) -> dict[tuple[str, str], Any]:
    """Every policy of the scenario run for real, once (results kept in a temporary folder
    named in any failure)."""
    from harness.faults import check_realizable
    from harness.procs import ProcessError
    from harness.real import run_real, scale_scenario

    scale = config.getoption("herdlab_scale")
    problems = check_realizable(scale_scenario(scenario, scale))
    if problems:
        raise ScenarioError("\n".join(str(p) for p in problems))
    out_dir = Path(tempfile.mkdtemp(prefix=f"herdlab-{scenario.name}-"))
    try:
        record = run_real(scenario, out_dir, list(scenario.policies), scale=scale)
    except ProcessError as exc:
        raise ScenarioError(f"cannot start the real bench: {exc}") from None
    return {(scenario.source, p["name"]): p for p in record["policies"]}
