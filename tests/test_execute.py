"""The executor: same results on every executor, cache reuse, ordering, interrupts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.execute import (
    DaskExecutor,
    FixedWorkload,
    InProcess,
    ProcessPool,
    ResultCache,
    Unit,
    UnitResult,
    execute,
)
from sim.execute.cache import unit_key
from sim.execute.executors import DASK_TASK_MOST_S, UNKNOWN_COST_S, dask_tasks
from sim.policies.presets import preset

from .simhelp import scenario_from

SMALL = """\
name: small
seed: 7
duration_s: 30
clients:
  count: 300
  arrival: {kind: poisson, schedule: [{from_s: 0, rate_per_s: 20}]}
  job_timeout_s: 20
  request_timeout_s: 2
  follow_stream: false
service: {kind: rpc, instances: 4, concurrency: 2,
          service_time: {kind: constant, value_s: 0.5}}
faults:
  - {kind: outage, start_s: 10, end_s: 14, answer: "503"}
policies: [seed-default, full-jitter, no-retry]
"""


def _units(n_policies: int, reps: int) -> list[Unit]:
    return [
        Unit(unit_key({"policy": i}, 7, r), i, 7, r) for i in range(n_policies) for r in range(reps)
    ]


def _summaries(results: list[UnitResult]) -> str:
    return json.dumps([(r.key, r.summary) for r in results], sort_keys=True)


def test_every_executor_gives_the_same_summaries_in_the_units_order(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    units = _units(3, 2)
    inproc = execute(workload, units, InProcess())
    with ProcessPool(2) as pool:
        pooled = execute(workload, units, pool)
    assert [r.key for r in inproc] == [u.key for u in units]
    assert _summaries(inproc) == _summaries(pooled)


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_same_summaries(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    units = _units(3, 1)
    with DaskExecutor("local", 2) as dask:
        on_dask = execute(workload, units, dask)
        again = execute(workload, units, dask)  # a second batch on the same cluster
    assert (
        _summaries(on_dask)
        == _summaries(again)
        == _summaries(execute(workload, units, InProcess()))
    )


def test_the_cache_runs_only_what_is_missing(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    cache = ResultCache(tmp_path / "cache")
    first = execute(workload, _units(2, 1), InProcess(), cache)
    assert len(cache) == 2
    ran: list[str] = []
    seen: list[tuple[int, int]] = []
    again = execute(
        workload,
        _units(3, 1),
        InProcess(),
        cache,
        on_progress=lambda d, t: seen.append((d, t)),
        on_result=lambda r: ran.append(r.key),
    )
    assert _summaries(again[:2]) == _summaries(first)
    assert seen[0] == (2, 3) and seen[-1] == (3, 3)  # two cached, one run
    assert len(cache) == 3 and len(ran) == 3


def test_a_unit_given_twice_runs_once(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    u = _units(1, 1)[0]
    calls: list[str] = []
    out = execute(workload, [u, u], InProcess(), on_result=lambda r: calls.append(r.key))
    assert len(calls) == 1 and out[0] is out[1]


def test_an_interrupt_keeps_every_finished_unit(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    cache = ResultCache(tmp_path / "cache")

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(workload, _units(3, 1), InProcess(), cache, on_progress=stop_after_two)
    assert len(cache) == 2


def test_a_damaged_cache_file_is_computed_again(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = unit_key({"x": 1}, 1, 0)
    cache.put(UnitResult(key, {"jobs": 1}, 0.1))
    path = next(tmp_path.glob("*/*.json"))
    path.write_text("{not json")
    assert cache.get(key) is None


def test_a_unit_key_changes_with_seed_replication_and_what() -> None:
    base = unit_key({"a": 1, "b": 2}, 1, 0)
    assert unit_key({"b": 2, "a": 1}, 1, 0) == base  # dict order does not matter
    assert (
        len(
            {
                base,
                unit_key({"a": 1, "b": 3}, 1, 0),
                unit_key({"a": 1, "b": 2}, 2, 0),
                unit_key({"a": 1, "b": 2}, 1, 1),
            }
        )
        == 4
    )


def test_fixed_workload_realizes_its_policy(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, (preset("no-retry"),))
    assert workload.realize(0)[1].name == "no-retry"


@pytest.mark.slow
def test_dask_joins_a_running_scheduler_by_address_and_leaves_it_running(
    tmp_path: Path,
) -> None:
    from distributed import LocalCluster

    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    units = _units(2, 1)
    local = {"n_workers": 1, "threads_per_worker": 1, "dashboard_address": "127.0.0.1:0"}
    with LocalCluster(**local) as cluster:
        with DaskExecutor(cluster.scheduler_address) as joined:
            got = execute(workload, units, joined)
            assert joined.workers == 1
        assert cluster.status.name == "running"  # not ours to stop
    assert _summaries(got) == _summaries(execute(workload, units, InProcess()))


class _TwoWorkersInTurn(InProcess):
    """In-process, one unit after the other, but counted as two workers: the order it
    runs them in is the order :func:`execute` hands them over."""

    workers = 2


def test_with_more_than_one_worker_the_costliest_units_run_first(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    costs = [0.2, 0.9, 0.2, 0.5]
    units = [
        Unit(unit_key({"policy": i % 3}, 7, i), i % 3, 7, i, cost_s=c) for i, c in enumerate(costs)
    ]
    ran: list[str] = []
    out = execute(workload, units, _TwoWorkersInTurn(), on_result=lambda r: ran.append(r.key))
    # longest first, equal estimates in their given order; results in the units' order
    assert ran == [units[1].key, units[3].key, units[0].key, units[2].key]
    assert [r.key for r in out] == [u.key for u in units]
    ran.clear()
    execute(workload, units, InProcess(), on_result=lambda r: ran.append(r.key))
    assert ran == [u.key for u in units]  # one worker: order does not matter, none changed


@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 5.0)), min_size=1, max_size=200),
    st.integers(1, 8),
)
def test_dask_tasks_keep_the_order_and_shrink_to_single_units(
    costs: list[float], workers: int
) -> None:
    units = [Unit(str(i), i, 0, 0, cost_s=c) for i, c in enumerate(sorted(costs, reverse=True))]
    tasks = dask_tasks(units, workers)
    assert [u for t in tasks for u in t] == units  # every unit once, in order
    cost = [[u.cost_s or UNKNOWN_COST_S for u in t] for t in tasks]
    assert all(len(c) == 1 or sum(c) <= DASK_TASK_MOST_S + 1e-9 for c in cost)
    if workers > 1:  # the last task is one unit: nobody waits long for it
        assert len(tasks[-1]) == 1
    for i, c in enumerate(cost):  # each takes at most 1/workers of what is left, or one unit
        left = sum(map(sum, cost[i:]))
        assert len(c) == 1 or sum(c) <= left / workers + 1e-9


def test_a_unit_that_keeps_its_samples_reads_them_back_from_the_cache(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, SMALL)
    workload = FixedWorkload(scenario, scenario.policies)
    cache = ResultCache(tmp_path / "cache")
    (unit,) = [Unit(unit_key({"policy": 0}, 7, 0), 0, 7, 0, samples=True)]
    (fresh,) = execute(workload, [unit], InProcess(), cache)
    (cached,) = execute(workload, [unit], InProcess(), cache, on_progress=_no_run)
    assert fresh.samples is not None and cached.samples is not None
    assert fresh.samples.keys() == cached.samples.keys()
    for name, values in fresh.samples.items():
        assert values.dtype == cached.samples[name].dtype
        assert values.tobytes() == cached.samples[name].tobytes()
    # a summary whose samples are gone is computed again, not read without them
    next((tmp_path / "cache").glob("*/*.npz")).unlink()
    assert cache.get(unit.key, samples=True) is None
    assert cache.get(unit.key) is not None


def _no_run(done: int, total: int) -> None:
    assert done == total, "a unit ran that the cache holds"
