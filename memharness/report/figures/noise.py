"""The noise predictions at t = T: Fig 5 (their cosines) and Fig 13 (their residual magnitudes)."""

from __future__ import annotations

import numpy as np

from memharness.report.figures.style import GROUPS, counts, group_legend, per_generation, title

_FIG5_LABELS = (r"$\cos(\epsilon_u, x_T)$", r"$\cos(\epsilon_c, x_T)$",
                r"$\cos(\epsilon_u - x_T, -x)$", r"$\cos(\epsilon_c - x_T, -x)$")


def _boxes(ax, groups: dict[str, np.ndarray]) -> None:
    data = [groups[name] for name, _ in GROUPS]
    kept = [i for i, d in enumerate(data) if d.size]
    parts = ax.boxplot([data[i] for i in kept], positions=[i + 1 for i in kept], widths=0.55, patch_artist=True,
                       showfliers=True, flierprops={"markersize": 3})
    for patch, i in zip(parts["boxes"], kept, strict=True):
        color = GROUPS[i][1]
        patch.set_facecolor(color)
        patch.set_alpha(0.55)
        patch.set_edgecolor(color)
    for median in parts["medians"]:
        median.set_color("black")
    ax.set_xticks([1, 2], [name for name, _ in GROUPS])
    ax.set_xlim(0.4, 2.6)
    ax.ticklabel_format(axis="y", useOffset=False)


def _hist(ax, groups: dict[str, np.ndarray], bins: np.ndarray) -> None:
    for name, color in GROUPS:
        values = groups[name]
        if values.size:
            ax.hist(values, bins=bins, color=color, alpha=0.5, label=name, density=True)
            ax.hist(values, bins=bins, color=color, histtype="step", density=True)
    ax.set_ylabel("density")


def _shared_bins(*arrays: np.ndarray, n: int = 30) -> np.ndarray:
    values = np.concatenate([a.ravel() for a in arrays if a.size])
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1e-12 + abs(low) * 1e-6
    return np.linspace(min(low, 0.0), high * 1.02, n + 1)


def draw_noise_cosines(sf, d: dict) -> None:
    """Fig 5 (a–d) as a 2 × 2 block of box plots, one box per group."""
    axes = sf.subplots(2, 2, squeeze=False).ravel()
    for i, (ax, values, label) in enumerate(zip(axes, d["panels"], _FIG5_LABELS, strict=True)):
        _boxes(ax, per_generation(values, d["memorized"]))
        title(ax, i, label)
        ax.set_ylabel("cosine at t = T" if i % 2 == 0 else "")
    for ax in axes[2:]:
        ax.axhline(0.0, color="gray", linewidth=0.8, linestyle="--")
    group_legend(sf, counts(d["memorized"]))


def draw_residuals(sf, d: dict) -> None:
    """Fig 13 (a, b) as histograms per group on shared bins, and the Eq 11 ratio (c)."""
    axes = sf.subplots(1, 3, squeeze=False)[0]
    memorized = d["memorized"]
    uncond, cond = per_generation(d["uncond"], memorized), per_generation(d["cond"], memorized)
    bins = _shared_bins(d["uncond"], d["cond"])
    for i, (ax, groups, text) in enumerate(((axes[0], uncond, r"$\|\epsilon_u - x_T\|_2^2$ (uncond.)"),
                                            (axes[1], cond, r"$\|\epsilon_c - x_T\|_2^2$ (cond.)"))):
        _hist(ax, groups, bins)
        title(ax, i, text)
        ax.set_xlabel("squared magnitude at t = T")
    axes[1].sharex(axes[0])
    ratio = {"normal": d["ratio"][~memorized], "memorized": d["ratio"][memorized]}
    tol = d["tolerance"]
    ax = axes[2]
    ax.axvspan(1 - tol, 1 + tol, color="gray", alpha=0.12, linewidth=0)
    _hist(ax, ratio, _shared_bins(d["ratio"], np.array([1 + tol])))
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.2)
    title(ax, 2, r"Eq 11: $\|\epsilon_c - \epsilon_u\|_2 / (s\|x\|_2)$")
    ax.set_xlabel(f"ratio per prompt, s = {d['s']:.3g}\n(shaded: 1 ± {tol:g})")
    group_legend(sf, counts(memorized))
