"""Units of work and the workloads they belong to; running one unit."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sim.policies.policy import Policy
from sim.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class Unit:
    """One simulation: which one within its workload (``spec``), its seed and replication.

    ``key`` names the result in a cache; ``artifacts`` asks for the first replication's
    CSVs and distributions as well as its summary (a plain run writes them; a sweep does
    not need them); ``samples`` for the samples percentiles pool over replications.
    ``cost_s`` is the unit's estimated simulation time (:func:`sim.cost.estimate`; 0:
    unknown): executors with more than one worker start the costliest units first. It
    schedules and changes no result, so it is not part of the key.
    """

    key: str
    spec: Hashable
    seed: int
    replication: int
    artifacts: bool = False
    samples: bool = False
    cost_s: float = 0.0


@dataclass(frozen=True, slots=True)
class UnitResult:
    """What one unit produced: its summary figures and, if asked, its artifacts."""

    key: str
    summary: dict[str, Any]
    #: seconds spent simulating and summarising: the work itself, without building the
    #: scenario, shipping or storing (what the sweep benchmark counts as overhead)
    sim_s: float
    artifacts: dict[str, Any] | None = None
    samples: dict[str, np.ndarray] | None = None


class Workload(Protocol):
    """What every unit of a batch shares; sent to each worker once."""

    def realize(self, spec: Hashable) -> tuple[Scenario, Policy]:
        """The scenario and policy unit ``spec`` simulates."""
        ...


@dataclass(frozen=True, slots=True)
class FixedWorkload:
    """One scenario and its policies; a unit's spec is the index of its policy."""

    scenario: Scenario
    policies: tuple[Policy, ...]

    def realize(self, spec: Hashable) -> tuple[Scenario, Policy]:
        assert isinstance(spec, int)
        return self.scenario, self.policies[spec]


def run_unit(
    workload: Workload, unit: Unit, progress: Callable[[str], None] | None = None
) -> UnitResult:
    """Simulate one unit and summarise it. Deterministic: the same unit gives the same
    result in any process, after any other unit. ``progress`` gets the world's "x% of the
    duration simulated" lines (in-process runs only)."""
    from sim.results import artifacts_of
    from sim.world.run import run_policy
    from sim.world.summary import reads_gauges, samples, summarize

    scenario, policy = workload.realize(unit.spec)
    start = time.perf_counter()
    run = run_policy(
        scenario,
        policy,
        seed=unit.seed,
        replication=unit.replication,
        progress=progress,
        # the time series' gauges only where something reads them: a sample per bucket
        # is a tenth of a short run (the OCC table's)
        gauges=unit.artifacts or reads_gauges(scenario),
    )
    summary = summarize(run.recorder, scenario)
    sim_s = time.perf_counter() - start
    artifacts = artifacts_of(run.recorder, scenario) if unit.artifacts else None
    kept = samples(run.recorder) if unit.samples else None
    return UnitResult(unit.key, summary, sim_s, artifacts, kept)
