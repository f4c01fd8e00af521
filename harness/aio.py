"""The event loop every harness process runs on.

uvloop (libuv under asyncio) when it is installed, asyncio's own loop otherwise or when
``HERDLAB_EVENT_LOOP=asyncio`` is set (the server inherits the setting). At 1,000
requests/s through Toxiproxy on two cores every process competes for CPU, and a cheaper
loop leaves the clients' timers more headroom (README: "Capacity" has the figures).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop function: uvloop's, or asyncio's own."""
    if os.environ.get("HERDLAB_EVENT_LOOP", "uvloop") == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but not required
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the harness's loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)


def run_interruptible(coro: Coroutine[Any, Any, T]) -> T:
    """:func:`run`, where Ctrl-C or SIGTERM cancels ``coro`` *once* and then raises
    ``KeyboardInterrupt``; more of them while ``coro`` cleans up (its ``finally``
    blocks cancel and await their tasks) print "one moment" instead of breaking into
    the clean-up. (asyncio's own runner raises at the second Ctrl-C wherever the loop
    is, leaving tasks pending on a loop about to close: "Event loop is closed".)"""
    if threading.current_thread() is not threading.main_thread():
        return run(coro)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        loop = runner.get_loop()
        task = loop.create_task(coro)
        interrupted = False

        def on_signal(signum: int, frame: object) -> None:
            nonlocal interrupted
            if interrupted:
                print("stopping the run's clients; one moment", file=sys.stderr)
                return
            interrupted = True
            loop.call_soon_threadsafe(task.cancel)

        async def until_done() -> T:
            return await task

        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, on_signal) for sig in signals}
        try:
            result = runner.run(until_done())
            if interrupted:  # it came as the coroutine finished: still an interruption
                raise KeyboardInterrupt
            return result
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def loop_name() -> str:
    """Which loop ``run`` uses, for results and benchmark output."""
    factory = loop_factory()
    return "uvloop" if factory is not asyncio.new_event_loop else "asyncio"
