"""The charts herdlab is known for. Each function draws from result records only and
returns the matplotlib Figure, so tests can check the data on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from reports.data import Results
from reports.style import CAPACITY_COLOUR, FAULT_SHADE, RC, colours

MAX_FAULT_SPANS = 200
"""Shaded fault windows per axis, at most: a chart is ~1,000 pixels wide, and each
span is an artist matplotlib draws one by one (20,000 faults took minutes and GBs)."""
MAX_FAULT_LABELS = 6
"""Fault labels written on a chart; the rest are counted in one more label."""


def fault_spans(
    faults: Sequence[Mapping[str, Any]], duration_s: float
) -> list[tuple[float, float]]:
    """The fault windows to shade: overlapping or touching ones merged; if more than
    MAX_FAULT_SPANS remain, windows closer than a gap are merged too, the gap starting
    at 1/1000 of the run (about a pixel) and doubling until few enough remain."""
    windows = sorted((float(f["start_s"]), float(f["end_s"])) for f in faults)
    gap_s = 0.0
    while True:
        merged: list[list[float]] = []
        for start_s, end_s in windows:
            if merged and start_s <= merged[-1][1] + gap_s:
                merged[-1][1] = max(merged[-1][1], end_s)
            else:
                merged.append([start_s, end_s])
        if len(merged) <= MAX_FAULT_SPANS:
            return [(a, b) for a, b in merged]
        gap_s = max(duration_s, 1e-9) / 1000 if gap_s == 0 else gap_s * 2


def _shade_faults(ax: Any, results: Results, labels: bool = True) -> None:
    faults = results.scenario["faults"]
    for start_s, end_s in fault_spans(faults, float(results.scenario["duration_s"])):
        ax.axvspan(start_s, end_s, color=FAULT_SHADE, alpha=0.18, lw=0, gid="fault")
    if not labels:
        return
    shown = sorted(faults, key=lambda f: f["start_s"])[:MAX_FAULT_LABELS]
    texts = [(f["start_s"], f["label"]) for f in shown]
    if len(faults) > len(shown):
        texts.append((shown[-1]["start_s"], f"+ {len(faults) - len(shown):,} more faults"))
    for i, (start_s, label) in enumerate(texts):
        ax.annotate(
            label,
            xy=(start_s, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -14 - 14 * i),
            textcoords="offset points",
            fontsize=10,
            color="#333333",
        )


def herd(results: Results) -> Any:
    """Offered attempts per second over time, one colour per policy; first tries solid,
    retries + reconnects dashed; the service capacity as a line; faults shaded."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots()
        col = colours(p.name for p in results.policies)
        b = results.bucket_s
        for p in results.policies:
            s = p.series
            t = s["t_s"]
            first = s["offered_first"] / b
            again = (s["offered_retry"] + s["offered_reconnect"]) / b
            ax.plot(
                t,
                first + again,
                color=col[p.name],
                lw=1.6,
                label=f"{p.name}: all attempts",
                gid=f"total:{p.name}",
            )
            ax.plot(
                t,
                again,
                color=col[p.name],
                lw=1.0,
                ls="--",
                alpha=0.8,
                label=f"{p.name}: retries + reconnects",
                gid=f"retries:{p.name}",
            )
        cap = results.scenario["capacity_per_s"]
        if cap and results.scenario["service_kind"] != "occ":
            ax.axhline(
                cap,
                color=CAPACITY_COLOUR,
                lw=1.2,
                ls=":",
                label="service capacity (jobs/s)",
                gid="capacity",
            )
        _shade_faults(ax, results)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"offered attempts per second ({b * 1000:g} ms buckets)")
        ax.set_title(f"{results.scenario['name']}: offered load per policy")
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, results.scenario["duration_s"])
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3, frameon=False)
        return fig


def service_view(results: Results) -> Any:
    """Queue length, busy slots and active instances over time, per policy."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=(11, 8))
        col = colours(p.name for p in results.policies)
        for p in results.policies:
            t = p.series["t_s"]
            for ax, key in zip(
                axes, ("queue_length", "busy_slots", "active_instances"), strict=True
            ):
                ax.plot(
                    t, p.series[key], color=col[p.name], lw=1.3, label=p.name, gid=f"{key}:{p.name}"
                )
        labels = ("queue length (jobs)", "busy slots", "active instances")
        for i, (ax, label) in enumerate(zip(axes, labels, strict=True)):
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
            _shade_faults(ax, results, labels=i == 0)
        axes[-1].set_xlabel("time (s)")
        axes[-1].set_xlim(0, results.scenario["duration_s"])
        axes[0].set_title(f"{results.scenario['name']}: the service under each policy")
        axes[-1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=4, frameon=False)
        return fig


def streams(results: Results) -> Any:
    """Clients connected, reconnecting and disconnected over time, per policy."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 3, sharey=True, figsize=(14, 5))
        col = colours(p.name for p in results.policies)
        keys = ("clients_connected", "clients_reconnecting", "clients_disconnected")
        for ax, key in zip(axes, keys, strict=True):
            for p in results.policies:
                ax.plot(
                    p.series["t_s"],
                    p.series[key],
                    color=col[p.name],
                    lw=1.3,
                    label=p.name,
                    gid=f"{key}:{p.name}",
                )
            ax.set_title(key.replace("clients_", "").capitalize())
            ax.set_xlabel("time (s)")
            ax.set_xlim(0, results.scenario["duration_s"])
            _shade_faults(ax, results, labels=ax is axes[0])
        axes[0].set_ylabel("clients (progress streams)")
        axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=4, frameon=False)
        fig.suptitle(f"{results.scenario['name']}: progress-stream connection state")
        return fig


