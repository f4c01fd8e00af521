"""One style for every chart: a colour-blind-safe palette (Okabe-Ito) with a fixed colour
per policy, slide-sized fonts, and deterministic files (fixed SVG hash salt, no dates)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
)
# Presets keep their colour in every chart and every report.
PRESET_COLOURS = {
    "seed-default": "#0072B2",
    "exponential": "#D55E00",
    "full-jitter": "#009E73",
    "decorrelated": "#CC79A7",
    "equal-jitter": "#E69F00",
    "decorrelated-v2": "#56B4E9",
    "no-retry": "#000000",
    "sre-budget": "#56B4E9",
    "grpc-default": "#E69F00",
    "immediate": "#F0E442",
    "aws-standard": "#000000",
}
FAULT_SHADE = "#999999"
CAPACITY_COLOUR = "#444444"

RC: Any = {
    "figure.figsize": (11, 5.5),
    "figure.dpi": 100,
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.labelsize": 13,
    "legend.fontsize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "herdlab",
    "svg.fonttype": "none",
    "path.simplify": True,
}


def colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per policy: its preset colour, else the next unused palette colour."""
    names = list(names)
    out: dict[str, str] = {}
    used = {PRESET_COLOURS[n] for n in names if n in PRESET_COLOURS}
    spare = [c for c in OKABE_ITO if c not in used]
    for n in names:
        if n in PRESET_COLOURS and PRESET_COLOURS[n] not in out.values():
            out[n] = PRESET_COLOURS[n]
        else:
            out[n] = spare.pop(0) if spare else OKABE_ITO[len(out) % len(OKABE_ITO)]
    return out


def save(fig: Any, path_stem: Path) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.svg`` without timestamps; close the figure."""
    png, svg = path_stem.with_suffix(".png"), path_stem.with_suffix(".svg")
    with plt.rc_context(RC):  # the SVG hash salt must be in force while saving
        fig.savefig(png, metadata={"Software": None}, bbox_inches="tight")
        fig.savefig(svg, metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    return png, svg
