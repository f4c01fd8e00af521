"""Verdicts as a reader sees them: the terminal table and the report's "Checks" section.

Both read the ``checks`` record of ``results.json`` (written by ``herdlab run`` and
``herdlab check``): its overall status, every verdict and what was not checked.
Expectation verdicts are all shown; of the baseline comparison (one verdict per figure and
policy) only the figures that did not pass are listed, after a count.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from sim.decide.verdict import Status, Verdict

HEAD = ("where", "policy", "metric", "bound", "observed", "verdict")


def verdicts_of(checks: Mapping[str, Any]) -> list[Verdict]:
    return [Verdict.from_json(v) for v in checks.get("verdicts", [])]


def _shown(verdicts: Sequence[Verdict]) -> tuple[list[Verdict], list[Verdict]]:
    """(expectation verdicts, baseline verdicts that did not pass)."""
    expect = [v for v in verdicts if v.source != "baseline"]
    regressions = [v for v in verdicts if v.source == "baseline" and v.status is not Status.PASS]
    return expect, regressions


def _row(v: Verdict) -> list[str]:
    where = v.where if v.source != "baseline" else "baseline"
    return [where, v.policy, v.metric, v.bound, v.observed_text(), v.status.value]


def _baseline_count(verdicts: Sequence[Verdict]) -> str:
    base = [v for v in verdicts if v.source == "baseline"]
    if not base:
        return ""
    worse = sum(v.status is Status.FAIL for v in base)
    unsure = sum(v.status is Status.INCONCLUSIVE for v in base)
    text = f"baseline {base[0].where}: {len(base)} figures compared, {worse} worse beyond tolerance"
    return text + (f", {unsure} inconclusive" if unsure else "")


def checks_text(checks: Mapping[str, Any]) -> str:
    """The verdict table for a terminal, with the overall status and what was not checked."""
    verdicts = verdicts_of(checks)
    expect, regressions = _shown(verdicts)
    lines = []
    rows = [list(HEAD)] + [_row(v) for v in expect + regressions]
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for v in expect + regressions:
        if v.status is not Status.PASS and v.note:
            lines.append(f"  {v.policy} {v.metric}: {v.note}")
    count = _baseline_count(verdicts)
    if count:
        lines.append(count)
    for line in checks.get("not_checked", []):
        lines.append(f"not checked: {line}")
    lines.append(_status_line(checks, verdicts))
    return "\n".join(lines)


def _status_line(checks: Mapping[str, Any], verdicts: Sequence[Verdict]) -> str:
    n = {s: sum(v.status is s for v in verdicts) for s in Status}
    parts = [f"{n[Status.PASS]} passed", f"{n[Status.FAIL]} failed"]
    if n[Status.INCONCLUSIVE]:
        accepted = " (accepted)" if checks.get("accept_inconclusive") else ""
        parts.append(f"{n[Status.INCONCLUSIVE]} inconclusive{accepted}")
    return f"checks: {checks['status']}: " + ", ".join(parts)


CSS = """
#checks td.PASS{background:#e8f4ea}#checks td.FAIL{background:#fbe3e1;font-weight:700}
#checks td.INCONCLUSIVE{background:#fff4d6}#checks .status{font-size:1.1em}
"""


def checks_html(record: Mapping[str, Any]) -> str:
    """The report's "Checks" section (empty when the run checked nothing)."""
    checks = record.get("checks")
    if not checks or not (checks.get("verdicts") or checks.get("not_checked")):
        return ""
    verdicts = verdicts_of(checks)
    expect, regressions = _shown(verdicts)
    body = []
    for v in expect + regressions:
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in _row(v)[:-1])
        note = f"<br><small>{html.escape(v.note)}</small>" if v.note else ""
        body.append(f'<tr>{cells}<td class="{v.status.value}">{v.status.value}{note}</td></tr>')
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in HEAD)
        + f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
        if body
        else ""
    )
    extra = [_baseline_count(verdicts)] + [
        f"not checked: {line}" for line in checks.get("not_checked", [])
    ]
    notes = "".join(f"<p>{html.escape(t)}</p>" for t in extra if t)
    status = html.escape(_status_line(checks, verdicts))
    return (
        f'<section id="checks"><style>{CSS}</style><h2>Checks</h2>'
        f'<p class="status"><strong>{status}</strong></p>{table}{notes}</section>'
    )


def summary_text(suites: Sequence[tuple[str, Mapping[str, Any]]], verbose: bool = False) -> str:
    """``herdlab check``'s one summary over (scenario name, ``checks`` record) pairs: every
    verdict that did not pass (every expectation verdict when ``verbose``), then one line
    per scenario."""
    rows = [["scenario", *HEAD]]
    tail = []
    for name, checks in suites:
        verdicts = verdicts_of(checks)
        expect, regressions = _shown(verdicts)
        listed = [v for v in expect + regressions if verbose or v.status is not Status.PASS]
        rows += [[name, *_row(v)] for v in listed]
        for v in listed:
            if v.status is not Status.PASS and v.note:
                tail.append(f"  {name} {v.policy} {v.metric}: {v.note}")
        count = _baseline_count(verdicts)
        if count:
            tail.append(f"{name}: {count}")
        tail += [f"{name}: not checked: {line}" for line in checks.get("not_checked", [])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    if len(rows) > 1:
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
    lines += tail
    for name, checks in suites:
        n = len(checks.get("verdicts", []))
        lines.append(f"{checks['status']:<12}  {name} ({n} checks)")
    return "\n".join(lines)
