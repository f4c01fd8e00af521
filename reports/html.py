"""One self-contained HTML report: charts inline as SVG, nothing fetched from anywhere.

Same results in, same bytes out: the charts use a fixed SVG hash salt and no dates,
and the report's date is the results file's (or ``SOURCE_DATE_EPOCH``), not the clock's.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from pathlib import Path
from typing import Any

from reports.charts import all_charts
from reports.data import Results
from reports.fidelity import degraded_banner, self_check_html, write_both_report
from reports.style import colours, save

# (label, path in summary, better: "max" / "min")
COLUMNS = (
    ("success rate", "success_rate", "max"),
    ("attempts / job", "attempts_per_job", "min"),
    ("p50 s", "completion_s.p50", "min"),
    ("p95 s", "completion_s.p95", "min"),
    ("p99 s", "completion_s.p99", "min"),
    ("peak offered /s", "peak_offered_per_s", "min"),
    ("peak / capacity", "peak_load_ratio", "min"),
    ("recovery s", "recovery_s", "min"),
    ("completed", "outcomes.completed", "max"),
    ("failed", "outcomes.failed", "min"),
    ("gave up", "outcomes.gave_up", "min"),
    ("timed out", "outcomes.timed_out", "min"),
    ("server calls", "server_calls", "min"),
    ("events lost", "events_lost", "min"),
    ("events duplicated", "events_duplicated", "min"),
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;line-height:1.45;padding:0 1em}
h1{margin-bottom:.2em}table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
td.best{font-weight:700;background:#e8f4ea}td.best::after{content:" \\2605";color:#009E73}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.4em;vertical-align:-.1em}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
.prov{color:#555;font-size:.85em}code{background:#f4f4f4;padding:0 .2em}
"""


def _get(summary: dict[str, Any], path: str) -> Any:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def format_figure(v: Any, missing: str = "–") -> str:
    """A summary figure as text: 3 significant digits, thousands grouped from 1,000."""
    if v is None:
        return missing
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _fmt(v: Any) -> str:
    return html.escape(format_figure(v))


def summary_table(results: Results) -> str:
    col = colours(p.name for p in results.policies)
    shown = [c for c in COLUMNS if any(_get(p.summary, c[1]) is not None for p in results.policies)]
    if results.scenario["service_kind"] != "occ":
        shown = [c for c in shown if c[1] != "server_calls"]
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in shown)
    best: dict[str, Any] = {}
    for _, path, better in shown:
        values = [_get(p.summary, path) for p in results.policies]
        values = [v for v in values if v is not None]
        if values and len(results.policies) > 1 and len(set(values)) > 1:
            best[path] = max(values) if better == "max" else min(values)
    rows = []
    for p in results.policies:
        cells = []
        for _, path, _ in shown:
            v = _get(p.summary, path)
            ci = _get(p.ci95, path) if p.ci95 and results.record["replications"] > 1 else None
            text = _fmt(v) + (f" <small>[{_fmt(ci[0])}, {_fmt(ci[1])}]</small>" if ci else "")
            cls = ' class="best"' if path in best and v == best[path] else ""
            cells.append(f"<td{cls}>{text}</td>")
        swatch = f'<span class="swatch" style="background:{col[p.name]}"></span>'
        rows.append(f"<tr><td>{swatch}{html.escape(p.name)}</td>{''.join(cells)}</tr>")
    return (
        f'<table id="summary"><thead><tr><th>policy</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
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
    "herd": "Offered attempts per second: solid = all attempts, dashed = retries and reconnects.",
    "service": "Queue length, busy slots and warm instances.",
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
    sc = results.scenario
    faults = "".join(f"<li>{html.escape(f['label'])}</li>" for f in sc["faults"]) or "<li>none</li>"
    rec = results.record
    status = (
        ""
        if rec.get("complete", True)
        else "<p><strong>Incomplete run: partial results.</strong></p>"
    )
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>herdlab: {html.escape(sc["name"])}</title><style>{CSS}</style></head><body>
<h1>{html.escape(sc["name"])}</h1>
<p>{html.escape(sc["description"])}</p>{status}{degraded_banner(rec)}
<h2>Fault timeline</h2><ul id="faults">{faults}</ul>
<h2>Summary per policy</h2>
<p>The best value of each column is marked ★.</p>
{summary_table(results)}
<h2>Charts</h2>
{"".join(figures)}
{self_check_html(rec)}
<h2>Provenance</h2>
<p class="prov">herdlab {html.escape(str(rec["herdlab_version"]))} ·
mode {html.escape(str(rec["mode"]))}{_real_setup(rec)} · seed {rec["seed"]} ·
replications {rec["replications"]} · scenario <code>{html.escape(sc["source"])}</code>
sha256 <code>{html.escape(sc["sha256"])}</code> · results of {_report_date(results)}</p>
</body></html>
"""
    out.write_text(doc)
    return out
