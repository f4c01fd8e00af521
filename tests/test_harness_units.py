"""Harness pieces that need no process: Retry-After parsing, error classification, the
fault plan, scaling."""

from __future__ import annotations

import errno
from pathlib import Path

import aiohttp
import pytest

from harness.client import classify_exception, parse_retry_after
from harness.faults import CLIENT_PROXIES, STREAMS_PROXY, check_realizable, plan
from harness.real import scale_scenario
from sim.policies.classify import ErrorKind
from sim.scenario import load_scenario

from .simhelp import SCENARIOS, base, scenario_from


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),  # an HTTP-date, 10 s after "now"
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_is_delay_seconds_or_an_http_date(
    value: str | None, expected: float | None
) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now_epoch_s=now) == expected


def test_transport_errors_map_to_the_policy_librarys_kinds() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None),
        OSError(errno.ECONNREFUSED, "refused"),
    )
    assert classify_exception(refused).error is ErrorKind.REFUSED
    assert classify_exception(TimeoutError()).error is ErrorKind.TIMEOUT
    assert classify_exception(ConnectionResetError()).error is ErrorKind.RESET
    assert classify_exception(aiohttp.ServerDisconnectedError()).error is ErrorKind.RESET


def test_every_fault_switches_on_and_off_in_time_order(tmp_path: Path) -> None:
    faults = "\n".join(
        [
            "  - {kind: outage, start_s: 1, end_s: 2}",
            "  - {kind: outage, start_s: 3, end_s: 4, answer: refuse}",
            "  - {kind: reset, start_s: 2, end_s: 3, probability: 0.5}",
            "  - {kind: stream_drop, start_s: 5, end_s: 9, every_s: 2}",
            "  - {kind: store_outage, start_s: 1, end_s: 6}",
            "  - {kind: capacity_drop, start_s: 1, end_s: 2, instances: 1}",
        ]
    )
    scenario = scenario_from(tmp_path, base(faults))
    actions = plan(scenario.faults)
    times = [a.at_s for a in actions]
    assert times == sorted(times)
    labels = [a.label for a in actions]
    assert all(label.endswith((" on", " off")) for label in labels)
    assert sum(x.endswith(" on") for x in labels) == sum(x.endswith(" off") for x in labels)
    assert sum("cut" in label and label.endswith("on") for label in labels) == 2  # at 5 s, 7 s
    assert check_realizable(scenario) == []


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def add_toxic(self, proxy: str, name: str, kind: str, *rest: object) -> None:
        self.calls.append(("add", proxy, kind))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(("remove", proxy))

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self.calls.append(("enable" if enabled else "disable", proxy))


def test_network_toxics_hit_both_client_proxies_and_stream_cuts_only_streams(
    tmp_path: Path,
) -> None:
    faults = (
        "  - {kind: loss, start_s: 1, end_s: 2, probability: 0.3}\n"
        "  - {kind: stream_drop, start_s: 3, end_s: 4, fraction: 0.5}"
    )
    actions = plan(scenario_from(tmp_path, base(faults)).faults)
    fake = _Recorder()
    for a in actions:
        assert a.toxi is not None
        a.toxi(fake)
    assert ("add", CLIENT_PROXIES[0], "timeout") in fake.calls
    assert ("add", CLIENT_PROXIES[1], "timeout") in fake.calls
    assert ("add", STREAMS_PROXY, "limit_data") in fake.calls
    assert not any(
        c[0] == "add" and c[2] == "limit_data" and c[1] != STREAMS_PROXY for c in fake.calls
    )


def test_what_cannot_be_made_for_real_is_named(tmp_path: Path) -> None:
    faults = (
        "  - {kind: refuse, start_s: 1, end_s: 2, probability: 0.5}\n"
        "  - {kind: latency_spike, start_s: 1, end_s: 2,"
        " extra_latency: {kind: exponential, mean_s: 1}}"
    )
    problems = check_realizable(scenario_from(tmp_path, base(faults)))
    assert [p.path for p in problems] == ["faults[0].probability", "faults[1].extra_latency"]
    occ = load_scenario(SCENARIOS / "occ-contention-2015.yaml")
    assert [p.path for p in check_realizable(occ)] == ["service.kind"]


def test_scaling_shrinks_clients_rates_and_capacity_together() -> None:
    s = load_scenario(SCENARIOS / "thundering-herd.yaml")
    half = scale_scenario(s, 0.5)
    assert half.clients.count == 5000
    assert half.service.instances == 20
    assert half.clients.arrival.schedule[0].rate_per_s == 50  # type: ignore[union-attr]
    assert half.service.capacity_per_s == pytest.approx(s.service.capacity_per_s / 2)


def test_the_harness_runs_on_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import aio

    assert aio.loop_name() == "uvloop"
    assert aio.run(_loop_type()) == "Loop"  # uvloop's loop class
    monkeypatch.setenv("HERDLAB_EVENT_LOOP", "asyncio")
    assert aio.loop_name() == "asyncio"
    assert aio.run(_loop_type()) == "_UnixSelectorEventLoop"


async def _loop_type() -> str:
    import asyncio

    return type(asyncio.get_running_loop()).__name__
