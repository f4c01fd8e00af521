"""The charts herdlab is known for. Each function draws from result records only and
returns the matplotlib Figure, so tests can check the data on it."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from reports.data import Results
from reports.style import CAPACITY_COLOUR, FAULT_SHADE, RC, colours


def _shade_faults(ax: Any, results: Results, labels: bool = True) -> None:
    for i, f in enumerate(results.scenario["faults"]):
        ax.axvspan(f["start_s"], f["end_s"], color=FAULT_SHADE, alpha=0.18, lw=0, gid="fault")
        if not labels:
            continue
        ax.annotate(
            f["label"],
            xy=(f["start_s"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -14 - 14 * i),
            textcoords="offset points",
            fontsize=10,
            color="#333333",
        )


def grid(n: int) -> tuple[int, int]:
    """(rows, columns) of small multiples for ``n`` policies: one column up to 2, then
    wider, so 50 policies still fit a page (10 rows of 5)."""
    cols = 1 if n <= 2 else 2 if n <= 6 else 3 if n <= 12 else 5
    return -(-n // cols), cols


def _small_multiples(results: Results, height_per_row: float = 2.4) -> tuple[Any, list[Any]]:
    """A figure with one panel per policy, shared axes, panels beyond the last hidden."""
    n = len(results.policies)
    rows, cols = grid(n)
    width = 11 if cols <= 2 else 14
    fig, axes = plt.subplots(
        rows,
        cols,
        sharex=True,
        sharey=True,
        squeeze=False,
        figsize=(width, 1.2 + height_per_row * rows),
        layout="constrained",
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def spans_decades(values: list[np.ndarray], decades: float = 2.0) -> bool:
    """True when the positive values span more than ``decades`` powers of ten."""
    positive = np.concatenate([v[v > 0] for v in values]) if values else np.zeros(0)
    return len(positive) > 0 and float(positive.max() / positive.min()) > 10**decades


def _policy_title(ax: Any, name: str, colour: str, extra: str = "") -> None:
    """The panel's policy name in its colour; what else it says goes beside it, or, when
    the panels are narrow (three or more columns), inside the panel's top right corner."""
    if ax.get_gridspec().ncols < 3:
        ax.set_title(name + extra, color=colour, fontsize=12, loc="left", fontweight="bold")
        return
    ax.set_title(name, color=colour, fontsize=10, loc="left", fontweight="bold")
    if extra:
        ax.text(
            0.99,
            0.97,
            extra.strip().strip("()"),
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="#333333",
        )


def herd(results: Results) -> Any:
    """Offered requests per second over time: one panel per policy with shared axes, so no
    policy's line hides another's. Solid: every request; filled: retries and reconnects;
    dotted: the load before the first fault, and 3x it (the default objective's limit on
    the surge at recovery), both in the axis's own unit, requests per second. Faults
    shaded. A log axis when the rates span more than two decades."""
    b = results.bucket_s
    with plt.rc_context(RC):
        fig, axes = _small_multiples(results)
        col = colours(p.name for p in results.policies)
        totals = []
        for ax, p in zip(axes, results.policies, strict=True):
            s = p.series
            t = s["t_s"]
            again = (s["offered_retry"] + s["offered_reconnect"]) / b
            total = s["offered_first"] / b + again
            totals.append(total)
            ax.fill_between(
                t, 0, again, color=col[p.name], alpha=0.25, lw=0, gid=f"retries:{p.name}"
            )
            ax.plot(t, total, color=col[p.name], lw=1.1, gid=f"total:{p.name}")
            base = p.summary.get("baseline_offered_per_s")
            if base:
                ax.axhline(base, color=CAPACITY_COLOUR, lw=1.0, ls=":", gid=f"baseline:{p.name}")
                ax.axhline(3 * base, color="#B22222", lw=1.0, ls=":", gid=f"limit:{p.name}")
            _shade_faults(ax, results, labels=False)
            ratio = p.summary.get("recovery_load_ratio")
            extra = f"  (recovery surge {ratio:.3g}x)" if ratio is not None else ""
            _policy_title(ax, p.name, col[p.name], extra)
        if spans_decades(totals):
            axes[0].set_yscale("log")
        else:
            axes[0].set_ylim(bottom=0)
        axes[0].set_xlim(0, results.scenario["duration_s"])
        for ax in axes:
            if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
                ax.set_xlabel("time (s)")
            if ax.get_subplotspec().is_first_col():
                ax.set_ylabel("requests/s")
        faults = "; ".join(f["label"] for f in results.scenario["faults"]) or "no faults"
        dotted = (
            " · dotted: pre-fault load and 3x it"
            if any(p.summary.get("baseline_offered_per_s") for p in results.policies)
            else ""
        )
        shaded = f"; shaded: {faults}" if results.scenario["faults"] else ""
        fig.suptitle(
            f"{results.scenario['name']}: offered requests per second"
            f" ({b * 1000:g} ms buckets{shaded})\n"
            f"line: every request · filled: retries + reconnects{dotted}",
            fontsize=13,
        )
        return fig


