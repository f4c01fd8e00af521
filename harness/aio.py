"""The event loop every harness process runs on.

uvloop (libuv under asyncio) when it is installed, asyncio's own loop otherwise or when
``HERDLAB_EVENT_LOOP=asyncio`` is set (the server inherits the setting). At 1,000
requests/s through Toxiproxy on two cores every process competes for CPU, and a cheaper
loop leaves the clients' timers more headroom (README: "Capacity" has the figures).
"""

from __future__ import annotations

import asyncio
import os
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


def loop_name() -> str:
    """Which loop ``run`` uses, for results and benchmark output."""
    factory = loop_factory()
    return "uvloop" if factory is not asyncio.new_event_loop else "asyncio"
