"""The denoising trajectories across seeds: Fig 7 (their spread) and Fig 8 (their update direction)."""

from __future__ import annotations

import numpy as np

from memharness.report.figures.bands import draw_mean_band
from memharness.report.figures.style import GROUPS, SCORE_CMAP, members, score_colorbar, score_norm


def draw_trace(sf, d: dict) -> None:
    """Fig 7: one line per prompt, coloured by its score, log scale; dotted: the claim's state."""
    from matplotlib.cm import ScalarMappable

    ax = sf.subplots()
    trace, scores = d["trace"], d["scores"]
    steps = np.arange(trace.shape[1])
    colors = ScalarMappable(norm=score_norm(), cmap=SCORE_CMAP).to_rgba(scores)
    for p in np.argsort(scores, kind="stable"):
        ax.plot(steps, np.maximum(trace[p], 1e-12), color=colors[p], linewidth=1.0, alpha=0.9)
    ax.axvline(d["state"], color="black", linestyle=":", linewidth=1)
    ax.annotate(f"after {d['state']} steps", (d["state"], 1), xycoords=("data", "axes fraction"),
                xytext=(3, -12), textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel(r"steps taken (0: $x_T$, " + f"{steps[-1]}: " + r"$x_0$)")
    ax.set_ylabel(r"tr Cov($x_t$) across seeds (log)")
    score_colorbar(sf, [ax], d["scorer"])


def draw_alignment(sf, d: dict) -> None:
    """Fig 8: per group the mean over prompts with its 95 % CI band; shaded: the claim's early steps."""
    ax = sf.subplots()
    cos, memorized = d["cos"], d["memorized"]
    steps = np.arange(1, cos.shape[1] + 1)
    ax.axvspan(0.5, d["early"] + 0.5, color="gray", alpha=0.1, linewidth=0)
    for name, color in GROUPS:
        mask = members(memorized, name)
        if mask.any():
            draw_mean_band(ax, steps, cos[mask], color=color, label=f"{name} ({int(mask.sum())})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"step of $\Delta x_{t-1}$ (shaded: the first " + f"{d['early']})")
    ax.set_ylabel(r"$|\cos(\mathrm{PC1}(\Delta x), x)|$" + f" ({d['pca']})")
    ax.legend(loc="best")
