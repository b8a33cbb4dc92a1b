"""The decomposition x_t = w0·x + wT·x_T (Eq 14): Fig 10 (the weights) and Fig 11 / 16 (their deviation sums)."""

from __future__ import annotations

import numpy as np

from memharness.report.figures.bands import draw_mean_band
from memharness.report.figures.style import GROUPS, THEORY, counts, group_legend, label_outer, members, title

_REF_TEXT = {"x": "on x", "x_0": r"on $x_0$"}


def _weights_panel(ax, panel: dict) -> None:
    sqrt_ab, sqrt_1mab = panel["schedule"]
    steps = np.arange(len(sqrt_ab))
    ax.plot(steps, sqrt_ab, color=THEORY, linestyle="-", linewidth=1.0)
    ax.plot(steps, sqrt_1mab, color=THEORY, linestyle="--", linewidth=1.0)
    for name, color in GROUPS:
        if name in panel:
            w0, wT = panel[name]  # (prompts of the group, states), seeds averaged
            draw_mean_band(ax, steps, w0, color=color, linestyle="-")
            draw_mean_band(ax, steps, wT, color=color, linestyle="--")
    if not any(name in panel for name, _ in GROUPS):
        ax.text(0.5, 0.5, "no prompts", transform=ax.transAxes, ha="center")


def draw_decomposition(sf, d: dict) -> None:
    """Fig 10: rows g, columns the reference (x or x_0); colour: group; solid w0, dashed wT; gray: schedule."""
    from matplotlib.lines import Line2D

    panels = d["panels"]
    scales = sorted({g for g, _ in panels})
    refs = list(dict.fromkeys(r for _, r in panels))
    axes = sf.subplots(len(scales), len(refs), squeeze=False, sharex=True, sharey=True)
    for row, g in enumerate(scales):
        for col, ref in enumerate(refs):
            _weights_panel(axes[row, col], panels[(g, ref)])
            title(axes[row, col], row * len(refs) + col, f"{_REF_TEXT.get(ref, ref)}, g = {g:g}")
    label_outer(axes, "denoising steps taken", "weight")
    styles = [Line2D([], [], color="black", linestyle="-", label=r"solid: $w_0^{(t)}$"),
              Line2D([], [], color="black", linestyle="--", label=r"dashed: $w_T^{(t)}$"),
              Line2D([], [], color=THEORY, linestyle="-", label=r"gray: $\sqrt{\bar\alpha_t}$, "
                                                               r"$\sqrt{1-\bar\alpha_t}$")]
    group_legend(sf, d["n"], extra=styles, ncols=3)


_SEVERITY = (
    (r"excess of x: $\sum_t (E[w_0] - \sqrt{\bar\alpha_t})$", "excess of x"),
    (r"suppression of $x_T$: $-\sum_t (E[w_T] - \sqrt{1-\bar\alpha_t})$", r"suppression of $x_T$"),
    (r"overall deviation: $\sum_t \delta^{(t)}$", "overall deviation"),
)


def draw_severity(sf, d: dict) -> None:
    """Fig 11: the score against each deviation sum, one point per prompt coloured by its group."""
    axes = sf.subplots(1, 3, squeeze=False, sharey=True)[0]
    memorized = d["memorized"]
    for i, (ax, values, r, (long, short)) in enumerate(zip(axes, d["sums"], d["r"], _SEVERITY, strict=True)):
        for name, color in GROUPS:
            mask = members(memorized, name)
            ax.scatter(values[mask], d["scores"][mask], color=color, s=16, alpha=0.8)
        ax.axhline(0.75, color="black", linestyle=":", linewidth=0.8)
        title(ax, i, f"{short}, r = {r:.3f}" if np.isfinite(r) else f"{short}, r undefined")
        ax.set_xlabel(long)
    axes[0].set_ylabel(f"memorization score ({d['scorer']})")
    group_legend(sf, counts(memorized))
