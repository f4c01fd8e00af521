"""One scenario at a smaller scale: fewer clients, lower arrival rates, less capacity.

The simulator and the real harness both scale through :func:`scale_scenario`, and the
reference job server builds its capacity from the scaled scenario too, so a run at
``--scale F`` meets the same world on both sides (``herdlab run --mode both``).
"""

from __future__ import annotations

import dataclasses

from sim.scenario.model import Burst, ClosedLoop, Poisson, Ramp, RateStep, Scenario


def scaled_count(n: int, scale: float) -> int:
    """``n`` things at ``scale``, never fewer than one."""
    return max(1, round(n * scale))


def scale_scenario(scenario: Scenario, scale: float) -> Scenario:
    """Shrink client count, arrival rates and capacity together by ``scale`` (0 < F <= 1).

    Instances and a non-zero queue limit keep at least one (a queue of 0 stays 0: a
    service that queues nothing still queues nothing); concurrency per instance, service
    times, latencies, timeouts and the fault timeline keep their values, so the scaled
    world has the same load per unit of capacity and the same timing."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], not {scale!r}")
    if scale == 1.0:
        return scenario
    c = scenario.clients
    a = c.arrival
    arrival: Burst | Poisson | Ramp | ClosedLoop = a
    if isinstance(a, Poisson):
        arrival = Poisson(tuple(RateStep(s.from_s, s.rate_per_s * scale) for s in a.schedule))
    elif isinstance(a, Ramp):
        arrival = dataclasses.replace(
            a, from_rate_per_s=a.from_rate_per_s * scale, to_rate_per_s=a.to_rate_per_s * scale
        )
    count = None if c.count is None else scaled_count(c.count, scale)
    s = scenario.service
    service = dataclasses.replace(
        s,
        instances=scaled_count(s.instances, scale),
        queue_limit=scaled_count(s.queue_limit, scale) if s.queue_limit else 0,
        rate_limit=None
        if s.rate_limit is None
        else dataclasses.replace(s.rate_limit, rate_per_s=s.rate_limit.rate_per_s * scale),
        autoscale=None
        if s.autoscale is None
        else dataclasses.replace(
            s.autoscale, max_instances=scaled_count(s.autoscale.max_instances, scale)
        ),
    )
    faults = tuple(
        dataclasses.replace(f, instances=round(f.instances * scale)) if f.instances else f
        for f in scenario.faults
    )
    return dataclasses.replace(
        scenario,
        clients=dataclasses.replace(c, count=count, arrival=arrival),
        service=service,
        faults=faults,
    )
