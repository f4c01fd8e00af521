"""Making a scenario's faults for real: Toxiproxy toxics, disabled proxies, and the job
server's admin faults, each switched on and off on schedule.

Every fault kind maps to one mechanism (README, "Faults for real"). A fault that cannot
be made for real is refused before anything starts, never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    FaultKind.STREAM_DROP: "each stream connection of herdlab's clients goes through the"
    " proxy of the first later cut that hits it (a seeded draw per connection and cut,"
    " p = fraction); at a cut that proxy is disabled: its streams close at one instant",
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
    #: stream cut number ``cut`` happens: from now on new stream connections draw their
    #: fate among the later cuts only (told to the router before ``toxi`` runs)
    cut: int | None = None


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
    """The streams proxies of herdlab's own clients when ``faults`` cut streams: one per
    cut (``streams_N``: the connections cut N is the first to hit), then one for the
    connections no later cut hits (``streams_uncut``); none without cuts.

    A cut in the model hits each stream open at that instant with probability
    ``fraction``, all at once. For real, each stream connection draws, when it opens,
    which later cut hits it first (:class:`StreamRouter`) and goes through that cut's
    proxy; the cut disables the proxy, closing every stream on it at one instant, and
    no connection opened after the cut can be hit by it, as in the model."""
    n = len(cut_times(faults))
    return [f"{STREAMS_PROXY}_{i}" for i in range(n)] + ([UNCUT_PROXY] if n else [])


UNCUT_PROXY = f"{STREAMS_PROXY}_uncut"


class StreamRouter:
    """Which proxy a herdlab client's stream connection goes through (see
    :func:`cut_proxies`): per connection, one seeded draw per cut still to come, each
    hitting with the cut's ``fraction``, the first hit naming the proxy.

    Given that a stream is open at cut N, it is cut there with probability ``fraction``
    whatever happened at earlier cuts, as the model draws per cut and open stream."""

    def __init__(
        self, faults: tuple[Fault, ...], urls: Sequence[str], rng: np.random.Generator
    ) -> None:
        self.fractions = [f.fraction for _, _, f in cut_times(faults)]
        if len(urls) != len(self.fractions) + 1:
            raise ValueError(f"{len(self.fractions)} cuts need {len(self.fractions) + 1} urls")
        self.urls = list(urls)
        self.rng = rng
        self.done = 0  # cuts that have happened

    def url(self) -> str:
        """The base URL of the proxy a stream connection opened now goes through."""
        for n in range(self.done, len(self.fractions)):
            if self.fractions[n] >= 1.0 or self.rng.random() < self.fractions[n]:
                return self.urls[n]
        return self.urls[-1]

    def cut(self, n: int) -> None:
        """Cut ``n`` happened: no connection opened from now on is hit by it."""
        self.done = max(self.done, n + 1)


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
    proxies = client_proxies(faults) if routed else CLIENT_PROXIES
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
    """Each cut, for herdlab's own clients (``routed``): the proxy of the streams it is
    the first to hit is disabled (:func:`cut_proxies`), closing them at one instant, and
    re-enabled 1.3 s later (no new connection is routed to it any more).

    The one streams proxy serves whoever cannot be routed: browser tabs (their page has
    one streams URL) and the lab's external client (not ``routed``). A cut of every
    stream disables it too when ``routed`` (a tab reconnects after its 3 s); a share,
    or any cut for the lab (disabling would refuse reconnects unseen by the server), is
    a limit_data (bytes 0) toxic with toxicity = fraction on it for 1.3 s, past a
    heartbeat (1 s): each picked stream is cut at its next byte, within a second of the
    instant, and a stream opened within the 1.3 s may be picked too."""
    actions = []
    spares = cut_proxies(faults) if routed else []
    for n, (t, i, f) in enumerate(cut_times(faults)):
        toxic = f"f{i}_cut{n}"
        disable = routed and f.fraction >= 1.0
        own = spares[n] if routed else None

        def add(
            tx: Any, toxic: str = toxic, p: float = f.fraction, disable: bool = disable,
            own: str | None = own,
        ) -> None:  # fmt: skip
            if own is not None:
                tx.set_enabled(own, False)
            if disable:
                tx.set_enabled(STREAMS_PROXY, False)
            else:
                tx.add_toxic(STREAMS_PROXY, toxic, "limit_data", {"bytes": 0}, "downstream", p)

        def remove(
            tx: Any, toxic: str = toxic, disable: bool = disable, own: str | None = own
        ) -> None:
            if own is not None:
                tx.set_enabled(own, True)
            if disable:
                tx.set_enabled(STREAMS_PROXY, True)
            else:
                tx.remove_toxic(STREAMS_PROXY, toxic)

        actions.append(Action(t, f"{toxic} on", toxi=add, cut=n if routed else None))
        actions.append(Action(t + STREAM_CUT_S, f"{toxic} off", toxi=remove))
    return actions
