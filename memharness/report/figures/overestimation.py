"""Overestimation k = ‖x̂0(t)‖/‖x‖: Fig 12 (over the steps) and Eq 13 (against the guidance scale)."""

from __future__ import annotations

import numpy as np

from memharness.report.figures.bands import draw_mean_band
from memharness.report.figures.style import GROUPS, counts, group_legend, members, title


def draw_k(sf, d: dict) -> None:
    """Fig 12: per g and group, the distribution of k over all generations per step (a distribution, no CI)."""
    from matplotlib.lines import Line2D

    ks, memorized = d["k"], d["memorized"]
    axes = sf.subplots(1, len(ks), squeeze=False, sharey=True)[0]
    for i, (ax, (g, k)) in enumerate(zip(axes, ks.items(), strict=True)):
        steps = np.arange(1, k.shape[-1] + 1)
        for name, color in GROUPS:
            mask = members(memorized, name)
            if not mask.any():
                continue
            values = k[mask].reshape(-1, k.shape[-1])  # generations × steps
            p5, p25, p50, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95], axis=0)
            ax.fill_betweenx(steps, p5, p95, color=color, alpha=0.15, linewidth=0)
            ax.fill_betweenx(steps, p25, p75, color=color, alpha=0.35, linewidth=0)
            ax.plot(p50, steps, color=color, linewidth=1.8)
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1.2)
        ax.axhspan(0.5, d["early"] + 0.5, color="gray", alpha=0.08, linewidth=0)
        title(ax, i, f"g = {g:g}")
        ax.set_xlabel(r"$k = \|\hat{x}_0^{(t)}\|_2 / \|x\|_2$")
    axes[0].set_ylabel("denoising step (1: t = T)")
    axes[0].invert_yaxis()
    extra = [Line2D([], [], color="black", linestyle="--", label="k = 1")]
    group_legend(sf, counts(memorized), extra=extra)


def draw_k_against_g(sf, d: dict) -> None:
    """Eq 13: thin lines one per prompt, thick the group mean with its 95 % CI band; dashed: k = g."""
    ax = sf.subplots()
    scales, k, memorized = np.asarray(d["scales"], dtype=float), d["k"], d["memorized"]
    ax.plot(scales, scales, color="black", linestyle="--", linewidth=1.2, label="k = g (Eq 13)")
    for name, color in GROUPS:
        mask = members(memorized, name)
        if not mask.any():
            continue
        for row in k[mask]:
            ax.plot(scales, row, color=color, alpha=0.25, linewidth=0.8)
        draw_mean_band(ax, scales, k[mask], color=color, label=f"{name} ({int(mask.sum())})")
    ax.set_xlabel("guidance scale g")
    ax.set_ylabel(r"$k = \|\hat{x}_0^{(T)}\|_2 / \|x\|_2$ at t = T")
    ax.legend(loc="upper left")
