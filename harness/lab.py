"""``herdlab lab``: the real bench for a client herdlab did not write.

Starts Redis, Toxiproxy and the reference job server as a real run does
(:class:`harness.real.RealBench`), with the request recorder on
(:mod:`harness.recorder`); tells an external client where to go; plays the scenario's
fault timeline from the first request it makes (or at once); stops every process by
pid at the end, on Ctrl-C or SIGTERM; then writes what each client did
(:mod:`harness.observed`) to ``results.json`` and ``report.md``, with the verdicts of
the scenario's ``kind: client`` expectations (:func:`lab_checks`) under ``checks``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from harness import aio
from harness.conformance import check_expectation
from harness.faults import plan
from harness.observed import ObservedJob, group_jobs, load_requests, summarize_client
from harness.real import PAGES_DIR, RealBench, play_faults
from reports.checks import checks_text
from sim.decide.expect import Evaluation, checks_record
from sim.scenario.model import Fault, FaultKind, OutageAnswer, Scenario

POLL_S = 0.05
REQUESTS_FILE = "requests.jsonl"
#: faults whose connections Toxiproxy refuses (a disabled proxy: nothing accepts them),
#: resets or holds before a request reaches the server: such attempts are not recorded
#: (Toxiproxy's metrics count bytes per proxy, not connections or clients; see
#: docs/internals.md, "What the lab cannot see")
UNSEEN_KINDS = (FaultKind.REFUSE, FaultKind.RESET, FaultKind.PARTITION, FaultKind.LOSS)
UNSEEN_NOTE = (
    "attempts whose connection was refused, reset or held before it reached the server"
    " are not recorded: a retry after one is numbered one lower than the client numbers"
    " it, and its wait is measured from the answer before"
)


def unseen_faults(faults: tuple[Fault, ...]) -> list[str]:
    """The faults during which a client's attempts can go unrecorded (``UNSEEN_KINDS``,
    and an outage that refuses)."""
    return [
        f.describe()
        for f in faults
        if f.kind in UNSEEN_KINDS
        or (f.kind is FaultKind.OUTAGE and f.answer is OutageAnswer.REFUSE)
    ]


@dataclass(frozen=True)
class LabUrls:
    """Where an external client goes."""

    api: str  # POST /api/ai/jobs, through Toxiproxy
    streams: str  # GET /api/ai/jobs/{id}/stream, through its own proxy (stream cuts)
    direct: str  # the server itself, no faults: admin and the example pages

    def page(self, name: str = "seed-client.html") -> str:
        return f"{self.direct}/lab/pages/{name}?api={self.api}&streams={self.streams}"


@dataclass(frozen=True)
class LabOptions:
    duration_s: float | None  # of the fault timeline; None: until Ctrl-C
    start_now: bool
    first_request_timeout_s: float = 600.0


Say = Callable[[str], None]


async def _wait_first_request(direct: str, timeout_s: float) -> float | None:
    """The monotonic time of the first recorded request, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{direct}/lab/status") as r:
                    first = (await r.json()).get("first_s")
                if first is not None:
                    return float(first)
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(POLL_S)
    return None


async def _timeline(
    scenario: Scenario,
    bench: RealBench,
    urls: LabUrls,
    options: LabOptions,
    log: list[str],
    say: Say,
) -> float | None:
    """Wait for the start, play the faults, wait out the duration; returns the start."""
    assert bench.toxi is not None
    actions = plan(scenario.faults, routed=False)  # an external client: one streams proxy
    t0 = time.monotonic()
    if not options.start_now:
        # faults from 0 s on must meet the first request, so they are on before it comes
        early = [a for a in actions if a.at_s <= 0]
        actions = actions[len(early) :]
        async with aiohttp.ClientSession() as session:
            await play_faults(early, bench.toxi, urls.direct, session, lambda: 0.0, log)
        say("waiting for the client's first request ...")
        found = await _wait_first_request(urls.direct, options.first_request_timeout_s)
        if found is None:
            say(f"no request within {options.first_request_timeout_s:g} s; stopping")
            return None
        t0 = found
    say(f"timeline started; faults: {len(scenario.faults)}")

    def clock() -> float:
        return time.monotonic() - t0

    async with aiohttp.ClientSession() as session:
        player = asyncio.ensure_future(
            play_faults(actions, bench.toxi, urls.direct, session, clock, log)
        )
        try:
            if options.duration_s is None:
                await player
                await asyncio.Event().wait()  # until Ctrl-C
            else:
                await asyncio.wait([player], timeout=max(0.0, options.duration_s - clock()))
                await asyncio.sleep(max(0.0, options.duration_s - clock()))
        finally:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
    return t0


