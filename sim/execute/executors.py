"""Executors: in-process, a local process pool, Dask distributed; and :func:`execute`.

Each executor runs units of one workload and hands every result to a callback as it
finishes (in completion order); :func:`execute` puts them back in the units' order, so the
output never depends on the executor. The workload is sent once per worker: as the pool's
initializer argument, or scattered to every Dask worker (``broadcast=True``).

An executor keeps its pool or cluster from its first batch until :meth:`close` (a search
runs many batches); use it as a context manager. Interrupts: on KeyboardInterrupt the
executors cancel what has not started, hand over every unit that still finishes, stop the
processes they started and re-raise.

Order: with more than one worker, :func:`execute` hands the executor the costliest units
first (by their estimate, ``Unit.cost_s``), so a long unit does not start last while the
other workers run out of work. On Dask, units travel in tasks of a few (see
:func:`dask_tasks`): one task per unit cost the scheduler and client more CPU than the
simulations could spare on a small machine.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sim.execute.cache import ResultCache
from sim.execute.units import Unit, UnitResult, Workload, run_unit

OnResult = Callable[[UnitResult], None]
#: progress callback: units done (cached ones included), units in all
OnProgress = Callable[[int, int], None]


class Executor(Protocol):
    """Runs units of one workload; calls ``on_result`` for each as it finishes."""

    #: how many units run at once
    workers: int

    def run(self, workload: Workload, units: Sequence[Unit], on_result: OnResult) -> None: ...

    def close(self) -> None:
        """Stop every process this executor started."""
        ...


class _Closing:
    """``with executor:`` closes it, however the block ends."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(_Closing):
    """Units one after the other, in this process; ``progress`` gets each simulation's
    "x% simulated" lines (worth it for one long run)."""

    workers = 1

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.progress = progress

    def run(self, workload: Workload, units: Sequence[Unit], on_result: OnResult) -> None:
        for unit in units:
            on_result(run_unit(workload, unit, self.progress))


# ------------------------------------------------------------------ process pool

_WORKLOAD: Workload | None = None  # a pool worker's copy, set once by its initializer


def _init_worker(workload: Workload) -> None:
    global _WORKLOAD
    _WORKLOAD = workload
    # Ctrl-C reaches the whole process group: the parent decides what stops, and a
    # worker's traceback would only hide its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(unit: Unit) -> UnitResult:
    assert _WORKLOAD is not None, "the pool initializer did not run"
    return run_unit(_WORKLOAD, unit)


def _collect_rest(futures: Sequence[cf.Future[UnitResult]], on_result: OnResult) -> None:
    """After an interrupt: cancel what has not started; hand over what still finishes."""
    for f in futures:
        f.cancel()
    for f in futures:
        if f.cancelled():
            continue
        try:
            result = f.result()
        except Exception:  # a unit that failed while we were stopping: nothing to keep
            continue
        on_result(result)


