"""Making a scenario's faults for real: Toxiproxy toxics, disabled proxies, and the job
server's admin faults, each switched on and off on schedule.

Every fault kind maps to one mechanism (README, "Faults for real"). A fault that cannot
be made for real is refused before anything starts, never skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.distributions import Constant, FoldedNormal, Uniform
from sim.scenario.errors import Problem
from sim.scenario.model import (
    ClosedLoop,
    Fault,
    FaultKind,
    OutageAnswer,
    Scenario,
    ServiceKind,
)

JOBS_PROXY = "jobs"  # clients -> job server: the API
STREAMS_PROXY = "streams"  # clients -> job server: progress streams (SSE)
CLIENT_PROXIES = (JOBS_PROXY, STREAMS_PROXY)
REDIS_PROXY = "redis"  # job server -> Redis
STREAM_CUT_S = 1.3  # a cut stays on past one heartbeat (1 s), so every open stream sees it

MECHANISMS = {
    FaultKind.OUTAGE: "503: the server's admin outage (503 + Retry-After); refuse: the"
    " clients' proxies disabled (open connections close too)",
    FaultKind.LATENCY_SPIKE: "Toxiproxy latency toxic (latency, jitter) both ways",
    FaultKind.LOSS: "Toxiproxy timeout toxic (timeout 0: data dropped), toxicity = probability",
    FaultKind.RESET: "Toxiproxy reset_peer toxic (timeout 0), toxicity = probability",
    FaultKind.REFUSE: "the clients' proxies disabled (probability 1 only)",
    FaultKind.PARTITION: "Toxiproxy timeout toxic both ways",
    FaultKind.STREAM_DROP: "new stream connections move to a fresh proxy at the cut; the"
    " proxies open streams came through are disabled (fraction 1) or get a limit_data toxic"
    " (bytes 0) for 1.3 s, toxicity = fraction",
    FaultKind.STORE_OUTAGE: "the server's Redis proxy disabled",
    FaultKind.CAPACITY_DROP: "the server's admin capacity limit",
    FaultKind.ERRORS: "the server's admin error injection (status, probability)",
}


@dataclass(frozen=True)
class Action:
    """One switch at ``at_s``: a Toxiproxy call or an admin request."""

    at_s: float
    label: str
    toxi: Callable[[Any], None] | None = None  # called with the Toxi wrapper
    admin: dict[str, Any] | None = None  # POSTed to /admin/faults
    #: new stream connections go through this proxy from now on (before ``toxi`` runs)
    route_streams: str | None = None


def cut_times(faults: tuple[Fault, ...]) -> list[tuple[float, int, Fault]]:
    """Every stream cut of ``faults``: (time, index of its fault, the fault), in time order."""
    times = []
    for i, f in enumerate(faults):
        if f.kind is not FaultKind.STREAM_DROP:
            continue
        t = f.start_s
        while t < f.end_s:
            times.append((t, i, f))
            if f.every_s is None:
                break
            t += f.every_s
    return sorted(times, key=lambda x: (x[0], x[1]))


def cut_proxies(faults: tuple[Fault, ...]) -> list[str]:
    """One spare streams proxy per stream cut, in the order of the cuts.

    A cut in the model hits the streams open at that instant. For real, a share of
    streams is cut by a toxic that must stay on past a heartbeat (1.3 s) so that every
    open stream sees a byte, and a stream connected within that window (a quick
    reconnect, a new job's stream) would be cut too, which the model never does; and
    every stream is cut by disabling a proxy, which would refuse new streams as well.
    So at each cut new stream connections move to a proxy of their own, and the cut acts
    only on the proxies the open streams came through."""
    return [f"{STREAMS_PROXY}_{n}" for n in range(len(cut_times(faults)))]


def client_proxies(faults: tuple[Fault, ...]) -> tuple[str, ...]:
    """Every proxy between clients and server: the API's, the streams' and the spares."""
    return (*CLIENT_PROXIES, *cut_proxies(faults))


def _latency_attrs(fault: Fault) -> tuple[int, int] | None:
    d = fault.extra_latency
    if isinstance(d, Constant):
        return round(d.value_s * 1000), 0
    if isinstance(d, Uniform):
        return round((d.low_s + d.high_s) * 500), round((d.high_s - d.low_s) * 500)
    if isinstance(d, FoldedNormal):
        return round(d.mean * 1000), round(d.sd_s * 1000)
    return None


def check_realizable(scenario: Scenario) -> list[Problem]:
    """Every fault and setting of ``scenario`` that cannot be made for real."""
    problems = []
    if scenario.service.kind is not ServiceKind.JOB:
        problems.append(
            Problem(
                scenario.source,
                0,
                "service.kind",
                f"kind {scenario.service.kind.value!r} runs in simulation only;"
                " the real job server implements kind 'job'",
            )
        )
    problems += _browser_problems(scenario)
    for i, f in enumerate(scenario.faults):
        where = f"faults[{i}]"
        if f.kind is FaultKind.REFUSE and f.probability < 1.0:
            problems.append(
                Problem(
                    scenario.source,
                    0,
                    f"{where}.probability",
                    "Toxiproxy cannot refuse a share of connections: refuse"
                    " needs probability 1 for real",
                )
            )
        if f.kind is FaultKind.LATENCY_SPIKE and _latency_attrs(f) is None:
            problems.append(
                Problem(
                    scenario.source,
                    0,
                    f"{where}.extra_latency",
                    "Toxiproxy's latency toxic takes a latency and a uniform"
                    " jitter: use a constant, uniform or normal extra_latency",
                )
            )
        if f.kind is FaultKind.STREAM_DROP and f.every_s is not None and f.every_s < 0.5:
            problems.append(
                Problem(
                    scenario.source,
                    0,
                    f"{where}.every_s",
                    "stream cuts for real need every_s >= 0.5",
                )
            )
    return problems


def _browser_problems(scenario: Scenario) -> list[Problem]:
    """Browser clients are pages that follow their stream, one per open-loop client."""
    c = scenario.clients
    if not c.browser:
        return []
    rules = []
    if c.count is None or c.browser > c.count:
        rules.append(f"{c.browser} browser clients need clients.count >= {c.browser}")
    if not c.follow_stream:
        rules.append("browser clients always follow their stream: set follow_stream: true")
    if isinstance(c.arrival, ClosedLoop):
        rules.append("browser clients make one job each: use a burst, poisson or ramp arrival")
    return [Problem(scenario.source, 0, "clients.browser", rule) for rule in rules]


def plan(faults: tuple[Fault, ...], routed: bool = True) -> list[Action]:
    """The switches that make ``faults`` happen, in time order. ``routed``: the clients'
    new stream connections can be moved to a spare proxy at a cut (herdlab's own clients);
    an external client (the lab's) always connects through the one streams proxy."""
    actions: list[Action] = _stream_cuts(faults, routed)
    proxies = client_proxies(faults)
    for i, f in enumerate(faults):
        name = f"f{i}"
        on: Action
        off: Action
        k = f.kind
        if k is FaultKind.OUTAGE and f.answer is OutageAnswer.STATUS_503:
            on = Action(
                f.start_s,
                f"{name} outage 503 on",
                admin={"outage": {"retry_after_s": f.retry_after_s}},
            )
            off = Action(f.end_s, f"{name} outage 503 off", admin={"outage": None})
        elif k in (FaultKind.OUTAGE, FaultKind.REFUSE):
            on = Action(f.start_s, f"{name} refuse on", toxi=lambda t: _enable(t, proxies, False))
            off = Action(f.end_s, f"{name} refuse off", toxi=lambda t: _enable(t, proxies, True))
        elif k is FaultKind.STORE_OUTAGE:
            on = Action(
                f.start_s,
                f"{name} store_outage on",
                toxi=lambda t: t.set_enabled(REDIS_PROXY, False),
            )
            off = Action(
                f.end_s, f"{name} store_outage off", toxi=lambda t: t.set_enabled(REDIS_PROXY, True)
            )
        elif k is FaultKind.CAPACITY_DROP:
            on = Action(
                f.start_s,
                f"{name} capacity_drop to {f.instances} on",
                admin={"capacity_instances": f.instances},
            )
            off = Action(f.end_s, f"{name} capacity_drop off", admin={"capacity_instances": None})
        elif k is FaultKind.ERRORS:
            on = Action(
                f.start_s,
                f"{name} errors on",
                admin={"errors": {"status": f.status, "probability": f.probability}},
            )
            off = Action(f.end_s, f"{name} errors off", admin={"errors": None})
        elif k is FaultKind.STREAM_DROP:
            continue  # _stream_cuts
        else:
            on, off = _toxic_pair(f, name, proxies)
        actions += [on, off]
    return sorted(actions, key=lambda a: a.at_s)


def _enable(t: Any, proxies: tuple[str, ...], enabled: bool) -> None:
    for proxy in proxies:
        t.set_enabled(proxy, enabled)


def _toxic_pair(f: Fault, name: str, proxies: tuple[str, ...]) -> tuple[Action, Action]:
    k = f.kind
    specs: list[tuple[str, str, dict[str, Any], float]] = []  # (type, stream, attrs, toxicity)
    if k is FaultKind.LATENCY_SPIKE:
        attrs = _latency_attrs(f)
        assert attrs is not None
        latency_ms, jitter_ms = attrs
        # half each way, so a round trip gains the scenario's extra latency per message
        for stream in ("upstream", "downstream"):
            specs.append(("latency", stream, {"latency": latency_ms, "jitter": jitter_ms}, 1.0))
    elif k is FaultKind.LOSS:
        specs.append(("timeout", "upstream", {"timeout": 0}, f.probability))
    elif k is FaultKind.RESET:
        specs.append(("reset_peer", "upstream", {"timeout": 0}, f.probability))
    elif k is FaultKind.PARTITION:
        for stream in ("upstream", "downstream"):
            specs.append(("timeout", stream, {"timeout": 0}, 1.0))
    else:  # pragma: no cover - plan() routes every other kind elsewhere
        raise ValueError(f"no toxic for {k}")

    def add(t: Any) -> None:
        for proxy in proxies:
            for j, (kind, stream, attrs, toxicity) in enumerate(specs):
                t.add_toxic(proxy, f"{name}_{j}", kind, attrs, stream, toxicity)

    def remove(t: Any) -> None:
        for proxy in proxies:
            for j in range(len(specs)):
                t.remove_toxic(proxy, f"{name}_{j}")

    return Action(f.start_s, f"{name} {k.value} on", toxi=add), Action(
        f.end_s, f"{name} {k.value} off", toxi=remove
    )


def _stream_cuts(faults: tuple[Fault, ...], routed: bool = True) -> list[Action]:
    """A cut acts on the proxies the open streams came through, and new stream
    connections move to a fresh proxy at the cut (:func:`cut_proxies`), so only streams
    open at the cut are cut, as in the model.

    Every stream (fraction 1): those proxies are disabled, which closes their
    connections at once, as the model cuts them at one instant. A share: Toxiproxy
    can pick connections only through a toxic's toxicity, and a toxic acts on a
    connection's next byte, so limit_data (bytes 0) stays on 1.3 s, past a heartbeat
    (1 s): each picked stream is cut within a second of the instant.

    Not ``routed`` (an external client that always connects through the streams proxy):
    disabling it would refuse reconnects for the cut's 1.3 s, unseen by the server, so
    the cut is the limit_data toxic at any fraction: a stream open at the cut, or opened
    within 1.3 s of it, is cut on its next byte, and the server records each."""
    actions = []
    spares = cut_proxies(faults) if routed else []
    for n, (t, i, f) in enumerate(cut_times(faults)):
        toxic = f"f{i}_cut{n}"
        hit = (STREAMS_PROXY, *spares[:n])
        disable = routed and f.fraction >= 1.0

        def add(
            tx: Any,
            toxic: str = toxic,
            hit: tuple[str, ...] = hit,
            p: float = f.fraction,
            disable: bool = disable,
        ) -> None:
            for proxy in hit:
                if disable:
                    tx.set_enabled(proxy, False)
                else:
                    tx.add_toxic(proxy, toxic, "limit_data", {"bytes": 0}, "downstream", p)

        def remove(
            tx: Any, toxic: str = toxic, hit: tuple[str, ...] = hit, disable: bool = disable
        ) -> None:
            for proxy in hit:
                if disable:
                    tx.set_enabled(proxy, True)  # nothing goes through it any more; tidy
                else:
                    tx.remove_toxic(proxy, toxic)

        route = spares[n] if routed else None
        actions.append(Action(t, f"{toxic} on", toxi=add, route_streams=route))
        actions.append(Action(t + STREAM_CUT_S, f"{toxic} off", toxi=remove))
    return actions
