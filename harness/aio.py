"""The event loop every harness process runs on.

uvloop (libuv under asyncio) when it is installed: at 1,000 requests/s through Toxiproxy
on two cores, the stock loop's own overhead delays the clients' timers (a scheduled retry
fires late) by tens of milliseconds at p99; uvloop roughly halves the loop's CPU. Without
it, the stock loop: same behaviour, less headroom.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop function: uvloop's, or asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but not required
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the harness's loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(coro)


def loop_name() -> str:
    """Which loop ``run`` uses, for results and benchmark output."""
    factory = loop_factory()
    return "uvloop" if factory is not asyncio.new_event_loop else "asyncio"