def run_lab(
    scenario: Scenario,
    out_dir: Path,
    options: LabOptions,
    say: Say,
    on_ready: Callable[[LabUrls], None] | None = None,
) -> dict[str, Any]:
    """Run the lab; write results.json, report.md and requests.jsonl into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    requests_path = out_dir / REQUESTS_FILE
    requests_path.unlink(missing_ok=True)
    bench = RealBench(out_dir / "logs")
    log: list[str] = []
    t0: float | None = None
    ended = "duration"
    urls: LabUrls | None = None
    try:
        bench.start()
        record_args = ("--record", str(requests_path), "--lab-pages", str(PAGES_DIR))
        api, streams, direct = bench.start_server(
            scenario.source,
            1.0,
            scenario.seed,
            scenario.network.latency,  # the client meets the scenario's network, as in a run
            extra_args=record_args,
        )
        urls = LabUrls(api, streams, direct)
        if on_ready is not None:
            on_ready(urls)
        t0 = aio.run(_timeline(scenario, bench, urls, options, log, say))
        if t0 is None:
            ended = "no request"
    except KeyboardInterrupt:
        ended = "interrupted"
    finally:
        bench.stop()
    record = lab_record(scenario, requests_path, t0, log, ended)
    write_lab(out_dir, record)
    return record


def lab_record(
    scenario: Scenario, requests_path: Path, t0: float | None, log: list[str], ended: str
) -> dict[str, Any]:
    """results.json of a lab run: the fault log and every client's figures."""
    requests = load_requests(requests_path) if requests_path.exists() else []
    events_total = scenario.service.progress_events
    observed = dict(sorted(group_jobs(requests).items()))
    clients = {client: summarize_client(jobs, events_total) for client, jobs in observed.items()}
    return {
        "kind": "lab",
        "scenario": scenario.name,
        "scenario_file": scenario.source,
        "ended": ended,
        "timeline_started": t0 is not None,
        "requests": len(requests),
        "events_per_job": events_total,
        "fault_log": log,
        "unseen_during": unseen_faults(scenario.faults),
        "clients": clients,
        "checks": checks_record(lab_checks(scenario, observed), accept_inconclusive=False),
    }


def lab_checks(scenario: Scenario, clients: dict[str, list[ObservedJob]]) -> Evaluation:
    """The scenario's ``kind: client`` expectations against the recorded ``clients``;
    its figure expectations bound herdlab's own clients, so they are listed as not
    checked here."""
    evaluation = Evaluation()
    for exp in scenario.client_expect:
        evaluation += check_expectation(exp, clients, f"{scenario.source}:{exp.line}")
    if scenario.expect:
        evaluation += Evaluation(
            not_checked=(
                f"{scenario.source}: {len(scenario.expect)} figure expectation(s): they bound"
                " herdlab's own clients (herdlab run, herdlab check)",
            )
        )
    return evaluation


def write_lab(out_dir: Path, record: dict[str, Any]) -> None:
    (out_dir / "results.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    (out_dir / "report.md").write_text(lab_report(record))


def lab_report(record: dict[str, Any]) -> str:
    """A short Markdown report: the fault log, then one section per client."""
    lines = [f"# lab: {record['scenario']} ({record['requests']} requests, {record['ended']})", ""]
    lines += ["## faults", ""] + [f"    {entry}" for entry in record["fault_log"]] + [""]
    if record["unseen_during"]:
        during = "; ".join(record["unseen_during"])
        lines += [f"Not counted, during {during}: {UNSEEN_NOTE}.", ""]
    for client, c in record["clients"].items():
        lines += _client_section(client, c)
    checks = record.get("checks")
    if checks and (checks["verdicts"] or checks["not_checked"]):
        lines += ["## checks", "", *(f"    {x}" for x in checks_text(checks).splitlines()), ""]
    return "\n".join(lines) + "\n"


def _client_section(client: str, c: dict[str, Any]) -> list[str]:
    lines = [
        f"## client {client}",
        "",
        f"- jobs: {c['jobs']} ({c['accepted']} accepted); attempts per job:"
        f" {c['attempts_per_job']}; answers: {c['create_answers']}",
        f"- stream connections: {c['stream_connections']} (answers {c['stream_answers']});"
        f" reconnects: {c['reconnects']}, of which resumed with Last-Event-ID:"
        f" {c['resumes']}; after the result: {c['reconnects_after_result']}",
        f"- events lost: {c['events_lost']}, duplicated: {c['events_duplicated']}",
        f"- retried non-retryable (4xx) answers: {c['retried_non_retryable']};"
        f" reconnected after one: {c['reconnected_after_non_retryable']}",
        f"- Retry-After honoured: {c['retry_after']['honoured']} of {c['retry_after']['seen']};"
        f" waited at least the server's retry: {c['sse_retry']['waited_at_least']}"
        f" of {c['sse_retry']['seen']}",
        "",
    ]
    for title, key in (
        ("delay before create retry n", "create_delays_by_retry"),
        ("delay before reconnect n", "reconnect_delays_by_number"),
    ):
        if c[key]:
            lines += [f"| {title} | count | min s | median s | max s |", "|---|---|---|---|---|"]
            for n, d in c[key].items():
                lines.append(
                    f"| {n} | {d['count']} | {d['min_s']:.3f} | {d['median_s']:.3f}"
                    f" | {d['max_s']:.3f} |"
                )
            lines.append("")
    return lines
