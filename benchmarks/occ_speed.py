"""OCC speed: the 2015 experiment's table in herdlab against a bare heapq loop of the
same shape, written as the 2015 simulator is (one event queue, no SimPy).

    python benchmarks/occ_speed.py [--replications 100] [--repeats 3]

The table: scenarios/occ-contention-2015.yaml, N = 100 clients, its five policies,
``--replications`` replications each (``herdlab run --replications``: every run,
its summary, the means and CIs, results.json and the CSVs). The bare loop does the
same work per client - read, conditional write, back off on a conflict, each message
one |Normal(10 ms, 2 ms)| delay, the same backoff formulas with retries numbered from
1 - and computes only what the 2015 post tabulates (server calls, time to finish).
Both run in this process, interleaved, ``--repeats`` times; prints the best CPU and
wall time of each, their ratio, and the ratio of every side-by-side pair.
Asserts nothing (target: herdlab / bare <= 1.0 in CPU time).

The bare loop draws from a numpy Generator a block at a time, as herdlab does (the
2015 code draws one ``random.normalvariate`` per message, which is slower): the
stricter reference.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import numpy as np

from sim.policies.backoff import Jitter, polly_f
from sim.results import run_scenario
from sim.scenario import load_scenario
from sim.scenario.model import Scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "occ-contention-2015.yaml"

Table = tuple[int, dict[str, float]]  # server calls in all, mean server calls per policy
Message = tuple[float, int, Callable[[float, "Message"], "Message | None"], object]


def blocks(draw: Callable[[], np.ndarray]) -> Callable[[], float]:
    """One value a call, from blocks of ``draw()``."""
    return itertools.chain.from_iterable(iter(lambda: draw().tolist(), None)).__next__


class Net:
    """The network: one |Normal(mean, sd)| delay per message."""

    def __init__(self, delay: Callable[[], float]) -> None:
        self.delay = delay


def backoffs(
    jitter: Jitter, base_s: float, cap_s: float, rand: Callable[[], float]
) -> Iterator[float]:
    """The delay before retry 1, 2, ... (retry n's curve value: base * 2^(n-1), capped)."""
    n, sleep_s, previous_f = 0, base_s, 0.0
    while True:
        n += 1
        v = min(cap_s, base_s * 2.0 ** min(n - 1, 1024))
        if jitter is Jitter.FULL:
            yield v * rand()
        elif jitter is Jitter.EQUAL:
            yield v / 2 + v / 2 * rand()
        elif jitter is Jitter.DECORRELATED:
            sleep_s = min(cap_s, base_s + (3 * sleep_s - base_s) * rand())
            yield sleep_s
        elif jitter is Jitter.DECORRELATED_V2:
            f = polly_f(n - 1 + rand())
            yield cap_s if math.isinf(f) else min(cap_s, (f - previous_f) * base_s / 1.4)
            previous_f = f
        else:
            yield v


class Server:
    """The one row, with its version; counts every call."""

    def __init__(self, net: Net) -> None:
        self.version = 0
        self.calls = 0
        self.net = net
        self.seq = itertools.count()  # tie-break: the heap never compares handlers

    def read(self, tm: float, m: Message) -> Message:
        self.calls += 1
        client = m[3]
        assert isinstance(client, Client)
        return (tm + self.net.delay(), next(self.seq), client.read_rsp, self.version)

    def write(self, tm: float, m: Message) -> Message:
        self.calls += 1
        client, seen = cast(tuple[Client, int], m[3])
        won = seen == self.version
        if won:
            self.version += 1
        return (tm + self.net.delay(), next(self.seq), client.write_rsp, won)


class Client:
    """Updates the row once: read, conditional write; on a conflict, back off and retry."""

    def __init__(self, server: Server, backoff: Iterator[float]) -> None:
        self.server = server
        self.backoff = backoff

    def start(self, tm: float) -> Message:
        s = self.server
        return (tm + s.net.delay(), next(s.seq), s.read, self)

    def read_rsp(self, tm: float, m: Message) -> Message:
        s = self.server
        return (tm + s.net.delay(), next(s.seq), s.write, (self, m[3]))

    def write_rsp(self, tm: float, m: Message) -> Message | None:
        if m[3]:
            return None
        return self.start(tm + next(self.backoff))


def run_sim(queue: list[Message]) -> float:
    """The 2015 main loop: pop the next message, hand it to its handler, push the reply."""
    tm = 0.0
    while queue:
        m = heapq.heappop(queue)
        tm = m[0]
        reply = m[2](tm, m)
        if reply is not None:
            heapq.heappush(queue, reply)
    return tm


def bare_table(
    scenario: Scenario, replications: int, as_written: bool = False
) -> tuple[int, dict[str, float]]:
    """Mean server calls per policy over ``replications`` runs; returns the total calls.

    Draws a block at a time from a numpy Generator, or with ``as_written`` one draw per
    message from Python's ``random`` (seeded), as the 2015 code does."""
    total, means = 0, {}
    for policy in scenario.policies:
        b = policy.retry.backoff
        calls = 0
        for r in range(replications):
            if as_written:
                py = random.Random(scenario.seed * 1_000_003 + r)
                rand = py.random
                net = Net(lambda py=py: abs(py.normalvariate(0.010, 0.002)))  # type: ignore[misc]
            else:
                seq = np.random.SeedSequence([scenario.seed, r])
                rng = np.random.Generator(np.random.PCG64(seq))
                rand = blocks(lambda rng=rng: rng.random(4096))  # type: ignore[misc]
                net = Net(blocks(lambda rng=rng: np.abs(rng.normal(0.010, 0.002, 4096))))  # type: ignore[misc]
            server = Server(net)
            queue = [
                Client(server, backoffs(b.jitter, b.base_s, b.cap_s, rand)).start(0.0)
                for _ in range(scenario.clients.count or 0)
            ]
            heapq.heapify(queue)
            run_sim(queue)
            calls += server.calls
        means[policy.name] = calls / replications
        total += calls
    return total, means


def herdlab_table(scenario: Scenario, replications: int, out: Path) -> tuple[int, dict[str, float]]:
    record = run_scenario(scenario, out, replications=replications)
    means = {p["name"]: p["summary"]["server_calls"] for p in record["policies"]}
    total = sum(c["server_calls"] for p in record["policies"] for c in p["per_replication"])
    return total, means


def timed(fn: Callable[[], Table]) -> tuple[float, float, Table]:
    """CPU and wall seconds of ``fn()``, and what it returned."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=("herdlab", "bare", "as-written"),
        help="run one side once, untimed (for an instruction count under valgrind)",
    )
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO)
    reps = args.replications
    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            if args.only == "herdlab":
                herdlab_table(scenario, reps, Path(tmp))
            else:
                bare_table(scenario, reps, as_written=args.only == "as-written")
        return
    sides: dict[str, Callable[[Path], tuple[int, dict[str, float]]]] = {
        "herdlab": lambda tmp: herdlab_table(scenario, reps, tmp),
        "bare, 2015 as written": lambda tmp: bare_table(scenario, reps, as_written=True),
        "bare, block draws": lambda tmp: bare_table(scenario, reps),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    results: dict[str, tuple[int, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved: the VM's noise falls on every side
            for name, side in sides.items():
                cpu_s, wall_s, results[name] = timed(lambda: side(Path(tmp)))  # noqa: B023
                times[name].append((cpu_s, wall_s))
    n = scenario.clients.count
    print(f"OCC table: {n} clients, {len(scenario.policies)} policies, {reps} replications")
    for name, runs in times.items():
        calls, means = results[name]
        cpu = min(c for c, _ in runs)
        wall = min(w for _, w in runs)
        per = ", ".join(f"{k} {v:,.0f}" for k, v in means.items())
        print(f"  {name:22} CPU {cpu:6.2f} s  wall {wall:6.2f} s  {calls:,} server calls ({per})")
    herd = times["herdlab"]
    for name in list(sides)[1:]:
        bare = times[name]
        best = min(c for c, _ in herd) / min(c for c, _ in bare)
        pairs = sorted(h[0] / b[0] for h, b in zip(herd, bare, strict=True))
        print(
            f"  CPU ratio herdlab / {name}: {best:.2f} best-to-best (target <= 1.0);"
            f" side-by-side {', '.join(f'{p:.2f}' for p in pairs)}"
        )


if __name__ == "__main__":
    main()
