"""One self-contained HTML report: charts inline as SVG, nothing fetched from anywhere.

Same results in, same bytes out: the charts use a fixed SVG hash salt and no dates,
and the report's date is the results file's (or ``SOURCE_DATE_EPOCH``), not the clock's.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reports.charts import all_charts, left_out
from reports.checks import checks_html
from reports.data import Results
from reports.fidelity import degraded_banner, self_check_html, write_both_report
from reports.style import colours, save
from sim.decide.decision import Decision, decide
from sim.decide.figures import figure, interval, value
from sim.decide.objective import Objective

# Figures of the ranked table after the objective's own, in this order (registry names);
# a column every policy has null for is left out.
TABLE_FIGURES = (
    "success_rate",
    "attempts_per_job",
    "completion_s.p50",
    "completion_s.p99",
    "peak_offered_per_s",
    "fault_load_ratio",
    "recovery_load_ratio",
    "recovery_s",
    "outcomes.gave_up",
    "outcomes.timed_out",
    "outcomes.failed",
    "completed_unseen",
    "work_amplification",
    "wasted_work_s",
    "queue_wait_s.p95",
    "server_writes",
    "server_reads",
    "makespan_s",
    "events_lost",
    "events_duplicated",
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;line-height:1.45;padding:0 1em}
h1{margin-bottom:.2em}table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
#verdict{border:2px solid #0072B2;border-radius:6px;padding:.6em 1.2em;margin:1em 0;
background:#f3f8fc}#verdict h2{margin:.2em 0}#verdict .winner{font-size:1.35em;font-weight:700}
#verdict .objective{color:#444}tr.broken td{color:#777}th small{font-weight:400;color:#555}
.scroll{overflow-x:auto}#summary td:nth-child(2),#summary th:nth-child(2){text-align:left;
white-space:nowrap}#summary th{font-size:.85em}.note{color:#555;font-style:italic}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.4em;vertical-align:-.1em}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
.prov{color:#555;font-size:.85em}code{background:#f4f4f4;padding:0 .2em}
"""


def format_figure(v: Any, missing: str = "–") -> str:
    """A summary figure as text: 3 significant digits, thousands grouped from 1,000."""
    if v is None:
        return missing
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _fmt(v: Any) -> str:
    return html.escape(format_figure(v))


def _table_figures(results: Results, objective: Objective) -> list[str]:
    kind = results.scenario["service_kind"]
    wanted = [objective.metric, *(c.metric for c in objective.subject_to), *objective.then]
    wanted += [n for n in TABLE_FIGURES if n not in wanted]
    return [
        n
        for n in wanted
        if kind in figure(n).kinds
        and any(value(p.summary, n) is not None for p in results.policies)
    ]


def summary_table(results: Results, decision: Decision | None = None) -> str:
    """Every policy, best first by the objective: rank, the objective's figures, then the
    rest; with replications each value carries its 95% CI. No per-column marks: the rank
    is the only judgement, and it is the objective's."""
    decision = decision or decide(results.record)
    col = colours(p.name for p in results.policies)
    by_name = {p.name: p for p in results.policies}
    names = _table_figures(results, decision.objective)
    head = "".join(
        f'<th title="{html.escape(figure(n).definition)}">{html.escape(n)}'
        f"<br><small>{html.escape(figure(n).unit)}</small></th>"
        for n in names
    )
    replicated = results.record["replications"] > 1
    rows = []
    for r in decision.ranking:
        p = by_name[r.name]
        cells = []
        for n in names:
            ci = interval(p.ci95, n) if replicated else None
            text = _fmt(value(p.summary, n))
            if ci is not None and ci[0] != ci[1]:
                text += f" <small>[{_fmt(ci[0])}, {_fmt(ci[1])}]</small>"
            cells.append(f"<td>{text}</td>")
        swatch = f'<span class="swatch" style="background:{col[p.name]}"></span>'
        broken = html.escape(", ".join(r.broken)) or "–"
        cls = ' class="broken"' if r.broken else ""
        rows.append(
            f"<tr{cls}><td>{r.rank}</td><td>{swatch}{html.escape(p.name)}</td>"
            f"{''.join(cells)}<td>{broken}</td></tr>"
        )
    return (
        f'<table id="summary"><thead><tr><th>#</th><th>policy</th>{head}'
        f"<th>breaks</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def verdict_box(results: Results, decision: Decision) -> str:
    """The answer first: the objective, the winning policy, one sentence why."""
    source = "the scenario's objective" if decision.objective_given else "the default objective"
    win = decision.winner
    winner = html.escape(win.name) if win is not None else "none"
    return (
        '<section id="verdict"><h2>Verdict</h2>'
        f'<p class="objective">By {source}: <strong>'
        f"{html.escape(decision.objective.describe())}</strong></p>"
        f'<p class="winner">Use {winner}</p>'
        f'<p class="why">{html.escape(decision.why)}</p></section>'
    )


def _report_date(results: Results) -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    ts = float(epoch) if epoch else (results.directory / "results.json").stat().st_mtime
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d")


def _inline_svg(svg_text: str) -> str:
    # drop the XML prolog and DOCTYPE: an inline <svg> element needs neither
    svg_text = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg_text)
    return re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg_text, flags=re.S)