def _pre_fault_mean(t: np.ndarray, y: np.ndarray, first_s: float) -> float | None:
    window = (t >= max(0.0, first_s - 10.0)) & (t < first_s)
    return float(y[window].mean()) if window.any() else None


def _smooth(y: np.ndarray, width: int) -> np.ndarray:
    out: np.ndarray = np.convolve(y, np.ones(width) / width, mode="full")[: len(y)]
    return out


def recovery(results: Results) -> Any:
    """The recovery window, zoomed: from 5 s before the last fault ends to 40 s after (or
    to the recovery, if later), one panel per policy. Offered load and goodput, each over
    its own pre-fault level (1 = as before the faults; 1 s trailing means): recovered is
    goodput back at 1 with the surge of offered load over. The recovery instant, when
    there is one, is a vertical line; the default objective's 3x limit is dotted."""
    sc = results.scenario
    first = min(f["start_s"] for f in sc["faults"])
    last = max(f["end_s"] for f in sc["faults"])
    b = results.bucket_s
    width = max(1, round(1.0 / b))
    later = [p.summary.get("recovery_s") or 0.0 for p in results.policies]
    lo, hi = max(0.0, last - 5.0), min(sc["duration_s"], last + max(40.0, max(later) + 5.0))
    with plt.rc_context(RC):
        fig, axes = _small_multiples(results, height_per_row=2.2)
        col = colours(p.name for p in results.policies)
        for ax, p in zip(axes, results.policies, strict=True):
            s = p.series
            t = s["t_s"]
            offered = _smooth(
                (s["offered_first"] + s["offered_retry"] + s["offered_reconnect"]) / b, width
            )
            good = _smooth(s["completed"] / b, width)
            base_o, base_g = _pre_fault_mean(t, offered, first), _pre_fault_mean(t, good, first)
            zoom = (t >= lo) & (t <= hi)
            if base_o:
                ax.plot(
                    t[zoom],
                    offered[zoom] / base_o,
                    color=col[p.name],
                    lw=1.4,
                    gid=f"offered:{p.name}",
                )
            if base_g:
                ax.plot(
                    t[zoom],
                    good[zoom] / base_g,
                    color="#333333",
                    lw=1.2,
                    ls="--",
                    gid=f"goodput:{p.name}",
                )
            ax.axhline(1.0, color=CAPACITY_COLOUR, lw=0.8, ls="-", alpha=0.5)
            ax.axhline(3.0, color="#B22222", lw=1.0, ls=":")
            _shade_faults(ax, results, labels=False)
            rec_s = p.summary.get("recovery_s")
            if rec_s is not None:
                ax.axvline(last + rec_s, color=col[p.name], lw=1.5, gid=f"recovered:{p.name}")
            verdict = f"  recovered {rec_s:.3g} s after" if rec_s is not None else "  not recovered"
            _policy_title(ax, p.name, col[p.name], verdict)
        axes[0].set_xlim(lo, hi)
        axes[0].set_ylim(bottom=0)
        for ax in axes:
            if ax.get_subplotspec().is_first_col():
                ax.set_ylabel("x pre-fault")
            if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
                ax.set_xlabel("time (s)")
        fig.suptitle(
            f"{sc['name']}: the recovery window (the last fault ends at {last:g} s)\n"
            "colour: offered load · dashed: goodput (results clients received) ·"
            " both over their pre-fault level, 1 s means",
            fontsize=13,
        )
        return fig


