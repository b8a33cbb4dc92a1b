"""Memorization scores: Fig 3 (with against without guidance) and the dose response (against duplication)."""

from __future__ import annotations

import numpy as np

from memharness.report.figures.style import GROUPS, THEORY, counts, group_legend, members, title


def draw_scores(sf, d: dict) -> None:
    """Fig 3: one point per prompt, coloured by its group; dashed: y = x, dotted: the 0.75 threshold."""
    ax = sf.subplots()
    before, after, memorized = d["before"], d["after"], d["memorized"]
    low = min(0.0, float(before.min()), float(after.min()))
    high = max(1.0, float(before.max()), float(after.max()))
    ax.plot([low, high], [low, high], color=THEORY, linestyle="--", linewidth=1, label="y = x")
    ax.axhline(0.75, color="black", linestyle=":", linewidth=0.8)
    ax.axvline(0.75, color="black", linestyle=":", linewidth=0.8)
    for name, color in GROUPS:
        mask = members(memorized, name)
        ax.scatter(before[mask], after[mask], color=color, s=16, alpha=0.8, label=f"{name} ({int(mask.sum())})")
    pad = 0.03 * (high - low)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"score without guidance (g = {d['low']:g})")
    ax.set_ylabel(f"score with guidance (g = {d['high']:g})")
    ax.legend(loc="lower right")


# g is a marker and a line style here: colour stays the prompt's group
_G_STYLE = {"low": ("o", "none", "--"), "high": ("^", None, "-")}


def _dose_panel(ax, d: dict, what: str) -> None:
    counts_, memorized = d["counts"], d["memorized"]
    has = np.isfinite(counts_)
    levels = np.unique(counts_[has])
    for which in ("low", "high"):
        g = d[which]
        values = d[what][g]
        marker, face, line = _G_STYLE[which]
        for name, color in GROUPS:
            mask = has & members(memorized, name)
            ax.scatter(counts_[mask], values[mask], marker=marker, s=22, zorder=3, edgecolor=color,
                       facecolor=face or color, alpha=0.8)
        # the points show the spread: a CI over the few prompts of one count would only hide them
        means = [values[has & (counts_ == n)].mean() for n in levels]
        ax.plot(levels, means, color="black", linestyle=line, linewidth=1.2,
                label=f"g = {g:g}: Spearman ρ = {d['rho'][(what.rstrip('s'), g)]:.2f}")
        if (~has).any():
            ax.axhline(values[~has].mean(), color=THEORY, linestyle=line, linewidth=1.0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [f"{n:g}" for n in levels])
    ax.minorticks_off()
    ax.set_xlabel("duplication count of the training image")
    ax.legend(loc="upper left", fontsize=7)


def draw_dose(sf, d: dict) -> None:
    """Score and first-step k against the duplication count; colour: group, marker and line: g."""
    from matplotlib.lines import Line2D

    axes = sf.subplots(1, 2, squeeze=False)[0]
    _dose_panel(axes[0], d, "scores")
    _dose_panel(axes[1], d, "k")
    axes[0].axhline(0.75, color="black", linestyle=":", linewidth=0.8)
    axes[0].set_ylabel(f"memorization score ({d['scorer']})")
    axes[1].set_ylabel(r"$k = \|\hat{x}_0^{(T)}\|_2 / \|x\|_2$ at t = T")
    title(axes[0], 0, "score against duplication")
    title(axes[1], 1, "first-step k against duplication")
    extra = [Line2D([], [], color="black", marker="o", markerfacecolor="none", linestyle="--",
                    label=f"g = {d['low']:g}"),
             Line2D([], [], color="black", marker="^", linestyle="-", label=f"g = {d['high']:g}"),
             Line2D([], [], color=THEORY, linestyle="--", label="gray: mean without a count")]
    group_legend(sf, counts(memorized=d["memorized"]), extra=extra, ncols=3)
