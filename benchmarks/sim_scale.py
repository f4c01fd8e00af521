"""Scale: the thundering-herd scenario with N clients (scaled as sim_speed.py scales
it: instances and the arrival rate grow with N), one run of full jitter.

    python benchmarks/sim_scale.py --clients 100000 [--clients 1000000 ...] [--probe]

Prints, per N: CPU and wall time, peak RSS (of this process so far: run the largest N
last, or one N per process), and CPU microseconds per client. Targets: 10,000,000
clients in < 5 min with a peak RSS < 6 GB, and us/client at 10 M within 1.5x of 100 k.

``--queue heap`` runs the world on SimPy's own environment (one binary heap) instead of
herdlab's event calendar (``sim/world/calendar.py``): the same events in the same order,
so the same figures; what differs is the cost, which this shows.

``--probe`` samples, every 5 simulated seconds, the depth of the event queue, the
clients the deadline queue holds, open streams and the process's RSS (a probe process
in the same run: it adds events, so its timings are not the benchmark's).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import resource
import time
from collections.abc import Generator
from pathlib import Path

import simpy

from sim.scenario import load_scenario
from sim.scenario.model import Poisson, Scenario
from sim.world import run as world_run
from sim.world.calendar import CalendarEnvironment
from sim.world.rng import Streams
from sim.world.run import World, run_policy

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "thundering-herd.yaml"


def scaled(scenario: Scenario, clients: int) -> Scenario:
    """``scenario`` with ``clients`` clients, its capacity and arrival rate scaled with them."""
    poisson = scenario.clients.arrival
    assert isinstance(poisson, Poisson), "thundering-herd's arrivals are Poisson"
    rate = clients / scenario.duration_s * 1.25  # enough arrivals to reach the count
    arrival = dataclasses.replace(
        poisson, schedule=(dataclasses.replace(poisson.schedule[0], rate_per_s=rate),)
    )
    return dataclasses.replace(
        scenario,
        clients=dataclasses.replace(scenario.clients, count=clients, arrival=arrival),
        service=dataclasses.replace(
            scenario.service, instances=scenario.service.instances * clients // 10_000
        ),
    )


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def queued(env: simpy.Environment) -> int:
    """Events scheduled and not yet processed, on either queue."""
    return env.queued() if isinstance(env, CalendarEnvironment) else len(env._queue)


def probe(w: World) -> Generator[simpy.Event, None, None]:
    env = w.env
    while True:
        print(
            f"    t={env.now:5.0f} s  event queue {queued(env):>9,}"
            f"  deadline queue {len(w.deadlines.queue):>9,}  open streams"
            f" {len(w.open_streams):>9,}  jobs {len(w.rec.outcome):>10,}  RSS {rss_mb():,.0f} MB"
            f"  gc counts {gc.get_count()}",
            flush=True,
        )
        yield env.timeout(5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, action="append")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument(
        "--queue",
        choices=("calendar", "heap"),
        default="calendar",
        help="the event queue: herdlab's calendar (default) or SimPy's own heap",
    )
    args = parser.parse_args()
    if args.queue == "heap":
        world_run.CalendarEnvironment = lambda _bucket_s: simpy.Environment()  # type: ignore[assignment,misc]
    base = load_scenario(SCENARIO)
    policy = base.policy("full-jitter")
    for n in args.clients or [100_000]:
        scenario = scaled(base, n)
        if args.probe:
            w = World(scenario, policy, Streams.from_seed(scenario.seed))
            w.env.process(probe(w))
            w.run()
            del w
            continue
        c0, w0 = time.process_time(), time.perf_counter()
        run = run_policy(scenario, policy)
        cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
        jobs = len(run.recorder.outcome)
        del run
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"herd of {jobs:,} clients ({args.queue}): CPU {cpu_s:.1f} s, wall {wall_s:.1f} s,"
            f" peak RSS {peak_mb:,.0f} MB, {cpu_s / jobs * 1e6:.1f} us CPU per client",
            flush=True,
        )


if __name__ == "__main__":
    main()
