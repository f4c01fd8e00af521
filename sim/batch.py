"""Simulate many scenarios at once over a pool of processes (what ``herdlab check`` runs).

The unit of work is one policy of one scenario, all its replications: a worker loads the
scenario file itself, runs the policy with the scenario's seed (so a unit gives the same
numbers in any process, in any order), writes the policy's CSVs and returns its entry of
``results.json``. Each scenario's ``results.json`` is rewritten as its entries arrive,
marked incomplete until the last, so an interrupted batch keeps what it computed.

This is the small stand-in for the project's one executor of many simulations; it keeps
the same contract (units in, per-unit results out, deterministic per unit).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.results import file_stems, new_record, simulate_policy, write_results
from sim.scenario.loader import load_scenario
from sim.scenario.model import Scenario


@dataclass
class ScenarioRun:
    """One scenario's results as they fill: its record and the time its units took."""

    scenario: Scenario
    out_dir: Path
    record: dict[str, Any]
    entries: list[dict[str, Any] | None]
    time_s: float = 0.0
    done: bool = field(default=False)


def available_cores() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _unit(
    source: str, index: int, out_dir: str, seed: int, replications: int
) -> tuple[dict[str, Any], float]:
    """One policy of one scenario (run in a worker process)."""
    start = time.perf_counter()
    scenario = load_scenario(source)
    policy = scenario.policies[index]
    stem = file_stems([p.name for p in scenario.policies])[policy.name]
    entry = simulate_policy(scenario, policy, Path(out_dir), seed, replications, stem=stem)
    return entry, time.perf_counter() - start


def _worker_signals() -> None:
    """Workers leave Ctrl-C to the parent, which stops them; SIGTERM ends them at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes (ours, by pid) without waiting for their units."""
    workers: dict[int, Any] = getattr(pool, "_processes", None) or {}
    for process in list(workers.values()):
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _cost(scenario: Scenario) -> float:
    """A rough size of one policy's run, to start the longest units first."""
    clients = scenario.clients.count or 1000
    return clients * scenario.duration_s


def simulate_scenarios(
    scenarios: Sequence[tuple[Scenario, Path]],
    replications: int = 1,
    jobs: int | None = None,
    on_done: Callable[[ScenarioRun], None] | None = None,
) -> list[ScenarioRun]:
    """Simulate every policy of every (scenario, output folder); ``jobs`` processes (default:
    the available cores; 1 runs in this process). ``on_done`` is called as each scenario
    completes, in completion order; the returned runs are in input order."""
    runs: list[ScenarioRun] = []
    units: list[tuple[int, int]] = []
    for i, (scenario, out_dir) in enumerate(scenarios):
        out_dir.mkdir(parents=True, exist_ok=True)
        record = new_record(scenario, "sim", scenario.seed, replications)
        runs.append(ScenarioRun(scenario, out_dir, record, [None] * len(scenario.policies)))
        units.extend((i, j) for j in range(len(scenario.policies)))
    units.sort(key=lambda u: -_cost(runs[u[0]].scenario))
    workers = min(jobs or available_cores(), max(1, len(units)))

    def arrive(i: int, j: int, entry: dict[str, Any], took_s: float) -> None:
        run = runs[i]
        run.entries[j] = entry
        run.time_s += took_s
        run.record["policies"] = [e for e in run.entries if e is not None]
        run.done = all(e is not None for e in run.entries)
        run.record["complete"] = run.done
        write_results(run.out_dir, run.record)
        if run.done and on_done is not None:
            on_done(run)

    def args(i: int, j: int) -> tuple[str, int, str, int, int]:
        sc = runs[i].scenario
        return (sc.source, j, str(runs[i].out_dir), sc.seed, replications)

    if workers == 1:
        for i, j in units:
            arrive(i, j, *_unit(*args(i, j)))
        return runs
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_signals)
    pending: dict[Future[tuple[dict[str, Any], float]], tuple[int, int]] = {
        pool.submit(_unit, *args(i, j)): (i, j) for i, j in units
    }
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                i, j = pending.pop(fut)
                arrive(i, j, *fut.result())
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return runs