def goodput(results: Results) -> Any:
    """Goodput over time, one panel per policy: completions whose client received the
    result, per second (1 s trailing mean), with the service's capacity in the same unit,
    jobs per second."""
    b = results.bucket_s
    width = max(1, round(1.0 / b))
    with plt.rc_context(RC):
        fig, axes = _small_multiples(results, height_per_row=2.0)
        col = colours(p.name for p in results.policies)
        cap = results.scenario["capacity_per_s"]
        for ax, p in zip(axes, results.policies, strict=True):
            t = p.series["t_s"]
            ax.plot(
                t,
                _smooth(p.series["completed"] / b, width),
                color=col[p.name],
                lw=1.3,
                gid=f"goodput:{p.name}",
            )
            if cap:
                ax.axhline(cap, color=CAPACITY_COLOUR, lw=1.0, ls=":", gid="capacity")
            _shade_faults(ax, results, labels=False)
            unseen = p.summary.get("completed_unseen")
            extra = f"  ({unseen:,.0f} finished unseen)" if unseen else ""
            _policy_title(ax, p.name, col[p.name], extra)
        axes[0].set_ylim(bottom=0)
        axes[0].set_xlim(0, results.scenario["duration_s"])
        for ax in axes:
            if ax.get_subplotspec().is_first_col():
                ax.set_ylabel("jobs/s")
            if ax.get_subplotspec().is_last_row() or ax is axes[-1]:
                ax.set_xlabel("time (s)")
        fig.suptitle(
            f"{results.scenario['name']}: goodput, results clients received per second"
            f" (1 s means)\ndotted: the service's capacity, {cap:,.0f} jobs/s",
            fontsize=13,
        )
        return fig


def _legend_below(ax: Any, n: int, y: float = -0.3) -> None:
    """A legend under the axes with one entry per policy, in as many columns as fit."""
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, y),
        ncols=min(n, 6),
        frameon=False,
        fontsize=10 if n > 12 else 11,
    )


