"""What a run prints on the terminal: the policies ranked by the objective, then the verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reports.html import format_figure
from sim.decide.decision import Decision, decide

Column = tuple[str, Callable[[dict[str, Any]], Any]]

JOB_COLUMNS: tuple[Column, ...] = (
    ("success", lambda s: s["success_rate"]),
    ("attempts/job", lambda s: s["attempts_per_job"]),
    ("p50 s", lambda s: s["completion_s"]["p50"]),
    ("p99 s", lambda s: s["completion_s"]["p99"]),
    ("peak/s", lambda s: s["peak_offered_per_s"]),
    ("fault x", lambda s: s.get("fault_load_ratio")),
    ("recovery x", lambda s: s.get("recovery_load_ratio")),
    ("recovery s", lambda s: s["recovery_s"]),
    ("gave up", lambda s: s["outcomes"]["gave_up"]),
    ("timed out", lambda s: s["outcomes"]["timed_out"]),
    ("unseen", lambda s: s.get("completed_unseen")),
    ("work x", lambda s: s.get("work_amplification")),
)
# The 2015 post's two views first: work (its "calls" are writes) and time.
OCC_COLUMNS: tuple[Column, ...] = (
    ("writes", lambda s: s.get("server_writes")),
    ("reads", lambda s: s.get("server_reads")),
    ("done after s", lambda s: s["makespan_s"]),
    ("p50 s", lambda s: s["completion_s"]["p50"]),
    ("success", lambda s: s["success_rate"]),
    ("attempts/job", lambda s: s["attempts_per_job"]),
)


def summary_table(record: dict[str, Any], decision: Decision | None = None) -> str:
    """The per-policy summary as a fixed-width table, best first by the objective."""
    decision = decision or decide(record)
    cols = OCC_COLUMNS if record["scenario"]["service_kind"] == "occ" else JOB_COLUMNS
    breaks = any(not r.feasible for r in decision.ranking)
    rows = [["#", "policy", *(c[0] for c in cols)] + (["breaks"] if breaks else [])]
    for r in decision.ranking:
        s = dict(r.summary)
        row = [str(r.rank), r.name] + [format_figure(get(s), missing="-") for _, get in cols]
        if breaks:
            row.append(", ".join(r.broken) or "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    left = {1, len(rows[0]) - 1} if breaks else {1}
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def verdict_lines(record: dict[str, Any], decision: Decision | None = None) -> list[str]:
    """The objective and the verdict, as the summary's last lines."""
    return (decision or decide(record)).lines()
