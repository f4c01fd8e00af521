"""Real Chromium pages as clients of a real run (``clients: {browser: N}``).

The first N clients of a scenario run in ``--mode real`` are tabs of one headless
Chromium (:mod:`harness.browser`), each loading the seed's page (``examples/web``) in
``mode=native``: job creation under the seed's retry policy in the page's JavaScript,
the progress stream left to the browser's own EventSource reconnection. The page runs
its own code whatever the policy under test: compare it to the ``eventsource`` preset.

Each page's end (``window.herdlab``) goes into the run's Recorder: attempts,
reconnects, outcome, events lost and duplicated, time accepted. Its requests go into the
time-series counters at the end of the run (:func:`count_page_requests`), from the
server's request log (``logs/requests-POLICY.jsonl``, :mod:`harness.recorder`): each
offered in the bucket the server received it in (a one-way network delay after the
tab sent it), with its answer, as the asyncio clients count theirs. A connection
Toxiproxy refused or reset before it reached the server is not in the log, so not
counted (the tab's own ``attempts`` and ``reconnects`` do include it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from harness.observed import Req, load_requests
from sim.world.metrics import JobOutcome, Recorder, rejected_counter

OUTCOMES = {
    "completed": JobOutcome.COMPLETED,
    "failed": JobOutcome.FAILED,
    "gave_up": JobOutcome.GAVE_UP,
}
PAGE = "seed-client.html"
CLIENT_PREFIX = "browser-"  # tab i sends client=browser-i
#: after the last tab closed, its open stream's record is written when the server's
#: handler next writes (a heartbeat, 1 s); wait at most this long for it
LOG_SETTLE_S = 3.0


def requests_log(log_dir: Path, policy_name: str) -> Path:
    """Where the server of a run with browser clients logs every request (per policy)."""
    return log_dir / f"requests-{policy_name}.jsonl"


@dataclass
class Pages:
    """What every browser client of one policy run shares."""

    tabs: list[Any]  # Playwright Pages, loaded and waiting: tab i is client i
    api_url: str
    stream_url: str
    direct_url: str  # the server itself: serves the page under /lab/pages/
    rec: Recorder
    clock: Callable[[], float]
    job_timeout_s: float
    progress_events: int
    log_dir: Path | None = None  # each page's own log goes here, as browser-N.log
    requests_path: Path | None = None  # the server's request log (requests_log())

    @property
    def count(self) -> int:
        return len(self.tabs)


def page_url(direct_url: str, api_url: str, stream_url: str, index: int) -> str:
    """The seed's page for client ``index``, EventSource left to the browser, waiting."""
    return (
        f"{direct_url}/lab/pages/{PAGE}?api={api_url}&streams={stream_url}"
        f"&mode=native&autostart=0&client={CLIENT_PREFIX}{index}"
    )


async def open_tabs(browser: Any, urls: list[str]) -> list[Any]:
    """Load every page before the run's clock starts (a new tab takes a loaded
    machine seconds), each in its own context (no shared cache or connections)."""
    tabs = []
    for url in urls:
        context = await browser.new_context()
        tab = await context.new_page()
        await tab.goto(url, wait_until="load")
        tabs.append(tab)
    return tabs


async def browser_job(pages: Pages, index: int) -> None:
    """Start page ``index`` now; record its job at its end or deadline."""
    tab = pages.tabs[index]
    deadline = pages.clock() + pages.job_timeout_s
    try:
        await tab.evaluate("() => { window.herdlabStart(); }")
        left_ms = max(1.0, (deadline - pages.clock()) * 1000)
        try:
            await tab.wait_for_function(
                "() => window.herdlab.outcome", polling=100, timeout=left_ms
            )
        except Exception as exc:  # Playwright's TimeoutError: the job's deadline came
            if "Timeout" not in type(exc).__name__:
                raise
        status = await tab.evaluate("() => ({...window.herdlab, nowMs: performance.now()})")
    finally:
        await tab.context.close()
    _record(pages, index, status)
    if pages.log_dir is not None:
        lines = [tab.url, *status.get("log", [])]
        (pages.log_dir / f"browser-{index}.log").write_text("\n".join(lines) + "\n")


def _record(pages: Pages, index: int, status: dict[str, Any]) -> None:
    rec = pages.rec
    now_s = pages.clock()
    rec.attempts[index] = int(status.get("attempts") or 0)
    rec.reconnects[index] = int(status.get("reconnects") or 0)
    accepted_ms = status.get("acceptedMs")
    if accepted_ms is not None:  # performance.now() when accepted, and when read
        rec.accepted_s[index] = now_s - (float(status["nowMs"]) - float(accepted_ms)) / 1000.0
    events = [int(e) for e in status.get("events") or []]
    outcome = OUTCOMES.get(str(status.get("outcome")), JobOutcome.TIMED_OUT)
    rec.events_duplicated[index] = len(events) - len(set(events))
    if accepted_ms is not None and outcome is not JobOutcome.COMPLETED:
        rec.events_lost[index] = max(0, pages.progress_events - len(set(events)))
    rec.end_job(index, outcome, now_s)


async def count_page_requests(pages: Pages, clock_offset_s: float) -> int:
    """Put every tab's recorded request into the run's time-series counters; returns how
    many. ``clock_offset_s`` is the monotonic time of the run clock's 0 (the recorder
    stamps requests with ``time.monotonic()``). Waits (at most ``LOG_SETTLE_S``) for the
    server to have written the record of every request it started."""
    if pages.requests_path is None:
        return 0
    await _settle(pages.direct_url)
    if not pages.requests_path.exists():
        return 0
    return count_requests(
        pages.rec, load_requests(pages.requests_path), pages.count, clock_offset_s
    )


async def _settle(direct_url: str) -> None:
    deadline = time.monotonic() + LOG_SETTLE_S
    timeout = aiohttp.ClientTimeout(total=1.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{direct_url}/lab/status") as r:
                    if int((await r.json()).get("open", 0)) == 0:
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                return  # no recorder to ask: count what is written
            await asyncio.sleep(0.05)


def count_requests(rec: Recorder, requests: Iterable[Req], tabs: int, clock_offset_s: float) -> int:
    """Count the requests of clients ``browser-0`` .. ``browser-{tabs-1}`` in ``rec``'s
    counters as the asyncio client counts its own: a tab's first create is
    ``offered_first``, later ones ``offered_retry``; its first stream connection
    ``offered_first``, later ones ``offered_reconnect``; each answer in the bucket of its
    request: 201 ``accepted``, a stream's 200 ``stream_connected``, a connection broken
    before an answer (status 0) ``error_reset``, any other status its rejected counter."""
    names = {f"{CLIENT_PREFIX}{i}" for i in range(tabs)}
    seen: set[tuple[str, str]] = set()
    counted = 0
    for r in sorted(requests, key=lambda r: r.start_s):
        if r.client not in names or r.kind not in ("create", "stream"):
            continue
        t_s = max(0.0, r.start_s - clock_offset_s)
        first = (r.client, r.kind) not in seen
        seen.add((r.client, r.kind))
        later = "offered_retry" if r.kind == "create" else "offered_reconnect"
        rec.offer("offered_first" if first else later, t_s)
        rec.count(_answer_counter(r), t_s)
        counted += 1
    return counted


def _answer_counter(r: Req) -> str:
    if r.status == 0:
        return "error_reset"
    if r.kind == "create" and r.status == 201:
        return "accepted"
    if r.kind == "stream" and r.status == 200:
        return "stream_connected"
    return rejected_counter(r.status)
