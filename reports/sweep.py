"""A sweep's report: the ranked table (terminal and HTML), the Pareto chart, heatmaps of
two-parameter grids, the metastability map and the recommended policy.

Reads ``sweep.json`` records only. Same record in, same bytes out (fixed SVG salt, no
dates but ``SOURCE_DATE_EPOCH``'s).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from reports.html import CSS, _inline_svg, format_figure
from reports.style import RC, colours, save
from sim.decide.figures import value

RECOVERED, NOT_RECOVERED, UNKNOWN = "#009E73", "#D55E00", "#DDDDDD"


def show_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {show_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    return format_figure(v) if isinstance(v, float) else str(v)


def _columns(record: Mapping[str, Any]) -> list[str]:
    """Figures shown per point: the objective's goal, the constrained ones, the
    Pareto axes, then recovery."""
    out: list[str] = []
    for name in (
        record["pareto"]["y"],
        record["pareto"]["x"],
        "attempts_per_job",
        "completion_s.p99",
        "recovery_s",
    ):
        if name not in out:
            out.append(name)
    return out


def load_sweep_record(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "sweep.json").read_text())
    return data


def ranked_rows(record: Mapping[str, Any], top: int) -> list[list[str]]:
    """The ``top`` best points as table cells (header first)."""
    by_id = {p["id"]: p for p in record["points"]}
    params = [p["path"] for p in record["parameters"]]
    figs = _columns(record)
    rows = [["rank", "point", "policy", *params, *figs, "ok"]]
    for pid in record["ranking"][:top]:
        p = by_id[pid]
        ok = "yes" if p["feasible"] else "no: " + "; ".join(p["broken"])
        rows.append(
            [str(p["rank"]), pid, p["policy"]]
            + [show_value(p["params"][q]) for q in params]
            + [format_figure(value(p["summary"], f), missing="-") for f in figs]
            + [ok]
        )
    return rows


def ranked_table(record: Mapping[str, Any], top: int = 15) -> str:
    """The best points by the objective, fixed-width, for the terminal."""
    rows = ranked_rows(record, top)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    )


# ------------------------------------------------------------------ charts


def _pairs(points: Sequence[Mapping[str, Any]], x: str, y: str) -> list[tuple[float, float]]:
    out = []
    for p in points:
        a, b = value(p["summary"], x), value(p["summary"], y)
        if a is not None and b is not None:
            out.append((a, b))
    return out


def pareto_chart(record: Mapping[str, Any]) -> Any:
    """Every point on the two Pareto figures, a colour per base policy; the front joined
    by a line; points that break a constraint hollow."""
    x, y = record["pareto"]["x"], record["pareto"]["y"]
    front = set(record["pareto"]["front"])
    col = colours(record["policies"])
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(9, 6))
        for name in record["policies"]:
            pts = [p for p in record["points"] if p["policy"] == name]
            for feasible in (True, False):
                xy = _pairs([p for p in pts if p["feasible"] is feasible], x, y)
                if not xy:
                    continue
                xs, ys = [a for a, _ in xy], [b for _, b in xy]
                ax.scatter(
                    xs,
                    ys,
                    s=36,
                    alpha=0.8,
                    facecolors=col[name] if feasible else "none",
                    edgecolors=col[name],
                    label=name if feasible or not any(p["feasible"] for p in pts) else None,
                )
        fxy = sorted(_pairs([p for p in record["points"] if p["id"] in front], x, y))
        if fxy:
            ax.plot(
                *zip(*fxy, strict=True),
                color="#444444",
                lw=1.2,
                ls="--",
                label="Pareto front",
                gid="front",
            )
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{record['name']}: {len(record['points'])} points")
        ax.legend(loc="best")
        fig.tight_layout()
    return fig


def heatmaps(record: Mapping[str, Any]) -> Any | None:
    """The goal figure over the two map parameters, one panel per base policy."""
    maps = record.get("maps")
    if not maps:
        return None
    names = list(maps["policies"])
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(names), figsize=(4.8 * len(names) + 1, 4.6), squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            grid = np.array(
                [
                    [np.nan if v is None else v for v in row]
                    for row in maps["policies"][name]["goal"]
                ],
                dtype=float,
            )
            im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
            for (i, j), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.3g}",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="white" if v < np.nanmean(grid) else "black",
                    )
            _ticks(ax, maps)
            ax.set_title(name)
            fig.colorbar(im, ax=ax, shrink=0.8)
        fig.suptitle(f"{maps['goal']} per cell")
        fig.tight_layout()
    return fig


def metastability_map(record: Mapping[str, Any]) -> Any | None:
    """Recovered (green) or not (red) per cell of the two map parameters, per policy:
    where each policy stops recovering."""
    maps = record.get("maps")
    if not maps or not record["scenario"]["faults"]:
        return None
    names = list(maps["policies"])
    cmap = ListedColormap([NOT_RECOVERED, RECOVERED, UNKNOWN])
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 1, 4.4), squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            cells = maps["policies"][name]["recovered"]
            grid = np.array([[2 if c is None else int(c) for c in row] for row in cells])
            ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=2)
            for (i, j), v in np.ndenumerate(grid):
                ax.text(
                    j,
                    i,
                    {0: "no", 1: "yes", 2: "?"}[int(v)],
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if v < 2 else "black",
                )
            _ticks(ax, maps)
            ax.set_title(name)
            ax.grid(False)
        fig.suptitle("recovered after the trigger? (load back within 10% of before)")
        fig.tight_layout()
    return fig


def _ticks(ax: Any, maps: Mapping[str, Any]) -> None:
    ax.set_xticks(range(len(maps["xs"])), [show_value(v) for v in maps["xs"]], rotation=45)
    ax.set_yticks(range(len(maps["ys"])), [show_value(v) for v in maps["ys"]])
    ax.set_xlabel(maps["x"])
    ax.set_ylabel(maps["y"])
    ax.grid(False)


def sweep_charts(record: Mapping[str, Any]) -> dict[str, Any]:
    out = {"pareto": pareto_chart(record)}
    for stem, make in (("heatmap", heatmaps), ("metastability", metastability_map)):
        fig = make(record)
        if fig is not None:
            out[stem] = fig
    return out


CAPTIONS = {
    "pareto": "Every point; filled: meets the objective's constraints; dashed: the Pareto front.",
    "heatmap": "The objective's goal figure per cell of the two map parameters.",
    "metastability": "Whether the load came back to its pre-fault level, per cell and policy.",
}


# ------------------------------------------------------------------ HTML


def _table_html(rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:]
    )
    return f'<table id="ranking"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write_sweep_report(record: Mapping[str, Any], folder: Path, top: int = 25) -> Path:
    """Charts (PNG + SVG in ``folder/charts``) and ``folder/report.html``."""
    charts = folder / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    figures = []
    for stem, fig in sweep_charts(record).items():
        _, svg = save(fig, charts / f"sweep-{stem}")
        figures.append(
            f'<figure id="chart-{stem}">{_inline_svg(svg.read_text())}'
            f"<figcaption>{html.escape(CAPTIONS[stem])}</figcaption></figure>"
        )
    rec = record.get("recommended")
    recommended = (
        f"<h2>Recommended policy</h2><p>{html.escape(rec['why'])} (point {rec['id']}).</p>"
        f'<pre id="recommended">{html.escape(rec["yaml"])}</pre>'
        if rec
        else ""
    )
    by_value = ""
    for path, best in record.get("best_by_value", {}).items():
        items = "".join(
            f"<li><code>{html.escape(show_value(b['value']))}</code>: best point {b['id']},"
            f" rank {b['rank']}</li>"
            for b in best
        )
        by_value += f"<h3><code>{html.escape(path)}</code></h3><ul>{items}</ul>"
    params = "".join(
        f"<li><code>{html.escape(p['path'])}</code> ({p['in']}): "
        + html.escape(
            ", ".join(show_value(v) for v in p["values"])
            if "values" in p
            else f"{'log ' if p['log'] else ''}range {p['range'][0]:g}-{p['range'][1]:g}"
            + (f", {p['points']} points" if p["points"] else "")
        )
        + "</li>"
        for p in record["parameters"]
    )
    status = (
        "" if record["complete"] else "<p><strong>Incomplete sweep: partial results.</strong></p>"
    )
    sc = record["scenario"]
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>herdlab sweep: {html.escape(record["name"])}</title><style>{CSS}</style></head><body>
<h1>{html.escape(record["name"])}</h1>
<p>Scenario <code>{html.escape(sc["name"])}</code>: {html.escape(sc["description"])}</p>{status}
<p>Strategy {html.escape(record["strategy"])}, {len(record["points"])} points,
{record["replications"]} replication(s) each; ranked by: {html.escape(record["objective"])}.</p>
<h2>Parameters</h2><ul id="parameters">{params}</ul>
{recommended}
<h2>Best points</h2>
{_table_html(ranked_rows(record, top))}
{"<h2>Best point per value</h2>" + by_value if by_value else ""}
<h2>Charts</h2>
{"".join(figures)}
<h2>Provenance</h2>
<p class="prov">herdlab {html.escape(str(record["herdlab_version"]))} · sweep
<code>{html.escape(record["sweep_file"])}</code> · scenario <code>{html.escape(sc["source"])}</code>
sha256 <code>{html.escape(sc["sha256"])}</code> · every point in <code>points.csv</code></p>
</body></html>
"""
    out = folder / "report.html"
    out.write_text(doc)
    return out
