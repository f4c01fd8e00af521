"""The real harness watching itself: did it keep the scenario's schedule?

A real run shares the machine with everything else on it. When the clients' event loop
is starved, sleeps wake late, arrivals start late and faults switch late, and the run
measures the harness instead of the policy. :class:`Watch` measures, for one policy run:

- **timer lag**: how late each sleep of the clients (backoffs, waits for the next
  arrival) wakes, plus a probe that sleeps every ``PROBE_EVERY_S`` so a run with few
  client sleeps is still measured; p50 / p99 / max in ms;
- **arrivals**: per second of the schedule, how many clients were planned to start and
  how many started within ``ARRIVAL_SLACK_S`` of their planned time;
- **fault actions**: each switch's planned and actual time;
- **CPU**: cores used by the clients (this process), the job server, Toxiproxy and
  Redis, and by everything else on the host, over the run (from ``/proc``).

:meth:`Watch.report` turns that into a record and the reasons the run is ``degraded``;
a run with any reason is marked so on the terminal, in results.json and in the report.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: a run whose client sleeps wake later than this at the 99th percentile is degraded
TIMER_LAG_P99_LIMIT_MS = 10.0
#: a second of the schedule in which fewer than this share of the planned arrivals
#: started on time is degraded
ARRIVALS_MIN_SHARE = 0.90
#: an arrival that starts later than this after its planned time is not on time
ARRIVAL_SLACK_S = 0.1
#: a fault switched later than this after its planned time makes the run degraded
FAULT_LATE_LIMIT_S = 0.25
#: the probe's sleep: short enough to see a stall, cheap enough not to cause one
PROBE_EVERY_S = 0.02
#: percentiles of fewer sleeps than this say nothing; such a run is judged on the probe
MIN_SLEEPS = 50

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: count fields after its closing ')'
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def host_cpu_s() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole host since boot, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / _TICKS_PER_S, total / _TICKS_PER_S


@dataclass(frozen=True, slots=True)
class FaultSwitch:
    label: str
    planned_s: float
    actual_s: float

    @property
    def late_s(self) -> float:
        return self.actual_s - self.planned_s


def lag_figures_ms(lags_s: Sequence[float]) -> dict[str, Any]:
    """p50 / p99 / max of timer lags in ms, and how many there were."""
    if not lags_s:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    a = np.asarray(lags_s) * 1000.0
    return {
        "n": len(a),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


class Watch:
    """Self-measurement of one real policy run (see the module docstring).

    ``planned_s`` are the arrival times the scenario planned; ``pids`` the processes whose
    CPU to measure besides this one (``{"server": pid, "toxiproxy": pid, ...}``); the
    clock (seconds since the run began, on the loop's monotonic time) comes with
    :meth:`begin`.
    """

    def __init__(
        self,
        planned_s: Sequence[float] = (),
        pids: Mapping[str, int | None] | None = None,
        clock: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.clock = clock
        self.planned_s = list(planned_s)
        self.started_s: list[float] = []
        self.sleep_lags_s: list[float] = []
        self.probe_lags_s: list[float] = []
        self.faults: list[FaultSwitch] = []
        self.pids = {k: v for k, v in (pids or {}).items() if v is not None}
        self._cpu0: dict[str, float | None] = {}
        self._host0: tuple[float, float] | None = None
        self._wall0 = 0.0
        self.cpu_cores: dict[str, float | None] = {}
        self.wall_s = 0.0

    # ------------------------------------------------------------ during the run

    def begin(self, clock: Callable[[], float] | None = None) -> None:
        """The run begins on ``clock``: take the CPU counters' starting values."""
        if clock is not None:
            self.clock = clock
        self._cpu0 = {"clients": process_cpu_s(os.getpid())}
        self._cpu0 |= {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        self._host0 = host_cpu_s()
        self._wall0 = self.clock()

    def end(self) -> None:
        """Take the CPU counters' final values: cores used over the run."""
        self.wall_s = max(1e-9, self.clock() - self._wall0)
        ours = 0.0
        cores: dict[str, float | None] = {}
        for name, pid in {"clients": os.getpid(), **self.pids}.items():
            before, after = self._cpu0.get(name), process_cpu_s(pid)
            if before is None or after is None:
                cores[name] = None
                continue
            cores[name] = round((after - before) / self.wall_s, 3)
            ours += after - before
        host1 = host_cpu_s()
        if self._host0 is not None and host1 is not None:
            busy = host1[0] - self._host0[0]
            cores["other"] = round(max(0.0, busy - ours) / self.wall_s, 3)
        cores["host_cores"] = float(os.cpu_count() or 1)
        self.cpu_cores = cores

    async def sleep(self, delay_s: float) -> None:
        """``asyncio.sleep`` that records how late it woke (the clients' sleep)."""
        if delay_s <= 0:
            await asyncio.sleep(0)
            return
        due = self.clock() + delay_s
        await asyncio.sleep(delay_s)
        self.sleep_lags_s.append(max(0.0, self.clock() - due))

    async def sleep_until(self, at_s: float) -> None:
        """Sleep until the run's clock reads ``at_s`` (no sleep if it has passed)."""
        wait = at_s - self.clock()
        if wait > 0:
            await self.sleep(wait)

    def arrived(self, started_s: float) -> None:
        """A client started (its first request is about to go)."""
        self.started_s.append(started_s)

    def switched(self, label: str, planned_s: float) -> None:
        """A fault action took effect now."""
        self.faults.append(FaultSwitch(label, planned_s, self.clock()))

    async def probe(self, until_s: float) -> None:
        """Sleep ``PROBE_EVERY_S`` at a time until ``until_s``, recording each lag."""
        clock = self.clock
        while clock() < until_s:
            due = clock() + PROBE_EVERY_S
            await asyncio.sleep(PROBE_EVERY_S)
            self.probe_lags_s.append(max(0.0, clock() - due))

    # ------------------------------------------------------------ afterwards

    def arrivals_per_s(self) -> dict[str, list[int]]:
        """Per second of the schedule: planned arrivals, those started on time, and all
        started in that second (by the time they actually started)."""
        planned = np.asarray(self.planned_s, dtype=float)
        started = np.asarray(self.started_s[: len(planned)], dtype=float)
        last = max(
            [0.0]
            + ([float(planned.max())] if len(planned) else [])
            + ([float(started.max())] if len(started) else [])
        )
        n = math.floor(last) + 1
        by_planned = np.floor(planned).astype(int)
        on_time = np.zeros(n, dtype=int)
        k = len(started)
        if k:
            ok = started - planned[:k] <= ARRIVAL_SLACK_S
            np.add.at(on_time, by_planned[:k][ok], 1)
        return {
            "planned": np.bincount(by_planned, minlength=n)[:n].tolist(),
            "on_time": on_time.tolist(),
            "started": np.bincount(np.floor(started).astype(int), minlength=n)[:n].tolist()
            if k
            else [0] * n,
        }

    def report(self) -> dict[str, Any]:
        """What was measured, and the reasons (if any) the run is degraded."""
        sleeps = lag_figures_ms(self.sleep_lags_s)
        probe = lag_figures_ms(self.probe_lags_s)
        arrivals = self.arrivals_per_s()
        reasons: list[str] = []
        judged, what = (sleeps, "client sleeps") if sleeps["n"] >= MIN_SLEEPS else (probe, "probe")
        if judged["p99"] is not None and judged["p99"] > TIMER_LAG_P99_LIMIT_MS:
            reasons.append(
                f"timer lag p99 {judged['p99']:.1f} ms > {TIMER_LAG_P99_LIMIT_MS:g} ms"
                f" ({what}, max {judged['max']:.0f} ms)"
            )
        short = [
            (s, p, o)
            for s, (p, o) in enumerate(zip(arrivals["planned"], arrivals["on_time"], strict=True))
            if p > 0 and o < ARRIVALS_MIN_SHARE * p
        ]
        if short:
            s, p, o = min(short, key=lambda x: x[2] / x[1])
            reasons.append(
                f"arrivals: {len(short)} second(s) with < {ARRIVALS_MIN_SHARE:.0%} of the"
                f" planned arrivals on time (worst: second {s}, {o} of {p})"
            )
        late = [f for f in self.faults if f.late_s > FAULT_LATE_LIMIT_S]
        if late:
            worst = max(late, key=lambda f: f.late_s)
            reasons.append(
                f"fault actions: {len(late)} switched > {FAULT_LATE_LIMIT_S:g} s late"
                f" (worst: {worst.label!r}, {worst.late_s:.2f} s)"
            )
        other = self.cpu_cores.get("other")
        if reasons and other is not None:
            reasons.append(
                f"context: other processes used {other:.2f} of"
                f" {self.cpu_cores.get('host_cores', 0):g} cores during the run"
            )
        return {
            "degraded": bool(reasons),
            "reasons": reasons,
            "timer_lag_ms": sleeps,
            "probe_lag_ms": probe,
            "arrivals_per_s": arrivals,
            "arrivals": {
                "planned": len(self.planned_s),
                "started": len(self.started_s),
                "seconds_short": len(short),
            },
            "fault_actions": [
                {
                    "label": f.label,
                    "planned_s": round(f.planned_s, 3),
                    "actual_s": round(f.actual_s, 3),
                    "late_s": round(f.late_s, 3),
                }
                for f in self.faults
            ],
            "cpu_cores": self.cpu_cores,
            "wall_s": round(self.wall_s, 3),
        }
