"""Real Chromium pages as clients of a real run (``clients: {browser: N}``).

The first N clients of a scenario run in ``--mode real`` are tabs of one headless
Chromium (:mod:`harness.browser`), each loading the seed's page (``examples/web``) in
``mode=native``: job creation under the seed's retry policy in the page's JavaScript,
the progress stream left to the browser's own EventSource reconnection. The page runs
its own code whatever the policy under test: compare it to the ``eventsource`` preset.

Each page's end (``window.herdlab``) goes into the run's Recorder: attempts,
reconnects, outcome, events lost and duplicated, time accepted. Its requests are not in
the time-series counters (the server's request log, ``logs/requests-POLICY.jsonl``,
has them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.world.metrics import JobOutcome, Recorder

OUTCOMES = {
    "completed": JobOutcome.COMPLETED,
    "failed": JobOutcome.FAILED,
    "gave_up": JobOutcome.GAVE_UP,
}
PAGE = "seed-client.html"


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

    @property
    def count(self) -> int:
        return len(self.tabs)


def page_url(direct_url: str, api_url: str, stream_url: str, index: int) -> str:
    """The seed's page for client ``index``, EventSource left to the browser, waiting."""
    return (
        f"{direct_url}/lab/pages/{PAGE}?api={api_url}&streams={stream_url}"
        f"&mode=native&autostart=0&client=browser-{index}"
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
