"""The progress display: a redrawn bar on a terminal, plain periodic lines elsewhere."""

from __future__ import annotations

import io

from harness.cli.progress import ProgressDisplay


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_bar_with_rate_and_time_left() -> None:
    now = [0.0]
    out = _Tty()
    show = ProgressDisplay("points", out, clock=lambda: now[0])
    show(0, 10)
    now[0] = 60.0
    show(5, 10)
    show.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    last = text.split("\r")[-1]
    assert "[############............] 5/10 points" in last
    assert "5.0/min" in last and "ETA 1m00s" in last


def test_a_log_gets_a_line_at_most_every_period_and_the_last_one() -> None:
    now = [0.0]
    out = io.StringIO()
    show = ProgressDisplay("points", out, every_s=10.0, clock=lambda: now[0])
    for done in range(1, 11):
        now[0] = done * 3.0  # a point every 3 s
        show(done, 10)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("10/10 points")
    assert 3 <= len(lines) <= 5  # every ~10 s, not every point
    assert "\r" not in out.getvalue()


def test_cached_units_are_counted_but_not_in_the_rate() -> None:
    now = [0.0]
    out = io.StringIO()
    show = ProgressDisplay("points", out, every_s=0.0, clock=lambda: now[0])
    show(8, 10)  # eight found in the cache at once
    now[0] = 30.0
    show(9, 10)
    assert "9/10 points (8 cached)  2.0/min  ETA 30s" in out.getvalue().splitlines()[-1]
