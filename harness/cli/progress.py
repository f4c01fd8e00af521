"""The one progress display for batches of simulations (runs, replications, sweeps).

On a terminal: one line redrawn in place, ``[#####.....] 12/40 units  3.1/min  ETA 9m02s``.
Elsewhere (a log, CI): a plain line at most every ``every_s`` seconds, and the last one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class ProgressDisplay:
    """Call it with (done, total) as units finish; :meth:`close` ends the line."""

    def __init__(
        self,
        what: str = "units",
        stream: TextIO | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.clock = clock
        self.started = clock()
        self.first_done: int | None = None  # done when the display started (cached units)
        self.last_print = -float("inf")
        self.drawn = False

    def line(self, done: int, total: int) -> str:
        """The text for ``done`` of ``total``: count, rate and time left."""
        if self.first_done is None:
            self.first_done = done
        elapsed = self.clock() - self.started
        ran = done - self.first_done
        text = f"{done}/{total} {self.what}"
        if self.first_done:
            text += f" ({self.first_done} cached)"
        if ran > 0 and elapsed > 0:
            rate = ran / elapsed
            text += f"  {rate * 60:.1f}/min  ETA {_duration((total - done) / rate)}"
        else:
            text += f"  {_duration(elapsed)} elapsed"
        if self.tty:
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        return text

    def __call__(self, done: int, total: int) -> None:
        text = self.line(done, total)
        now = self.clock()
        if self.tty:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()
            self.drawn = True
        elif done == total or now - self.last_print >= self.every_s:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last_print = now

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
