"""What every figure shares: sizes, fonts, the two colour meanings, and small drawing helpers.

Colour means one thing in a figure, and the same thing in every figure: either the prompt's
group (memorized red, normal blue, as the paper) or its memorization score (viridis, where the
paper's memorized points are yellow). Anything else a figure distinguishes (w0 against wT,
one guidance scale against another) is a line style or a marker, said in its caption.

Sizes are fixed in inches and fonts in points, so a panel has the same pixels whatever the
number of models: :mod:`memharness.report.figures.render` wraps the models' panel blocks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

DPI = 100
PANEL_W, PANEL_H = 3.5, 2.9  # inches per panel: 350 × 290 px at DPI
MAX_PANELS_PER_ROW = 3  # blocks of models wrap so a row never holds more
MEMORIZED = "#d62728"  # red, as the paper's memorized prompts
NORMAL = "#1f77b4"  # blue, as the paper's normal prompts
THEORY = "0.45"  # gray: the schedule, the diagonal, k = 1 (no group)
SCORE_CMAP = "viridis"
GROUPS = (("normal", NORMAL), ("memorized", MEMORIZED))
GROUP_COLOURS = "colour: the prompt's group, memorized (score ≥ 0.75) red, normal blue."
SCORE_COLOURS = ("colour: the prompt's memorization score (viridis; memorized prompts, ≥ 0.75 at the colour "
                 "bar's black line, are green-yellow to yellow).")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "memharness",
}


def score_norm():
    from matplotlib.colors import Normalize

    return Normalize(vmin=0.0, vmax=1.0, clip=True)


def score_colorbar(sf, axes, scorer: str) -> None:
    from matplotlib.cm import ScalarMappable

    bar = sf.colorbar(ScalarMappable(norm=score_norm(), cmap=SCORE_CMAP), ax=axes, shrink=0.85, pad=0.02)
    bar.set_label(f"memorization score ({scorer})")  # memorized ≥ 0.75: the black line
    bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])
    bar.ax.axhline(0.75, color="black", linewidth=1.5)


def mathtext(text: str) -> str:
    """Plain-text symbols of the captions (x_t, x_T, x_0) as matplotlib mathtext."""
    return re.sub(r"\bx_(t|T|0)\b", r"$x_\1$", text)


def title(ax, index: int, text: str) -> None:
    ax.set_title(f"({LETTERS[index]}) {text}")


def members(memorized: np.ndarray, name: str) -> np.ndarray:
    return memorized if name == "memorized" else ~memorized


def group_legend(sf, n: dict[str, int] | None = None, *, extra: Sequence = (), ncols: int | None = None) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, linewidth=2,
                      label=name + (f" ({n[name]})" if n and name in n else "")) for name, color in GROUPS]
    handles += list(extra)
    sf.legend(handles=handles, loc="outside lower center", ncols=ncols or len(handles), frameon=False)


def counts(memorized: np.ndarray) -> dict[str, int]:
    return {"normal": int((~memorized).sum()), "memorized": int(memorized.sum())}


def per_generation(values: np.ndarray, memorized: np.ndarray) -> dict[str, np.ndarray]:
    """(P, N) values → flat arrays of the generations of each group."""
    return {"normal": values[~memorized].ravel(), "memorized": values[memorized].ravel()}


def label_outer(axes: np.ndarray, xlabel: str | None, ylabel: str | None) -> None:
    """Axis labels on the bottom row and the left column of a block only."""
    rows, cols = axes.shape
    for r in range(rows):
        for c in range(cols):
            if xlabel is not None and r == rows - 1:
                axes[r, c].set_xlabel(xlabel)
            if ylabel is not None and c == 0:
                axes[r, c].set_ylabel(ylabel)
