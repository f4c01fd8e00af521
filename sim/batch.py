"""Simulate many scenarios in turn on one executor (what ``herdlab check`` runs).

Each scenario is a :func:`sim.results.run_scenario` on the shared executor (in-process, a
local process pool or Dask: :mod:`sim.execute`), so its (policy, replication) units run in
parallel and give the same numbers on any executor; its ``results.json`` is rewritten as
its policies finish, marked incomplete until the last, so an interrupted batch keeps what
it computed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.execute import Executor, InProcess
from sim.results import run_scenario
from sim.scenario.model import Scenario


@dataclass
class ScenarioRun:
    """One scenario's results, and the wall time its simulations took."""

    scenario: Scenario
    out_dir: Path
    record: dict[str, Any]
    time_s: float


def available_cores() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def simulate_scenarios(
    scenarios: Sequence[tuple[Scenario, Path]],
    replications: int = 1,
    executor: Executor | None = None,
    on_done: Callable[[ScenarioRun], None] | None = None,
) -> list[ScenarioRun]:
    """Simulate every policy of every (scenario, output folder) on ``executor`` (default:
    in this process), one scenario after another; ``on_done`` is called as each completes."""
    runs: list[ScenarioRun] = []
    for scenario, out_dir in scenarios:
        start = time.perf_counter()
        record = run_scenario(
            scenario, out_dir, replications=replications, executor=executor or InProcess()
        )
        run = ScenarioRun(scenario, out_dir, record, time.perf_counter() - start)
        runs.append(run)
        if on_done is not None:
            on_done(run)
    return runs