def _nonzero(results: Results, keys: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The keys some policy's series is ever non-zero for, and the others."""
    shown = [k for k in keys if any(p.series[k].any() for p in results.policies)]
    return shown, [k for k in keys if k not in shown]


def _varying(results: Results, keys: list[str]) -> tuple[list[str], dict[str, float]]:
    """The keys whose series moves under some policy, and the constant ones' value."""
    const = {}
    for k in keys:
        values = np.concatenate([p.series[k] for p in results.policies])
        if len(values) and values.min() == values.max():
            const[k] = float(values[0])
    return [k for k in keys if k not in const], const


SERVICE_GAUGES = {
    "queue_length": "queue length (jobs)",
    "busy_slots": "busy slots",
    "active_instances": "active instances",
    "clients_backing_off": "clients waiting to retry",
}


def service_view(results: Results) -> Any:
    """Queue length, busy slots, active instances and clients waiting to retry over time,
    per policy; a gauge that is zero throughout under every policy is left out, and the
    title says so."""
    shown, empty = _nonzero(results, tuple(SERVICE_GAUGES))
    shown, constant = _varying(results, shown)
    shown = shown or ["busy_slots"]
    with plt.rc_context(RC):
        fig, grid_axes = plt.subplots(
            len(shown), 1, sharex=True, squeeze=False, figsize=(11, 1.2 + 2.3 * len(shown))
        )
        axes = list(grid_axes.ravel())
        col = colours(p.name for p in results.policies)
        for ax, key in zip(axes, shown, strict=True):
            for p in results.policies:
                ax.plot(
                    p.series["t_s"],
                    p.series[key],
                    color=col[p.name],
                    lw=1.2,
                    label=p.name,
                    gid=f"{key}:{p.name}",
                )
            ax.set_ylabel(SERVICE_GAUGES[key])
            ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
            _shade_faults(ax, results, labels=ax is axes[0])
        axes[-1].set_xlabel("time (s)")
        axes[-1].set_xlim(0, results.scenario["duration_s"])
        notes = [f"{SERVICE_GAUGES[k]} 0" for k in empty]
        notes += [f"{SERVICE_GAUGES[k]} {v:g}" for k, v in constant.items() if k not in shown]
        note = f"\nconstant throughout, not shown: {', '.join(notes)}" if notes else ""
        axes[0].set_title(
            f"{results.scenario['name']}: the service under each policy{note}", fontsize=13
        )
        _legend_below(axes[-1], len(results.policies), y=-0.35)
        return fig


STREAM_GAUGES = {
    "clients_connected": "Connected",
    "clients_reconnecting": "Reconnecting",
    "clients_disconnected": "Given up",
}


def streams(results: Results) -> Any:
    """Clients connected, reconnecting and given up over time, per policy; a state no
    policy ever has is left out, and the title says so."""
    shown, empty = _nonzero(results, tuple(STREAM_GAUGES))
    with plt.rc_context(RC):
        fig, grid_axes = plt.subplots(
            1, len(shown), sharey=True, squeeze=False, figsize=(4.7 * len(shown), 5)
        )
        axes = list(grid_axes.ravel())
        col = colours(p.name for p in results.policies)
        for ax, key in zip(axes, shown, strict=True):
            for p in results.policies:
                ax.plot(
                    p.series["t_s"],
                    p.series[key],
                    color=col[p.name],
                    lw=1.2,
                    label=p.name,
                    gid=f"{key}:{p.name}",
                )
            ax.set_title(STREAM_GAUGES[key])
            ax.set_xlabel("time (s)")
            ax.set_xlim(0, results.scenario["duration_s"])
            _shade_faults(ax, results, labels=ax is axes[0])
        axes[0].set_ylabel("clients (progress streams)")
        _legend_below(axes[len(axes) // 2], len(results.policies), y=-0.16)
        note = f" ({', '.join(STREAM_GAUGES[k] for k in empty)}: none, not shown)" if empty else ""
        fig.suptitle(f"{results.scenario['name']}: progress-stream connection state{note}")
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
        if ax.lines and len(ax.lines) > 6:
            _legend_below(ax, len(ax.lines), y=-0.14)
        elif ax.lines:
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
        heights = [
            np.asarray(
                [
                    float(v)
                    for p in results.policies
                    for v in p.distributions["attempts_histogram"].values()
                ]
            )
        ]
        if spans_decades(heights):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("attempts per job")
        ax.set_ylabel("jobs" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.set_title(f"{results.scenario['name']}: attempts per job")
        if n > 6:
            _legend_below(ax, n, y=-0.14)
        elif ax.patches:
            ax.legend()
        return fig


def _bars_per_policy(
    results: Results, panels: tuple[tuple[str, str, str], ...], suptitle: str
) -> Any:
    """Side-by-side panels of one bar per policy, in its colour: each panel one summary
    figure ``(key, y label, title)``, with 95% CI whiskers when there are replications."""
    replicated = results.record["replications"] > 1
    with plt.rc_context(RC):
        n = len(results.policies)
        fig, axes = plt.subplots(1, len(panels), figsize=(max(12, 0.45 * n * len(panels)), 5))
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
            ax.tick_params(axis="x", rotation=20 if n <= 6 else 75)
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
    """The 2015 post's two views: writes (its "calls", the work) and the time until every
    client is done, per policy."""
    return _bars_per_policy(
        results,
        (
            ("server_writes", "writes (the post's calls)", "work"),
            ("makespan_s", "time until every client is done (s)", "completion time"),
        ),
        f"{results.scenario['name']}: {results.scenario['clients']} clients",
    )


def _has_recovery_window(results: Results) -> bool:
    return bool(results.scenario["faults"]) and any(
        p.summary.get("baseline_offered_per_s") for p in results.policies
    )


def _has_streams(results: Results) -> bool:
    return results.scenario["service_kind"] == "job" and any(
        p.series["clients_connected"].any() for p in results.policies
    )


def left_out(results: Results) -> list[str]:
    """Why each chart that is not drawn for these results is left out."""
    notes = []
    if not _has_recovery_window(results):
        notes.append(
            "The recovery window is not drawn: "
            + (
                "no faults in this scenario."
                if not results.scenario["faults"]
                else "no load before the first fault to recover to."
            )
        )
    if results.scenario["service_kind"] == "job" and not _has_streams(results):
        notes.append("Progress streams are not drawn: no client followed one.")
    return notes


def all_charts(results: Results) -> dict[str, Any]:
    """Every chart that applies to these results, by file stem."""
    kind = results.scenario["service_kind"]
    charts: dict[str, Any] = {"herd": herd(results)}
    if _has_recovery_window(results):
        charts["recovery"] = recovery(results)
    if kind == "occ":
        charts["occ"] = occ(results)
    else:
        charts["goodput"] = goodput(results)
        charts["service"] = service_view(results)
    charts["completion_cdf"] = completion_cdf(results)
    charts["attempts"] = attempts_histogram(results)
    charts["summary"] = success_bars(results)
    if _has_streams(results):
        charts["streams"] = streams(results)
    return charts
