"""The browser in the model: simulated ``eventsource`` clients, real Chromium pages and
the real asyncio client under the ``eventsource`` preset meet the same faults and end
the same way.

One scenario a test, six clients: in ``--mode real`` the first three are Chromium tabs
(the seed's page, its EventSource left to the browser), the other three asyncio clients;
the simulator runs all six under the preset. Outcome, create attempts and reconnects
are compared client by client (times differ: a tab takes tenths of a second to act).
The tabs' requests are in the run's time series like the asyncio clients' (the herd
chart's offered load and answers), counted from the server's request log.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from harness.real import run_real
from sim.policies.presets import preset
from sim.scenario import load_scenario
from sim.scenario.model import Scenario
from sim.world.metrics import COUNTERS, JobOutcome
from sim.world.run import run_policy

from .conftest import REPO

pytestmark = pytest.mark.integration

CLIENTS = 6
PAGES = 3


def with_browsers(tmp_path: Path, name: str, drop: str = "") -> Scenario:
    """The lab scenario ``name`` with six clients arriving over 0.3 s, three of them tabs
    (and without the line ``drop``)."""
    text = (REPO / "scenarios" / f"{name}.yaml").read_text()
    if drop:
        assert drop in text
        text = text.replace(drop, "")
    text = text.replace("  count: 1\n", f"  count: {CLIENTS}\n  browser: {PAGES}\n")
    text = text.replace("{kind: burst, at_s: 0}", "{kind: burst, at_s: 0, spread_s: 0.3}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_scenario(str(path))


def simulated(scenario: Scenario) -> list[tuple[str, int, int]]:
    rec = run_policy(scenario, preset("eventsource")).recorder
    return [
        (JobOutcome(o).key, rec.attempts[i], rec.reconnects[i]) for i, o in enumerate(rec.outcome)
    ]


def real(scenario: Scenario, out: Path) -> list[tuple[str, int, int]]:
    record = run_real(scenario, out, [preset("eventsource")])
    assert record.get("complete"), record
    rows = (out / "jobs-eventsource.csv").read_text().splitlines()[1:]
    jobs: list[dict[str, Any]] = [dict(zip(HEADER, r.split(","), strict=True)) for r in rows]
    assert_every_request_in_the_time_series(out, jobs)
    return [(j["outcome"], int(j["attempts"]), int(j["reconnects"])) for j in jobs]


OFFERED = ("offered_first", "offered_retry", "offered_reconnect")
#: every counter of an attempt's answer (offered = the sum of these, bucket by bucket)
ANSWERS = tuple(c for c in COUNTERS if c not in (*OFFERED, "completed"))


def assert_every_request_in_the_time_series(out: Path, jobs: list[dict[str, Any]]) -> None:
    """Every job (tab or asyncio client) offered its create attempts and its stream
    connections (the first and one per reconnect) in the time series, and each request's
    answer is counted in the bucket it was offered in."""
    with (out / "timeseries-eventsource.csv").open() as f:
        buckets = list(csv.DictReader(f))
    offered = [sum(int(b[k]) for k in OFFERED) for b in buckets]
    assert sum(offered) == sum(int(j["attempts"]) + 1 + int(j["reconnects"]) for j in jobs)
    assert offered == [sum(int(b[k]) for k in ANSWERS) for b in buckets]
    assert sum(int(b["offered_first"]) for b in buckets) == 2 * CLIENTS  # create + stream


HEADER = [
    "job",
    "arrival_s",
    "outcome",
    "attempts",
    "reconnects",
    "accepted_after_s",
    "ended_after_s",
    "events_lost",
    "events_duplicated",
]


def test_a_cut_stream_resumes_after_the_browsers_3_s_in_the_model_and_in_chromium(
    tmp_path: Path,
) -> None:
    # the cut alone: a tab takes up to a second or two to send its first request on this
    # loaded machine, which moves its retries across the end of a 503 burst (the lab
    # example tests meet the burst)
    burst = '  - {kind: outage, start_s: 0, end_s: 2.5, answer: "503"}\n'
    scenario = with_browsers(tmp_path, "lab-503-burst-and-cut", drop=burst)
    model = simulated(scenario)
    assert model == [("completed", 1, 1)] * CLIENTS  # one cut, one reconnect after 3 s
    assert real(scenario, tmp_path / "out") == model


def test_a_503_to_a_reconnect_ends_the_stream_for_good_in_the_model_and_in_chromium(
    tmp_path: Path,
) -> None:
    scenario = with_browsers(tmp_path, "lab-503-during-reconnect")
    model = simulated(scenario)
    assert model == [("gave_up", 1, 1)] * CLIENTS
    assert real(scenario, tmp_path / "out") == model
    pages = (tmp_path / "out" / "jobs-eventsource.csv").read_text().splitlines()[1 : PAGES + 1]
    assert all(int(r.split(",")[7]) > 0 for r in pages)  # the tab never saw its job end
