"""Fig 1 (and Fig 15 under DDPM): ‖x̂0(t) − x‖² against cos(x̂0(t), x), coloured by the score."""

from __future__ import annotations

import numpy as np

from memharness.report.figures.style import SCORE_CMAP, label_outer, score_colorbar, score_norm, title


def draw_x0(sf, d: dict) -> None:
    """Rows: guidance scales; columns: the steps taken. One point per generation (prompt × seed)."""
    from matplotlib import ticker

    panels = d["panels"]
    scales = list(panels)
    n_cols = len(panels[scales[0]])
    axes = sf.subplots(len(scales), n_cols, squeeze=False, sharey=True)
    order = np.argsort(d["scores"], kind="stable")  # high scores drawn last, on top
    positive = np.concatenate([e[e > 0].ravel() for g in scales for _, e, _ in panels[g]] + [np.array([1.0])])
    floor = float(positive.min()) / 10.0  # exact zeros (‖x̂0 − x‖² = 0) drawn at the left edge
    for row, g in enumerate(scales):
        for col, (step, err, cos) in enumerate(panels[g]):
            ax = axes[row, col]
            colors = np.repeat(d["scores"][order], err.shape[1])
            ax.scatter(np.maximum(err[order].ravel(), floor), cos[order].ravel(), c=colors, cmap=SCORE_CMAP,
                       norm=score_norm(), s=9, linewidths=0)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # minor labels collide on narrow decades
            title(ax, row * n_cols + col, f"g = {g:g}, after {step} step{'s' if step > 1 else ''}")
    label_outer(axes, r"$\|\hat{x}_0^{(t)} - x\|_2^2$ (log)", r"$\cos(\hat{x}_0^{(t)}, x)$")
    score_colorbar(sf, axes, d["scorer"])
