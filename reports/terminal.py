"""What a run prints on the terminal: the per-policy summary table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reports.html import format_figure


def summary_table(record: dict[str, Any]) -> str:
    """The per-policy summary as a fixed-width table."""
    cols: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("policy", lambda s: None),
        ("success", lambda s: s["success_rate"]),
        ("attempts/job", lambda s: s["attempts_per_job"]),
        ("p50 s", lambda s: s["completion_s"]["p50"]),
        ("p99 s", lambda s: s["completion_s"]["p99"]),
        ("peak/s", lambda s: s["peak_offered_per_s"]),
        ("peak/cap", lambda s: s["peak_load_ratio"]),
        ("recovery s", lambda s: s["recovery_s"]),
        ("gave up", lambda s: s["outcomes"]["gave_up"]),
        ("timed out", lambda s: s["outcomes"]["timed_out"]),
    ]
    if record["scenario"]["service_kind"] == "occ":
        cols.insert(3, ("server calls", lambda s: s["server_calls"]))
    rows = [[c[0] for c in cols]]
    for p in record["policies"]:
        s = p["summary"]
        rows.append([p["name"]] + [format_figure(get(s), missing="-") for _, get in cols[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines)
