"""Sweep speed: points per minute, parallel efficiency of 2 local workers and of a 2-worker
Dask LocalCluster against 1 worker, and the per-point overhead beyond the simulation.

    python benchmarks/sweep_speed.py [--points 30] [--rounds 3]

The workload: a grid over the metastable scenario (capacity drop length x policy), each
point one simulation. The configurations run one after the other, ``--rounds`` times
interleaved (A B C D, B C D A, ...), so a noisy moment on a shared host lands on one
measurement, not on one configuration; each figure is printed as its best (the least
disturbed run) and its spread over the rounds. Prints figures; asserts nothing (targets:
2 local workers >= 0.9, Dask >= 0.85, overhead < 5%).

- in-process sweep: ``run_sweep`` with InProcess (points built from the sweep spec, keyed,
  run, cached, ranked, sweep.json + points.csv written). Each unit times its own
  simulation (``run_policy`` + ``summarize``) in the same run, so a host that slows down
  slows both sides: overhead = wall / (sum of simulation times) - 1.
- pool 1 / pool 2: ``run_sweep`` on a ProcessPool of 1 and 2 workers (pool start included).
  Efficiency = t(pool 1) / (2 * t(pool 2)); "busy" = sum of simulation times / (workers *
  wall): the share of the workers' time spent simulating, which a loaded host moves less.
- dask 2: the same on a 2-worker LocalCluster, started (and herdlab imported in each
  worker) before the clock, as a user pays it once per cluster; its start is printed apart.
  Efficiency against pool 1.
- cpu: CPU seconds of the benchmark's process and its children (workers, pool or
  cluster) over the sweep. A loaded host moves CPU time much less than wall time, so
  "cpu-bound" = cpu(pool 1) / cpu(this) is the efficiency a host with 2 free cores would
  allow at most (it leaves out waiting: the last point, round trips): what the executor
  itself costs, where the wall-time efficiency on a busy host measures mostly the host.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil  # comes with Dask's distributed

from sim.execute import DaskExecutor, Executor, InProcess, ProcessPool
from sim.sweep.points import strategy_points
from sim.sweep.run import run_sweep
from sim.sweep.spec import SweepSpec, load_sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "retry-storm-metastable.yaml"


def make_spec(folder: Path, points: int) -> SweepSpec:
    """A grid of ``points`` points: 5 policies x drop ends from 31 s on."""
    ends = max(1, points // 5)
    values = ", ".join(str(31 + 2 * i) for i in range(ends))
    path = folder / "bench-sweep.yaml"
    path.write_text(
        f"sweep:\n  scenario: {SCENARIO}\n  parameters:\n    faults[0].end_s: [{values}]\n"
    )
    return load_sweep(path)


@dataclass(frozen=True)
class Config:
    name: str
    workers: int
    make: Callable[[], Executor]
    #: a cluster, started before the clock (paid once per cluster), its start timed apart
    cluster: bool = False


CONFIGS = (
    Config("in-process", 1, InProcess),
    Config("pool, 1 worker", 1, lambda: ProcessPool(1)),
    Config("pool, 2 workers", 2, lambda: ProcessPool(2)),
    Config("dask, 2 workers", 2, lambda: DaskExecutor("local", 2), cluster=True),
)


@dataclass(frozen=True)
class Timing:
    wall_s: float  # the sweep, from its points to its outputs written
    sim_s: float  # the sum of its units' own simulation times
    start_s: float  # starting the executor before the clock (0: none)
    cpu_s: float  # CPU of this process and its children over the sweep


def cpu_s() -> float:
    """CPU seconds so far of this process, its finished children and its live ones."""
    t = os.times()
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # ended since: in children_*
            live += sum(child.cpu_times()[:2])
    return t.user + t.system + t.children_user + t.children_system + live


def timed_sweep(spec: SweepSpec, config: Config, folder: Path) -> Timing:
    shutil.rmtree(folder, ignore_errors=True)  # no cached point: every one runs
    executor = config.make()
    try:
        begin = time.perf_counter()
        if isinstance(executor, DaskExecutor):
            executor.connect()
        start_s = time.perf_counter() - begin if config.cluster else 0.0
        cpu_before = cpu_s()
        begin = time.perf_counter()
        run_sweep(spec, folder, executor)
        wall_s = time.perf_counter() - begin
        cpu = cpu_s() - cpu_before  # the workers still live: not their shutting down
    finally:
        executor.close()
    points = (folder / "points").glob("*/*.json")
    sim = sum(json.loads(p.read_text())["sim_s"] for p in points)
    return Timing(wall_s, sim, start_s, cpu)


def _best_and_spread(values: list[float], fmt: str, best: Callable[..., float] = min) -> str:
    return f"{fmt.format(best(values))} ({fmt.format(min(values))}..{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = make_spec(folder, args.points)
        n = len(strategy_points(spec))
        print(
            f"{n} points of {SCENARIO.name}, {os.cpu_count()} cores, {args.rounds} rounds"
            f" interleaved; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start",
            flush=True,
        )
        runs: dict[str, list[Timing]] = {c.name: [] for c in CONFIGS}
        for r in range(args.rounds):
            for config in CONFIGS[r % len(CONFIGS) :] + CONFIGS[: r % len(CONFIGS)]:
                t = timed_sweep(spec, config, folder / "out")
                runs[config.name].append(t)
                print(f"  round {r + 1}: {config.name:<16} {t.wall_s:6.2f} s", flush=True)
    one = [t.wall_s for t in runs["pool, 1 worker"]]
    print("best wall (spread over rounds); ratios from the best walls (and per round)")
    for config in CONFIGS:
        ts = runs[config.name]
        walls = [t.wall_s for t in ts]
        line = (
            f"{config.name:<16} {_best_and_spread(walls, '{:.2f}')} s"
            f"  {n / min(walls) * 60:6.1f} points/min"
        )
        if config.name == "in-process":
            over = [t.wall_s / t.sim_s - 1 for t in ts]
            per_point_ms = min((t.wall_s - t.sim_s) / n * 1000 for t in ts)
            line += (
                f"  overhead {_best_and_spread(over, '{:+.1%}')} (target < 5%),"
                f" {per_point_ms:.0f} ms a point"
            )
        if config.workers > 1:
            rounds = [a / (config.workers * b) for a, b in zip(one, walls, strict=True)]
            best = min(one) / (config.workers * min(walls))
            target = 0.85 if config.cluster else 0.9
            line += (
                f"  efficiency {best:.2f} ({min(rounds):.2f}..{max(rounds):.2f};"
                f" target >= {target})"
            )
        busy = [t.sim_s / (config.workers * t.wall_s) for t in ts]
        line += f"  busy {_best_and_spread(busy, '{:.2f}', max)}"
        cpus = [t.cpu_s for t in ts]
        line += f"\n{'':<16} cpu {_best_and_spread(cpus, '{:.2f}')} s"
        if config.workers > 1:
            bound = min(t.cpu_s for t in runs["pool, 1 worker"]) / min(cpus)
            line += f", cpu-bound efficiency {bound:.2f}"
        if config.cluster:
            starts = [t.start_s for t in ts]
            line += (
                f"\n{'':<16} cluster start {_best_and_spread(starts, '{:.1f}')} s, apart:"
                " starting the processes and importing herdlab in each worker, once per cluster"
            )
        print(line)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at end")


if __name__ == "__main__":
    main()
