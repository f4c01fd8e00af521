"""Real headless Chromium pages, for the lab's example page and ``clients: {browser: N}``.

Chromium is Debian's ``chromium`` (``./dev browser`` installs it), started here as a
:class:`~harness.procs.ManagedProcess` (so it is stopped by its pid like every other
process the harness starts) with its DevTools endpoint on a free loopback port;
Playwright for Python drives it over the DevTools protocol (``connect_over_cdp``), so
Playwright's own browser download is never needed.

A page reports through ``window.herdlab`` (``examples/web/seed-client.js``): ``outcome``
is set once the job has ended (completed, failed, gave_up).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from harness.procs import LOOPBACK, ManagedProcess, ProcessError, free_port
from harness.services import http_ok

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "install it with ./dev browser (Debian's chromium package)"


def find_chromium() -> str:
    """The Chromium executable: ``HERDLAB_CHROMIUM``, else the first on PATH."""
    named = os.environ.get("HERDLAB_CHROMIUM")
    if named:
        return named
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ProcessError(f"chromium not found; {INSTALL_HINT}")


def start_chromium(log_dir: Path, profile_dir: Path) -> tuple[ManagedProcess, str]:
    """Headless Chromium with DevTools on a free loopback port; (process, CDP URL)."""
    port = free_port()
    argv = [
        find_chromium(),
        "--headless",
        f"--remote-debugging-port={port}",
        f"--remote-debugging-address={LOOPBACK}",
        f"--user-data-dir={profile_dir}",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        # EventSource and fetch keep running at full speed in background tabs
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "about:blank",
    ]
    url = f"http://{LOOPBACK}:{port}"
    process = ManagedProcess("chromium", argv, log_dir)
    process.start(lambda: http_ok(f"{url}/json/version"), timeout_s=30.0)
    return process, url


@contextlib.asynccontextmanager
async def chromium(log_dir: Path) -> AsyncIterator[Any]:
    """A Playwright ``Browser`` on a Chromium this process started; stopped by pid."""
    from playwright.async_api import async_playwright

    profile = Path(tempfile.mkdtemp(prefix="herdlab-chromium-"))
    process: ManagedProcess | None = None
    try:
        process, url = await asyncio.to_thread(start_chromium, log_dir, profile)
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(url)
            try:
                yield browser
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()
    finally:
        if process is not None:
            await asyncio.to_thread(process.stop)
        shutil.rmtree(profile, ignore_errors=True)


async def open_pages(browser: Any, urls: Sequence[str]) -> list[Any]:
    """One tab per URL, in a fresh context (no shared cache or cookies), loaded."""
    context = await browser.new_context()
    pages = []
    for url in urls:
        page = await context.new_page()
        await page.goto(url, wait_until="load")
        pages.append(page)
    return pages


async def page_status(page: Any) -> dict[str, Any]:
    """The page's ``window.herdlab`` (outcome, events, attempts, reconnects, log)."""
    status: dict[str, Any] = await page.evaluate("() => window.herdlab")
    return status


async def wait_outcomes(pages: Sequence[Any], timeout_s: float) -> list[dict[str, Any]]:
    """Every page's status once each has an outcome, or at ``timeout_s`` (then some have
    ``outcome`` None): polled every 100 ms, bounded in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        statuses = [await page_status(p) for p in pages]
        if all(s.get("outcome") for s in statuses) or loop.time() >= deadline:
            return statuses
        await asyncio.sleep(0.1)