class ProcessPool(_Closing):
    """Units on a local pool of worker processes (default: one per core). The pool lives
    while its workload does: a batch of another workload starts a new one."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: cf.ProcessPoolExecutor | None = None
        self._workload: Workload | None = None

    def _pool_for(self, workload: Workload) -> cf.ProcessPoolExecutor:
        if self._pool is None or self._workload is not workload:
            self.close()
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers, initializer=_init_worker, initargs=(workload,)
            )
            self._workload = workload
        return self._pool

    def run(self, workload: Workload, units: Sequence[Unit], on_result: OnResult) -> None:
        if not units:
            return
        pool = self._pool_for(workload)
        futures: list[cf.Future[UnitResult]] = []
        try:
            futures = [pool.submit(_run_in_worker, u) for u in units]
            for f in cf.as_completed(futures):
                on_result(f.result())
        except KeyboardInterrupt:
            _collect_rest(futures, on_result)
            self.close()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._workload = None


# ------------------------------------------------------------------ Dask


#: GIL switch interval while a Dask worker simulates (Python's default: 5 ms)
DASK_SWITCH_INTERVAL_S = 0.05

#: the most estimated simulation seconds one Dask task carries (estimates lean high, about
#: twofold): an interrupt loses at most that much per worker, and progress moves at least
#: that often, while a task's cost to the scheduler and client (tens of ms of their CPU on
#: a busy 2-core host, measured) stays a few per cent of its work
DASK_TASK_MOST_S = 2.0
#: the estimate taken for a unit whose ``cost_s`` is unknown (0)
UNKNOWN_COST_S = 0.5
#: tasks a worker is given ahead: one running, one waiting, so it never waits for the
#: scheduler between tasks; the rest are submitted as tasks finish
DASK_TASKS_AHEAD = 2

#: herdlab's modules a unit needs, imported in every Dask worker when the executor
#: connects (once per cluster), not by the first unit each worker runs
WORKER_MODULES = ("sim.results", "sim.sweep.points", "sim.scenario.loader")

#: Dask's periodic chores on a LocalCluster we start, slowed: at their defaults (event
#: loop health every 20 ms, system and memory monitors every 0.5 s and 0.1 s) an idle
#: 2-worker cluster took 11% of one core (measured), which a busy sweep takes from the
#: simulations. The dashboard's profiler is off: it samples the task thread's stack every
#: 10 ms, which on a simulation's deep Python stacks costs the simulation itself.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def dask_tasks(units: Sequence[Unit], workers: int) -> list[list[Unit]]:
    """``units`` (costliest first) cut into consecutive tasks by guided self-scheduling:
    each task takes 1 / ``workers`` of the estimated cost left, at most
    :data:`DASK_TASK_MOST_S`, at least one unit. Tasks shrink towards the end, the last
    being single cheap units, so no worker waits long for another's last task."""
    cost = [u.cost_s if u.cost_s > 0 else UNKNOWN_COST_S for u in units]
    left = list(itertools.accumulate(reversed(cost)))[::-1]  # left[i]: units i.. to run
    tasks: list[list[Unit]] = []
    i = 0
    while i < len(units):
        target = min(DASK_TASK_MOST_S, left[i] / max(1, workers))
        task, task_s = [units[i]], cost[i]
        i += 1
        while i < len(units) and task_s + cost[i] <= target:
            task.append(units[i])
            task_s += cost[i]
            i += 1
        tasks.append(task)
    return tasks


