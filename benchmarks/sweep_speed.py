"""Sweep speed: points per minute, parallel efficiency of 2 local workers and of a 2-worker
Dask LocalCluster against 1 worker, and the per-point overhead beyond the simulation.

    python benchmarks/sweep_speed.py [--points 24]

The workload: a grid over the metastable scenario (capacity drop length x policy), each
point one simulation. Everything is measured in one run, in one process tree, one
configuration after the other, so a busy host moves every figure; run it a few times.
Prints figures; asserts nothing (targets: 2 local workers >= 0.9, Dask >= 0.85,
overhead < 5%).

- in-process sweep: ``run_sweep`` with InProcess (points built from the sweep spec, keyed,
  run, cached, ranked, sweep.json + points.csv written). Each unit times its own
  simulation (``run_policy`` + ``summarize``) in the same run, so a host that slows down
  slows both sides: overhead = wall / (sum of simulation times) - 1.
- pool 1 / pool 2: ``run_sweep`` on a ProcessPool of 1 and 2 workers (pool start included).
  Efficiency = t(pool 1) / (2 * t(pool 2)); "busy" = sum of simulation times / (workers *
  wall): the share of the workers' time spent simulating, which a loaded host moves less.
- dask 2: the same on a 2-worker LocalCluster, started beforehand (its start-up printed
  apart); efficiency against pool 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

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


def timed_sweep(spec: SweepSpec, executor: Executor, folder: Path) -> tuple[float, float]:
    """Wall time of the sweep, and the sum of its units' own simulation times."""
    shutil.rmtree(folder, ignore_errors=True)  # no cached point: every one runs
    start = time.perf_counter()
    run_sweep(spec, folder, executor)
    wall = time.perf_counter() - start
    sim = sum(json.loads(p.read_text())["sim_s"] for p in (folder / "points").glob("*/*.json"))
    return wall, sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = make_spec(folder, args.points)
        n = len(strategy_points(spec))
        print(f"{n} points of {SCENARIO.name}, {os.cpu_count()} cores")
        t_in, s_in = timed_sweep(spec, InProcess(), folder / "inproc")
        print(
            f"in-process sweep     {t_in:7.2f} s  {n / t_in * 60:6.1f} points/min"
            f"  simulation {s_in:.2f} s, overhead {t_in / s_in - 1:+.1%}"
            f" ({(t_in - s_in) / n * 1000:.0f} ms a point)",
            flush=True,
        )
        with ProcessPool(1) as one:
            t_one, s_one = timed_sweep(spec, one, folder / "pool1")
        print(
            f"pool, 1 worker       {t_one:7.2f} s  {n / t_one * 60:6.1f} points/min"
            f"  busy {s_one / t_one:.2f}",
            flush=True,
        )
        with ProcessPool(2) as two:
            t_two, s_two = timed_sweep(spec, two, folder / "pool2")
        print(
            f"pool, 2 workers      {t_two:7.2f} s  {n / t_two * 60:6.1f} points/min"
            f"  efficiency {t_one / (2 * t_two):.2f}  busy {s_two / (2 * t_two):.2f}",
            flush=True,
        )
        started = time.perf_counter()
        with DaskExecutor("local", 2) as dask:
            dask._connect()
            t_start = time.perf_counter() - started
            t_dask, s_dask = timed_sweep(spec, dask, folder / "dask2")
        print(
            f"dask, 2 workers      {t_dask:7.2f} s  {n / t_dask * 60:6.1f} points/min"
            f"  efficiency {t_one / (2 * t_dask):.2f}  busy {s_dask / (2 * t_dask):.2f}"
            f"  (cluster start {t_start:.1f} s, apart)"
        )


if __name__ == "__main__":
    main()
