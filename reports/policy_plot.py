"""``herdlab policy plot``: the delay distribution of every retry and every reconnect,
policies side by side: retries of the create request on the left, reconnects of the
progress stream on the right."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from reports.charts import spans_decades
from reports.style import RC, colours


def _boxes(
    ax: Any, samples_s: dict[str, np.ndarray], col: dict[str, str], gid: str, what: str
) -> None:
    """One box per retry (or reconnect) and policy; a policy with none gets no box."""
    names = [n for n, s in samples_s.items() if s.shape[1] > 0]
    k = len(names)
    width = 0.8 / max(1, k)
    count = max((samples_s[n].shape[1] for n in names), default=0)
    for i, name in enumerate(names):
        data = samples_s[name] * 1000.0
        positions = np.arange(1, data.shape[1] + 1) + (i - (k - 1) / 2) * width
        bp = ax.boxplot(
            [data[:, n] for n in range(data.shape[1])],
            positions=positions,
            widths=width * 0.9,
            whis=(1, 99),
            showfliers=False,
            patch_artist=True,
            manage_ticks=False,
        )
        for box in bp["boxes"]:
            box.set(facecolor=col[name], alpha=0.55, edgecolor=col[name], gid=f"{gid}:{name}")
        for part in ("whiskers", "caps", "medians"):
            for line in bp[part]:
                line.set(color=col[name])
    ax.set_xticks(range(1, count + 1))
    ax.set_xlabel(f"{what} number")
    medians = [np.median(s, axis=0) * 1000.0 for s in samples_s.values() if s.shape[1]]
    if medians and spans_decades(medians):  # e.g. 1 s to 2 minutes of gRPC reconnects
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    plural = "retries" if what == "retry" else f"{what}s"
    if not names:
        ax.text(0.5, 0.5, f"no {plural}", ha="center", va="center", transform=ax.transAxes)
    without = [n for n, s in samples_s.items() if s.shape[1] == 0]
    if without and names:
        ax.text(
            0.99,
            0.98,
            f"no {plural}: {', '.join(without)}",
            ha="right",
            va="top",
            transform=ax.transAxes,
            fontsize=10,
        )


def policy_delays(
    samples_s: dict[str, np.ndarray],
    title: str = "",
    reconnect_s: dict[str, np.ndarray] | None = None,
) -> Any:
    """``samples_s[name]`` has shape (draws, retries): one box per retry and policy,
    whiskers at the 1st and 99th percentile, delays in milliseconds. With
    ``reconnect_s`` (same shape, reconnects), a second panel beside it shows the
    stream's reconnect delays, on its own delay axis (a reconnect schedule may run to
    minutes where retries stop at seconds)."""
    with plt.rc_context(RC):
        panels = 2 if reconnect_s is not None else 1
        fig, grid = plt.subplots(1, panels, squeeze=False, figsize=(11 if panels == 1 else 15, 5.5))
        axes = list(grid.ravel())
        col = colours(samples_s)
        _boxes(axes[0], samples_s, col, "box", "retry")
        axes[0].set_xlabel("retry number")
        axes[0].set_ylabel("delay before it (ms)")
        axes[0].set_title("create request: retries" if panels == 2 else "")
        if reconnect_s is not None:
            _boxes(axes[1], reconnect_s, col, "reconnect", "reconnect")
            axes[1].set_title("progress stream: reconnects")
            axes[1].set_ylabel("delay before it (ms)")
        for name in samples_s:
            axes[0].plot([], [], color=col[name], lw=8, alpha=0.55, label=name)
        axes[0].legend(loc="upper left")
        fig.suptitle(
            title or "Delay per retry: box = p25-p75, line = median, whiskers = p1-p99",
            fontsize=14,
        )
        return fig