def _run_on_dask(workload: Workload, units: Sequence[Unit]) -> list[UnitResult]:
    """A task's units in a Dask worker's task thread. The worker's event loop runs in
    another thread of the same process and asks for the GIL every few ms; on a busy host
    each hand-over waits for the OS to schedule that thread, and a simulation ran 1.5-2.5x
    slower than in a pool process (measured). Holding the GIL for 50 ms at a time lets
    the loop in often enough for heartbeats (seconds apart)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(DASK_SWITCH_INTERVAL_S)
    try:
        return [run_unit(workload, u) for u in units]
    finally:
        sys.setswitchinterval(previous)


def _import_worker_modules() -> None:
    import importlib

    for name in WORKER_MODULES:
        importlib.import_module(name)


def _hold_sigint() -> Callable[[], None]:
    """Keep Ctrl-C from the processes a LocalCluster starts, without losing it; return the
    release, which delivers a Ctrl-C pressed meanwhile (KeyboardInterrupt). From the main
    thread only: elsewhere, a no-op.

    The workers must leave Ctrl-C to us (we hand over the finished units and close the
    cluster in order), so SIGINT is ignored while they start: an ignored signal stays
    ignored through exec, where a blocked one does not (spawn resets the mask; measured).
    Ignored alone, a Ctrl-C pressed during the start would be dropped; so it is blocked
    in this thread as well, and Linux never discards a blocked signal, ignored or not: it
    waits, pending, until the release puts the handler back and unblocks it.

    A thread that does not block it would take it and drop it: threads started meanwhile
    inherit the block, but multiprocessing's resource tracker, when its first spawn
    starts it, unblocks SIGINT in the spawning thread (Dask's event loop) for good; so
    the tracker is started first, here. Threads started before this call (numpy's BLAS
    threads: the command line limits them to none, ``harness.cli.ONE_BLAS_THREAD``) could
    still take it: then it is dropped, as plain ignoring would."""
    import threading
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    resource_tracker.ensure_running()
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def release() -> None:
        signal.signal(signal.SIGINT, previous_handler)  # first: ignoring discards it
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)  # a held one arrives now

    return release


class DaskExecutor(_Closing):
    """Units on Dask distributed: ``address`` ``local`` starts a LocalCluster of
    ``workers`` one-thread processes (stopped by :meth:`close`, interrupted or not); any
    other address joins that scheduler, whose workers must have herdlab installed.
    Connecting (the first batch, or :meth:`connect`) also imports herdlab in every
    worker."""

    def __init__(self, address: str = "local", workers: int | None = None) -> None:
        self.address = address
        self.workers = workers or os.cpu_count() or 1
        self._cluster: Any = None
        self._client: Any = None
        self._workload: Workload | None = None
        self._shared: Any = None

    def connect(self) -> Any:
        """The client: the cluster started or joined, herdlab imported in its workers."""
        if self._client is None:
            from distributed import Client, LocalCluster

            if self.address == "local":
                import dask

                # Ctrl-C reaches the whole process group; the workers must leave it to
                # us, so they start with SIGINT ignored (see _hold_sigint). Nannies hand
                # the config to the workers they start.
                release = _hold_sigint()
                try:
                    with dask.config.set(LOCAL_CLUSTER_CONFIG):
                        self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                            n_workers=self.workers,
                            threads_per_worker=1,
                            processes=True,
                            # its health page: on loopback, any free port
                            dashboard_address="127.0.0.1:0",
                            # start/stop chatter, and the heartbeat tracebacks a worker
                            # logs (at ERROR) when the scheduler closes first, as after a
                            # Ctrl-C; a unit's own error reaches us with its result
                            silence_logs=logging.CRITICAL,
                        )
                finally:
                    release()  # a Ctrl-C meanwhile: KeyboardInterrupt; close() stops it
                self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
            else:
                self._client = Client(self.address, timeout=30)  # type: ignore[no-untyped-call]
                self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
            self._client.run(_import_worker_modules)
        return self._client

    def run(self, workload: Workload, units: Sequence[Unit], on_result: OnResult) -> None:
        if not units:
            return
        from distributed import as_completed

        client = self.connect()
        if self._workload is not workload:  # the workload travels once per worker
            self._shared = client.scatter(workload, broadcast=True, hash=False)
            self._workload = workload
        tasks = iter(dask_tasks(units, self.workers))
        futures: list[Any] = []
        running = as_completed()  # type: ignore[no-untyped-call]

        def submit_next() -> None:
            task = next(tasks, None)
            if task is not None:
                future = client.submit(_run_on_dask, self._shared, task, pure=False)
                futures.append(future)
                running.add(future)  # type: ignore[no-untyped-call]

        try:
            for _ in range(DASK_TASKS_AHEAD * self.workers):
                submit_next()
            for f in running:
                for result in f.result():
                    on_result(result)
                submit_next()
        except KeyboardInterrupt:
            client.cancel([f for f in futures if not f.done()])
            for f in futures:
                if f.status != "finished":
                    continue
                try:
                    results = f.result(timeout=10)
                except Exception:  # lost with a worker while stopping: nothing to keep
                    continue
                for result in results:
                    on_result(result)
            raise

    def close(self) -> None:
        try:
            if self._client is not None:
                self._client.close()
        finally:
            self._client = None
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None
            self._workload = None


# ------------------------------------------------------------------ execute


def execute(
    workload: Workload,
    units: Sequence[Unit],
    executor: Executor,
    cache: ResultCache | None = None,
    on_progress: OnProgress | None = None,
    on_result: OnResult | None = None,
) -> list[UnitResult]:
    """Every unit's result, in the units' order: from ``cache`` when it holds them, the
    rest run on ``executor`` and stored in ``cache`` as each finishes (so an interrupted
    batch keeps every finished unit). A unit that asks for artifacts is always run (the
    cache holds summaries and samples).
    ``on_result`` sees each result as it arrives, cached ones first."""
    results: dict[str, UnitResult] = {}
    todo: list[Unit] = []
    queued: set[str] = set()
    for u in units:
        if u.key in results or u.key in queued:
            continue  # the same simulation twice: run once
        hit = None if cache is None or u.artifacts else cache.get(u.key, u.samples)
        if hit is not None:
            results[u.key] = hit
        else:
            todo.append(u)
            queued.add(u.key)
    if on_result is not None:
        for hit in list(results.values()):
            on_result(hit)
    total = len(results) + len(todo)
    if on_progress is not None:
        on_progress(len(results), total)

    def done(result: UnitResult) -> None:
        results[result.key] = result
        if cache is not None:
            cache.put(result)
        if on_result is not None:
            on_result(result)
        if on_progress is not None:
            on_progress(len(results), total)

    if executor.workers > 1:  # costliest first (a stable sort: ties keep their order)
        todo.sort(key=lambda u: -u.cost_s)
    executor.run(workload, todo, done)
    return [results[u.key] for u in units]