def completion_cdf(results: Results) -> Any:
    """Completion-time CDF of completed jobs per policy (log time axis over decades)."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots()
        col = colours(p.name for p in results.policies)
        lo, hi = np.inf, 0.0
        for p in results.policies:
            q = np.asarray(p.distributions["completion_s_quantiles"], dtype=float)
            if len(q) == 0:
                continue
            share = p.summary["success_rate"] or 0.0
            y = np.linspace(0, 1, len(q)) * share  # of all jobs: the curve tops out at success
            ax.step(
                q, y, where="post", color=col[p.name], lw=1.6, label=p.name, gid=f"cdf:{p.name}"
            )
            lo, hi = min(lo, max(q[0], 1e-3)), max(hi, q[-1])
        if hi > 0 and hi / lo > 100:
            ax.set_xscale("log")
        ax.set_xlabel("completion time (s)")
        ax.set_ylabel("share of all jobs completed")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{results.scenario['name']}: completion time per policy")
        if ax.lines:
            ax.legend(loc="lower right")
        else:  # e.g. job-timeout: every job ends timed out
            ax.text(
                0.5,
                0.5,
                "no job completed under any policy",
                ha="center",
                va="center",
                transform=ax.transAxes,
                gid="cdf:none",
            )
        return fig


def attempts_histogram(results: Results) -> Any:
    """How many create attempts each job needed, per policy."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots()
        col = colours(p.name for p in results.policies)
        n = len(results.policies)
        width = 0.8 / max(1, n)
        for i, p in enumerate(results.policies):
            hist = {int(k): v for k, v in p.distributions["attempts_histogram"].items()}
            xs = np.array(sorted(hist))
            if len(xs) == 0:
                continue
            ax.bar(
                xs + (i - (n - 1) / 2) * width,
                [hist[x] for x in xs],
                width=width,
                color=col[p.name],
                label=p.name,
                gid=f"attempts:{p.name}",
            )
        ax.set_xlabel("attempts per job")
        ax.set_ylabel("jobs")
        ax.set_title(f"{results.scenario['name']}: attempts per job")
        ax.legend()
        return fig


def _bars_per_policy(
    results: Results, panels: tuple[tuple[str, str, str], ...], suptitle: str
) -> Any:
    """Side-by-side panels of one bar per policy, in its colour: each panel one summary
    figure ``(key, y label, title)``, with 95% CI whiskers when there are replications."""
    replicated = results.record["replications"] > 1
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(12, 5))
        col = colours(p.name for p in results.policies)
        names = [p.name for p in results.policies]
        for ax, (key, ylabel, title) in zip(axes, panels, strict=True):
            values = [p.summary[key] or 0.0 for p in results.policies]
            yerr = None  # no whiskers (not even flat caps) without replications
            if replicated:
                errs = []
                for p, v in zip(results.policies, values, strict=True):
                    ci = p.ci95.get(key) if p.ci95 else None
                    errs.append((v - ci[0], ci[1] - v) if ci else (0.0, 0.0))
                yerr = np.array(errs).T
            ax.bar(names, values, color=[col[n] for n in names], yerr=yerr, capsize=6, gid=key)
            ax.set_ylabel(ylabel)
            ax.set_title(title + (" (95% CI)" if replicated else ""))
            ax.tick_params(axis="x", rotation=20)
        fig.suptitle(suptitle)
        return fig


def success_bars(results: Results) -> Any:
    """Success rate and attempts per job with 95% confidence intervals."""
    return _bars_per_policy(
        results,
        (
            ("success_rate", "success rate", "success rate"),
            ("attempts_per_job", "attempts per job", "attempts per job"),
        ),
        f"{results.scenario['name']}: summary per policy",
    )


def occ(results: Results) -> Any:
    """The 2015 post's two views: server calls (work) and completion time per policy."""
    return _bars_per_policy(
        results,
        (
            ("server_calls", "server calls (reads + writes)", "work"),
            ("makespan_s", "time until every client is done (s)", "completion time"),
        ),
        f"{results.scenario['name']}: {results.scenario['clients']} clients",
    )


def all_charts(results: Results) -> dict[str, Any]:
    """Every chart that applies to these results, by file stem."""
    kind = results.scenario["service_kind"]
    charts: dict[str, Any] = {"herd": herd(results)}
    if kind == "occ":
        charts["occ"] = occ(results)
    else:
        charts["service"] = service_view(results)
    charts["completion_cdf"] = completion_cdf(results)
    charts["attempts"] = attempts_histogram(results)
    charts["summary"] = success_bars(results)
    if kind == "job" and any(p.series["clients_connected"].any() for p in results.policies):
        charts["streams"] = streams(results)
    return charts
