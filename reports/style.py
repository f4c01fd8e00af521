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


def _more_colours() -> tuple[str, ...]:
    """Past Okabe-Ito's eight: matplotlib's tab10, tab20b and tab20c, then the 17
    darker and lighter shades below, every one distinct (a test checks 50 policies)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    out: list[str] = []
    for name in ("tab10", "tab20b", "tab20c"):
        cmap = colormaps[name]
        out += [to_hex(cmap(i)) for i in range(cmap.N)]
    out += [to_hex(c) for c in colormaps["Dark2"].colors]  # type: ignore[attr-defined]
    out += [to_hex(c) for c in colormaps["Set1"].colors]  # type: ignore[attr-defined]
    seen: set[str] = set(c.lower() for c in OKABE_ITO)
    distinct = []
    for c in out:
        if c.lower() not in seen:
            seen.add(c.lower())
            distinct.append(c)
    return tuple(distinct)


def colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per policy, distinct up to 60 policies: its preset colour, else the next
    unused palette colour (Okabe-Ito first, then matplotlib's qualitative maps)."""
    names = list(names)
    out: dict[str, str] = {}
    used = {PRESET_COLOURS[n] for n in names if n in PRESET_COLOURS}
    palette = OKABE_ITO + (_more_colours() if len(names) > len(OKABE_ITO) - 1 else ())
    spare = [c for c in palette if c not in used]
    for n in names:
        if n in PRESET_COLOURS and PRESET_COLOURS[n] not in out.values():
            out[n] = PRESET_COLOURS[n]
        else:
            out[n] = spare.pop(0) if spare else palette[len(out) % len(palette)]
    return out


def save(fig: Any, path_stem: Path) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.svg`` without timestamps; close the figure."""
    png, svg = path_stem.with_suffix(".png"), path_stem.with_suffix(".svg")
    with plt.rc_context(RC):  # the SVG hash salt must be in force while saving
        fig.savefig(png, metadata={"Software": None}, bbox_inches="tight")
        fig.savefig(svg, metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    return png, svg