CAPTIONS = {
    "herd": "Offered requests per second, one panel per policy on shared axes: the line is"
    " every request, the filled area retries and reconnects; dotted, the load before the"
    " first fault and three times it.",
    "recovery": "The recovery window, zoomed: offered load (colour) and goodput (dashed), each"
    " over its pre-fault level; a vertical line marks the recovery, when there is one.",
    "goodput": "Goodput: results clients received per second, with the service's capacity in"
    " jobs per second.",
    "service": "Queue length, busy slots, warm instances and clients waiting to retry.",
    "streams": "Progress streams: connected, reconnecting, given up.",
    "completion_cdf": "Completion time of completed jobs; each curve ends at its success rate.",
    "attempts": "Create attempts per job.",
    "summary": "Success rate and attempts per job (95% CI with replications).",
    "occ": "The 2015 experiment's two views: work and completion time.",
}


def _real_setup(rec: dict[str, Any]) -> str:
    """How a real run was made (scale, connections, event loop); nothing for a simulation."""
    if rec.get("mode") != "real":
        return ""
    parts = [f"scale {rec.get('scale', 1.0):g}"]
    parts += [str(rec[k]) for k in ("connections", "event_loop") if k in rec]
    return " (" + html.escape(", ".join(parts)) + ")"


MAX_FAULTS_LISTED = 100


Section = Callable[[Results, Decision, list[str]], str]


def _head(results: Results, decision: Decision, figures: list[str]) -> str:
    sc = results.scenario
    status = (
        ""
        if results.record.get("complete", True)
        else "<p><strong>Incomplete run: partial results.</strong></p>"
    )
    return f"<h1>{html.escape(sc['name'])}</h1>\n<p>{html.escape(sc['description'])}</p>{status}"


def _verdict(results: Results, decision: Decision, figures: list[str]) -> str:
    return verdict_box(results, decision)


def _checks(results: Results, decision: Decision, figures: list[str]) -> str:
    return checks_html(results.record)


def _ranking(results: Results, decision: Decision, figures: list[str]) -> str:
    return (
        "<h2>Policies, best first</h2>\n<p>Ranked by the objective above; a policy that breaks"
        " a constraint ranks after every one that does not. Hover a column's name for its"
        ' definition.</p>\n<div class="scroll">' + summary_table(results, decision) + "</div>"
    )


def _faults(results: Results, decision: Decision, figures: list[str]) -> str:
    listed = results.scenario["faults"]
    faults = "".join(
        f"<li>{html.escape(f['label'])} ({f['start_s']:g}-{f['end_s']:g} s)</li>"
        for f in listed[:MAX_FAULTS_LISTED]
    )
    if len(listed) > MAX_FAULTS_LISTED:
        faults += f"<li>and {len(listed) - MAX_FAULTS_LISTED:,} more (results.json)</li>"
    return f'<h2>Fault timeline</h2><ul id="faults">{faults or "<li>none</li>"}</ul>'


def _charts(results: Results, decision: Decision, figures: list[str]) -> str:
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in left_out(results))
    return "<h2>Charts</h2>\n" + "".join(figures) + notes


def _provenance(results: Results, decision: Decision, figures: list[str]) -> str:
    rec, sc = results.record, results.scenario
    return f"""<h2>Provenance</h2>
<p class="prov">herdlab {html.escape(str(rec["herdlab_version"]))} ·
mode {html.escape(str(rec["mode"]))}{_real_setup(rec)} · seed {rec["seed"]} ·
replications {rec["replications"]} · scenario <code>{html.escape(sc["source"])}</code>
sha256 <code>{html.escape(sc["sha256"])}</code> · results of {_report_date(results)}</p>"""


def _degraded(results: Results, decision: Decision, figures: list[str]) -> str:
    return degraded_banner(results.record)  # a real run that missed its schedule says so


def _self_check(results: Results, decision: Decision, figures: list[str]) -> str:
    return self_check_html(results.record)  # a real run's self-measurement


#: The report, top to bottom. The answer comes first; a block of checks (expectations,
#: baselines) belongs right after the verdict: insert its function there.
SECTIONS: list[Section] = [
    _head,
    _degraded,
    _verdict,
    _checks,
    _ranking,
    _faults,
    _charts,
    _self_check,
    _provenance,
]


def write_report(results: Results, out: Path, charts_dir: Path | None = None) -> Path:
    """Render every chart (PNG and SVG into ``charts_dir``) and the HTML report at ``out``."""
    if results.record.get("mode") == "both":  # sim against real: reports/fidelity.py
        return write_both_report(results.directory, out)
    charts_dir = charts_dir or out.parent / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for stem, fig in all_charts(results).items():
        _, svg = save(fig, charts_dir / stem)
        figures.append(
            f'<figure id="chart-{stem}">{_inline_svg(svg.read_text())}'
            f"<figcaption>{html.escape(CAPTIONS.get(stem, stem))}</figcaption></figure>"
        )
    decision = decide(results.record)
    body = "\n".join(section(results, decision, figures) for section in SECTIONS)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>herdlab: {html.escape(results.scenario["name"])}</title><style>{CSS}</style></head><body>
{body}
</body></html>
"""
    out.write_text(doc)
    return out
