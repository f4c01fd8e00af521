"""The fidelity section (sim against real) and the real harness's self-check, for the
terminal and the HTML report, and the overlay charts: offered load and goodput over
time, simulated and real lines per policy.

Reads result records only: ``OUT/results.json`` of ``herdlab run --mode both`` and the
two results directories it names (``sim/``, ``real/``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from reports.data import PolicySeries, Results, load_results
from reports.style import FAULT_SHADE, RC, colours, save

#: the overlay charts' smoothing: a trailing mean over this many seconds
SMOOTH_S = 1.0

MARK_DEGRADED = "†"


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(v)


def _status(row: dict[str, Any]) -> str:
    if row.get("by_construction"):
        return "n/a"
    return str(row["status"]) + (MARK_DEGRADED if row.get("degraded") else "")


# ------------------------------------------------------------------ terminal


def _cells(r: dict[str, Any]) -> list[str]:
    return [r["policy"], r["metric"], _fmt(r["sim"]), _fmt(r["real"]), r["tolerance"], _status(r)]


def _aligned(rows: list[list[str]], left: int) -> list[str]:
    """Fixed-width lines: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _notes(fid: dict[str, Any], prefix: str = "") -> list[str]:
    lines = []
    for name, reason in sorted(fid.get("by_construction", {}).items()):
        lines.append(f"  {prefix}n/a {name}: cannot match by construction: {reason}")
    if fid.get("degraded_policies"):
        lines.append(
            f"  {prefix}{MARK_DEGRADED} from a degraded real run (the harness missed its"
            f" schedule): {', '.join(fid['degraded_policies'])}"
        )
    return lines


def fidelity_table(record: dict[str, Any]) -> str:
    """The fidelity rows as a fixed-width table, with the notes under it."""
    fid = record.get("fidelity")
    if not fid:
        return ""
    rows = [["policy", "figure", "sim", "real", "tolerance", "status"]]
    rows += [_cells(r) for r in fid["rows"]]
    return "\n".join([*_aligned(rows, 2), f"fidelity: {fid['status']}", *_notes(fid)])


def fidelity_suite_table(records: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """One fidelity table over several scenarios' ``--mode both`` records (scenario
    name, record), a scenario column first, each scenario's notes under it."""
    rows = [["scenario", "policy", "figure", "sim", "real", "tolerance", "status"]]
    notes = []
    for name, record in records:
        fid = record.get("fidelity")
        if not fid:
            continue
        rows += [[name, *_cells(r)] for r in fid["rows"]]
        notes += _notes(fid, f"{name}: ")
    return "\n".join([*_aligned(rows, 3), *notes])


def self_check_lines(record: dict[str, Any]) -> list[str]:
    """One line per policy of a real run: timer lag, arrivals, CPU; then DEGRADED lines."""
    checks = record.get("self_check") or {
        p["name"]: p["self_check"] for p in record.get("policies", []) if "self_check" in p
    }
    lines = []
    for name, c in checks.items():
        lag = c["timer_lag_ms"]
        probe = c["probe_lag_ms"]
        cpu = c.get("cpu_cores", {})
        cpu_text = ", ".join(
            f"{k} {v:.2f}" for k, v in cpu.items() if k != "host_cores" and v is not None
        )
        lines.append(
            f"self-check {name}: timer lag p50/p99/max {_fmt(lag['p50'])}/{_fmt(lag['p99'])}/"
            f"{_fmt(lag['max'])} ms over {lag['n']} sleeps (probe p99 {_fmt(probe['p99'])} ms);"
            f" arrivals {c['arrivals']['started']}/{c['arrivals']['planned']},"
            f" {c['arrivals']['seconds_short']} second(s) short; cores: {cpu_text}"
        )
    if record.get("degraded"):
        lines.append("DEGRADED: the real run could not keep its schedule:")
        lines += [f"  {r}" for r in record.get("degraded_reasons", [])]
    return lines


# ------------------------------------------------------------------ charts


def _smooth(x: np.ndarray, bucket_s: float) -> np.ndarray:
    width = max(1, round(SMOOTH_S / bucket_s))
    if len(x) == 0:
        return x
    return np.convolve(x, np.ones(width) / width, mode="full")[: len(x)]


def overlay(
    policy: str, sim: PolicySeries | None, real: PolicySeries | None, results: Results
) -> Any:
    """Offered load (top) and goodput (bottom) over time of one policy: sim solid, real
    dashed, both as a trailing 1 s mean; faults shaded."""
    col = colours([policy])[policy]
    b = results.bucket_s
    with plt.rc_context(RC):
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 7))
        for side, series, style in (("sim", sim, "-"), ("real", real, "--")):
            if series is None:
                continue
            s = series.series
            t = s["t_s"]
            offered = (s["offered_first"] + s["offered_retry"] + s["offered_reconnect"]) / b
            top.plot(
                t,
                _smooth(offered, b),
                color=col,
                ls=style,
                lw=1.6,
                label=f"{side}",
                gid=f"offered:{side}",
            )
            bottom.plot(
                t,
                _smooth(s["completed"] / b, b),
                color=col,
                ls=style,
                lw=1.6,
                label=f"{side}",
                gid=f"goodput:{side}",
            )
        for ax in (top, bottom):
            for f in results.scenario["faults"]:
                ax.axvspan(f["start_s"], f["end_s"], color=FAULT_SHADE, alpha=0.18, lw=0)
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper right", frameon=False)
        top.set_ylabel("offered requests/s")
        bottom.set_ylabel("jobs completed/s")
        bottom.set_xlabel("time (s)")
        bottom.set_xlim(0, results.scenario["duration_s"])
        top.set_title(f"{policy}: simulated (solid) and real (dashed), {SMOOTH_S:g} s mean")
        return fig


