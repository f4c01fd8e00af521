"""``herdlab policy plot``: the delay distribution of every retry, policies side by side."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from reports.style import RC, colours


def policy_delays(samples_s: dict[str, np.ndarray], title: str = "") -> Any:
    """``samples_s[name]`` has shape (draws, retries): one box per retry and policy,
    whiskers at the 1st and 99th percentile, delays in milliseconds."""
    with plt.rc_context(RC):
        fig, ax = plt.subplots()
        col = colours(samples_s)
        names = list(samples_s)
        k = len(names)
        width = 0.8 / max(1, k)
        retries = max(s.shape[1] for s in samples_s.values())
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
                box.set(facecolor=col[name], alpha=0.55, edgecolor=col[name], gid=f"box:{name}")
            for part in ("whiskers", "caps", "medians"):
                for line in bp[part]:
                    line.set(color=col[name])
            ax.plot([], [], color=col[name], lw=8, alpha=0.55, label=name)
        ax.set_xticks(range(1, retries + 1))
        ax.set_xlabel("retry number")
        ax.set_ylabel("delay before the retry (ms)")
        ax.set_title(title or "Delay per retry: box = p25-p75, line = median, whiskers = p1-p99")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        return fig
