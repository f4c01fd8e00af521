"""Arrival times of the clients, drawn up front from the arrivals stream."""

from __future__ import annotations

import numpy as np

from sim.scenario.model import Burst, ClosedLoop, Poisson, Ramp, Scenario

MAX_OPEN_LOOP_CLIENTS = 5_000_000  # a guard against a typo like rate_per_s: 1e9


def arrival_times_s(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times within ``[0, duration_s)`` (closed loop: each user's first start)."""
    clients = scenario.clients
    arrival = clients.arrival
    duration_s = scenario.duration_s
    limit = clients.count if clients.count is not None else MAX_OPEN_LOOP_CLIENTS
    if isinstance(arrival, Burst):
        assert clients.count is not None
        times = arrival.at_s + rng.uniform(0.0, arrival.spread_s, clients.count)
        return np.sort(times)
    if isinstance(arrival, ClosedLoop):
        assert clients.count is not None
        # users start spread over one think time, so they do not all begin in lockstep
        return np.sort(rng.uniform(0.0, arrival.think.mean_s, clients.count))
    if isinstance(arrival, Poisson):
        chunks = []
        steps = arrival.schedule
        for i, step in enumerate(steps):
            end_s = steps[i + 1].from_s if i + 1 < len(steps) else duration_s
            end_s = min(end_s, duration_s)
            if step.rate_per_s <= 0 or end_s <= step.from_s:
                continue
            n = rng.poisson(step.rate_per_s * (end_s - step.from_s))
            chunks.append(np.sort(rng.uniform(step.from_s, end_s, n)))
        times = np.concatenate(chunks) if chunks else np.empty(0)
        return times[:limit]
    assert isinstance(arrival, Ramp)
    # thinning of a homogeneous process at the peak rate
    peak = max(arrival.from_rate_per_s, arrival.to_rate_per_s)
    span = arrival.end_s - arrival.start_s
    n = rng.poisson(peak * span)
    cand = np.sort(rng.uniform(arrival.start_s, arrival.end_s, n))
    rates = arrival.from_rate_per_s + (cand - arrival.start_s) / span * (
        arrival.to_rate_per_s - arrival.from_rate_per_s
    )
    keep = rng.uniform(0.0, peak, n) < rates
    return cand[keep][:limit]