def overlay_charts(both_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """One overlay figure per policy run on both sides (stem -> Figure)."""
    sim = load_results(both_dir / record["sim"])
    real = load_results(both_dir / record["real"])
    sim_by = {p.name: p for p in sim.policies}
    real_by = {p.name: p for p in real.policies}
    return {
        f"overlay-{name}": overlay(name, sim_by.get(name), real_by.get(name), real)
        for name in sim_by
        if name in real_by
    }


# ------------------------------------------------------------------ HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;line-height:1.45;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child,td:nth-child(2){text-align:left}
td.PASS{background:#e8f4ea}td.FAIL{background:#fbe3e0}td.na{color:#777}
.degraded{border:2px solid #D55E00;padding:.5em 1em;background:#fff4ec}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555}
"""


def degraded_banner(record: dict[str, Any]) -> str:
    """A warning box when the real run was degraded (nothing otherwise)."""
    if not record.get("degraded"):
        return ""
    items = "".join(f"<li>{html.escape(r)}</li>" for r in record.get("degraded_reasons", []))
    return (
        '<div class="degraded" id="degraded"><strong>Degraded real run:</strong> the harness'
        " could not keep the scenario's schedule, so its figures describe the machine as"
        f" much as the policy.<ul>{items}</ul></div>"
    )


def self_check_html(record: dict[str, Any]) -> str:
    """The real run's self-measurement per policy, as a table (nothing for a simulation)."""
    lines = self_check_lines(record)
    if not lines:
        return ""
    body = "".join(f"<li>{html.escape(x)}</li>" for x in lines if not x.startswith("DEGRADED"))
    return f'<h2>Self-check of the real harness</h2><ul id="self-check">{body}</ul>'


def fidelity_html(record: dict[str, Any]) -> str:
    fid = record.get("fidelity")
    if not fid:
        return ""
    head = "".join(
        f"<th>{h}</th>" for h in ("policy", "figure", "sim", "real", "tolerance", "status", "note")
    )
    rows = []
    for r in fid["rows"]:
        status = _status(r)
        cls = "na" if status == "n/a" else str(r["status"])
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(x)}</td>"
                for x in (r["policy"], r["metric"], _fmt(r["sim"]), _fmt(r["real"]), r["tolerance"])
            )
            + f'<td class="{cls}">{html.escape(status)}</td><td>{html.escape(r["note"])}</td></tr>'
        )
    notes = "".join(
        f"<li><code>{html.escape(k)}</code>: cannot match by construction: {html.escape(v)}</li>"
        for k, v in sorted(fid.get("by_construction", {}).items())
    )
    return (
        f"<h2>Fidelity: simulation against reality ({html.escape(fid['status'])})</h2>"
        f"<p>Tolerances: success rate ± {fid['tolerances']['success_rate_pp']:g} pp; others"
        " relative to the simulated value (set them in the scenario's <code>fidelity:</code>"
        f" block). Peak offered load over a fixed {fid['peak_window_s']:g} s window."
        f" {MARK_DEGRADED}: from a degraded real run.</p>"
        f'<table id="fidelity"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
        f"</table>{'<ul>' + notes + '</ul>' if notes else ''}"
    )


def write_all_reports(both_dir: Path) -> Path:
    """The sim's and the real run's own reports, then the fidelity report over them."""
    from reports.html import write_report

    record = load_results(both_dir).record
    for side in ("sim", "real"):
        write_report(load_results(both_dir / record[side]), both_dir / record[side] / "report.html")
    return write_both_report(both_dir)


def write_both_report(both_dir: Path, out: Path | None = None) -> Path:
    """The report of a ``--mode both`` run: fidelity table, overlay charts, self-check."""
    from reports.html import _inline_svg

    results = load_results(both_dir)
    record = results.record
    out = out or both_dir / "report.html"
    charts_dir = out.parent / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for stem, fig in overlay_charts(both_dir, record).items():
        _, svg = save(fig, charts_dir / stem)
        figures.append(
            f'<figure id="chart-{html.escape(stem)}">{_inline_svg(svg.read_text())}'
            f"<figcaption>{html.escape(stem[len('overlay-') :])}: offered load and goodput,"
            " simulated (solid) and real (dashed).</figcaption></figure>"
        )
    sc = record["scenario"]
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>herdlab fidelity: {html.escape(sc["name"])}</title><style>{CSS}</style></head><body>
<h1>{html.escape(sc["name"])}: simulation and reality</h1>
<p>{html.escape(sc["description"])}</p>
<p>Scale {record["scale"]:g}, seed {record["seed"]}, connections
{html.escape(str(record.get("connections", "")))}. Full reports:
<a href="{record["sim"]}/report.html">simulation</a>,
<a href="{record["real"]}/report.html">real</a>.</p>
{degraded_banner(record)}
{fidelity_html(record)}
<h2>Offered load and goodput, sim and real</h2>
{"".join(figures)}
{self_check_html(record)}
</body></html>
"""
    out.write_text(doc)
    return out
