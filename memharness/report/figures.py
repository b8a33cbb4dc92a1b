"""The paper's figures, redrawn with matplotlib from fixtures (``memharness report``).

One :class:`FigureDef` per figure: which claims it illustrates, what the paper's caption says,
what the claim needs to see in it, where its numbers come from (:mod:`memharness.report.series`)
and how to draw one model's panels. :func:`render_figure` draws every model side by side,
one column (a matplotlib sub-figure) per model, and returns PNG bytes.

The output is deterministic: matplotlib's default style (whatever the user's matplotlibrc),
a fixed DPI, the Agg renderer through ``Figure`` (pyplot's global state is never touched), and
no ``Software`` entry in the PNG metadata. The same matplotlib and fixtures give the same bytes.
Colours follow the paper: memorized red, normal blue; points and lines coloured by the
memorization score use viridis, where the paper's memorized points are yellow.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memharness.errors import MemharnessError
from memharness.report import series
from memharness.report.series import Source, Unavailable

DPI = 100
MEMORIZED = "#d62728"  # red, as the paper's memorized prompts
NORMAL = "#1f77b4"  # blue, as the paper's normal prompts
PURPLE = "#9467bd"  # Fig 11c
SCORE_CMAP = "viridis"
GROUPS = (("normal", NORMAL), ("memorized", MEMORIZED))
LETTERS = "abcdefghijklmnopqrstuvwxyz"
_STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "memharness",
}


@dataclass(frozen=True)
class FigureDef:
    key: str  # file stem under figures/
    label: str  # "Fig 1"
    title: str  # the caption's bold title in the paper
    claims: tuple[str, ...]  # the claims this figure shows
    paper: str  # what the paper's figure plots
    look_for: str  # what the claims need to see in it
    drawn: str  # how it is drawn here, from which data
    data: Callable[[Source], dict]
    draw: Callable[[Any, dict], None]
    size: tuple[float, float]  # inches per model
    optional: bool = False  # left out of a report where no model has its data (not one of the paper's figures)


@dataclass(frozen=True)
class Rendered:
    figure: FigureDef
    png: bytes | None  # None: no model had the data
    missing: dict[str, str]  # model → why it has no panels


# --------------------------------------------------------------------------- helpers
def _score_norm():
    from matplotlib.colors import Normalize

    return Normalize(vmin=0.0, vmax=1.0, clip=True)


def _score_colorbar(sf, axes, scorer: str) -> None:
    from matplotlib.cm import ScalarMappable

    bar = sf.colorbar(ScalarMappable(norm=_score_norm(), cmap=SCORE_CMAP), ax=axes, shrink=0.85, pad=0.02)
    bar.set_label(f"memorization score ({scorer}); memorized ≥ 0.75")
    bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])
    bar.ax.axhline(0.75, color="black", linewidth=1.5)


def _mathtext(text: str) -> str:
    """Plain-text symbols of the captions (x_t, x_T, x_0) as matplotlib mathtext."""
    return re.sub(r"\bx_(t|T|0)\b", r"$x_\1$", text)


def _title(ax, index: int, text: str) -> None:
    ax.set_title(f"({LETTERS[index]}) {text}")


def _group_legend(sf, n: dict[str, int] | None = None, *, extra: Sequence = ()) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, linewidth=2,
                      label=name + (f" ({n[name]})" if n and name in n else "")) for name, color in GROUPS]
    sf.legend(handles=[*handles, *extra], loc="outside lower center", ncols=len(handles) + len(extra), frameon=False)


def _counts(memorized: np.ndarray) -> dict[str, int]:
    return {"normal": int((~memorized).sum()), "memorized": int(memorized.sum())}


def _per_generation(values: np.ndarray, memorized: np.ndarray) -> dict[str, np.ndarray]:
    """(P, N) values → flat arrays of the generations of each group."""
    return {"normal": values[~memorized].ravel(), "memorized": values[memorized].ravel()}


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


# --------------------------------------------------------------------------- Fig 1 / Fig 15
def _draw_x0(sf, d: dict) -> None:
    panels = d["panels"]
    scales = list(panels)
    n_cols = len(panels[scales[0]])
    axes = sf.subplots(len(scales), n_cols, squeeze=False, sharey=True)
    from matplotlib import ticker

    order = np.argsort(d["scores"], kind="stable")  # high scores drawn last, on top
    positive = np.concatenate([e[e > 0].ravel() for g in scales for _, e, _ in panels[g]] + [np.array([1.0])])
    floor = float(positive.min()) / 10.0  # exact zeros (‖x̂0 − x‖² = 0) drawn at the left edge
    norm = _score_norm()
    for row, g in enumerate(scales):
        for col, (step, err, cos) in enumerate(panels[g]):
            ax = axes[row, col]
            colors = np.repeat(d["scores"][order], err.shape[1])
            ax.scatter(np.maximum(err[order].ravel(), floor), cos[order].ravel(), c=colors, cmap=SCORE_CMAP,
                       norm=norm, s=9, linewidths=0)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # minor labels collide on narrow decades
            _title(ax, row * n_cols + col, f"g = {g:g}, after {step} step{'s' if step > 1 else ''}")
            ax.set_xlabel(r"$\|\hat{x}_0^{(t)} - x\|_2^2$ (log)")
            if col == 0:
                ax.set_ylabel(r"$\cos(\hat{x}_0^{(t)}, x)$")
    _score_colorbar(sf, axes, d["scorer"])


# --------------------------------------------------------------------------- Fig 3
def _draw_scores(sf, d: dict) -> None:
    ax = sf.subplots()
    before, after, memorized = d["before"], d["after"], d["memorized"]
    low = min(0.0, float(before.min()), float(after.min()))
    high = max(1.0, float(before.max()), float(after.max()))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="y = x")
    ax.axhline(0.75, color="black", linestyle=":", linewidth=0.8)
    ax.axvline(0.75, color="black", linestyle=":", linewidth=0.8)
    for name, color in GROUPS:
        members = memorized if name == "memorized" else ~memorized
        ax.scatter(before[members], after[members], color=color, s=16, alpha=0.8,
                   label=f"{name} ({int(members.sum())})")
    pad = 0.03 * (high - low)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"score without guidance (g = {d['low']:g})")
    ax.set_ylabel(f"score with guidance (g = {d['high']:g})")
    ax.legend(loc="lower right")


# --------------------------------------------------------------------------- Fig 5
_FIG5_LABELS = (r"$\cos(\epsilon_u, x_T)$", r"$\cos(\epsilon_c, x_T)$",
                r"$\cos(\epsilon_u - x_T, -x)$", r"$\cos(\epsilon_c - x_T, -x)$")


def _draw_noise_cosines(sf, d: dict) -> None:
    axes = sf.subplots(1, 4, squeeze=False)[0]
    for i, (ax, values, label) in enumerate(zip(axes, d["panels"], _FIG5_LABELS, strict=True)):
        _boxes(ax, _per_generation(values, d["memorized"]))
        _title(ax, i, label)
        ax.set_ylabel("cosine similarity at t = T" if i == 0 else "")
    for ax in axes[2:]:
        ax.axhline(0.0, color="gray", linewidth=0.8, linestyle="--")
    _group_legend(sf, _counts(d["memorized"]))


# --------------------------------------------------------------------------- Fig 7
def _draw_trace(sf, d: dict) -> None:
    from matplotlib.cm import ScalarMappable

    ax = sf.subplots()
    trace, scores = d["trace"], d["scores"]
    steps = np.arange(trace.shape[1])
    colors = ScalarMappable(norm=_score_norm(), cmap=SCORE_CMAP).to_rgba(scores)
    for p in np.argsort(scores, kind="stable"):
        ax.plot(steps, np.maximum(trace[p], 1e-12), color=colors[p], linewidth=1.0, alpha=0.9)
    ax.axvline(d["state"], color="black", linestyle=":", linewidth=1)
    ax.annotate(f"after {d['state']} steps", (d["state"], 1), xycoords=("data", "axes fraction"),
                xytext=(3, -12), textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel(r"denoising steps taken (0: $x_T$, " + f"{steps[-1]}: " + r"$x_0$)")
    ax.set_ylabel(r"tr Cov($x_t$) across seeds (log)")
    _score_colorbar(sf, [ax], d["scorer"])


# --------------------------------------------------------------------------- Fig 8
def _band(ax, x, values: np.ndarray, color: str, label: str) -> None:
    ax.plot(x, values.mean(0), color=color, linewidth=2, label=label)
    if len(values) > 1:
        low, high = np.percentile(values, [25, 75], axis=0)
        ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)


def _draw_alignment(sf, d: dict) -> None:
    ax = sf.subplots()
    cos, memorized = d["cos"], d["memorized"]
    steps = np.arange(1, cos.shape[1] + 1)
    ax.axvspan(0.5, d["early"] + 0.5, color="gray", alpha=0.1, linewidth=0)
    for name, color in GROUPS:
        members = memorized if name == "memorized" else ~memorized
        if members.any():
            _band(ax, steps, cos[members], color, f"{name} ({int(members.sum())})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"denoising step of $\Delta x_{t-1} = x_{t-1} - x_t$ (shaded: the first "
                  f"{d['early']})")
    ax.set_ylabel(r"$|\cos(\mathrm{PC1}(\Delta x), x)|$" + f" ({d['pca']} PCA)")
    ax.legend(loc="best")


# --------------------------------------------------------------------------- Fig 10
_REF_TEXT = {"x": "on x", "x_0": r"on $x_0$"}


def _draw_decomposition(sf, d: dict) -> None:
    from matplotlib.lines import Line2D

    panels = d["panels"]
    scales = sorted({g for g, _ in panels})
    refs = list(dict.fromkeys(r for _, r in panels))
    cols = [(ref, name) for ref in refs for name, _ in GROUPS]
    axes = sf.subplots(len(scales), len(cols), squeeze=False, sharex=True, sharey=True)
    for row, g in enumerate(scales):
        for col, (ref, name) in enumerate(cols):
            ax = axes[row, col]
            panel = panels[(g, ref)]
            sqrt_ab, sqrt_1mab = panel["schedule"]
            steps = np.arange(len(sqrt_ab))
            ax.plot(steps, sqrt_ab, color=NORMAL, linestyle="--", linewidth=1.2)
            ax.plot(steps, sqrt_1mab, color=MEMORIZED, linestyle="--", linewidth=1.2)
            if name in panel:
                w0, wT = panel[name]
                ax.plot(steps, w0, color=NORMAL, linewidth=2)
                ax.plot(steps, wT, color=MEMORIZED, linewidth=2)
            else:
                ax.text(0.5, 0.5, f"no {name} prompts", transform=ax.transAxes, ha="center")
            _title(ax, row * len(cols) + col, f"{name}, {_REF_TEXT.get(ref, ref)}, g = {g:g}")
            if row == len(scales) - 1:
                ax.set_xlabel("denoising steps taken")
            if col == 0:
                ax.set_ylabel("weight")
    handles = [
        Line2D([], [], color=NORMAL, linewidth=2, label=r"$w_0^{(t)}$"),
        Line2D([], [], color=MEMORIZED, linewidth=2, label=r"$w_T^{(t)}$"),
        Line2D([], [], color=NORMAL, linestyle="--", label=r"$\sqrt{\bar\alpha_t}$"),
        Line2D([], [], color=MEMORIZED, linestyle="--", label=r"$\sqrt{1-\bar\alpha_t}$"),
    ]
    n = d["n"]
    sf.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False,
              title=f"{n['normal']} normal, {n['memorized']} memorized prompts; mean over prompts and seeds")


# --------------------------------------------------------------------------- Fig 11 / Fig 16
_SEVERITY = (
    (NORMAL, r"excess of x: $\sum_t (E[w_0^{(t)}] - \sqrt{\bar\alpha_t})$"),
    (MEMORIZED, r"suppression of $x_T$: $-\sum_t (E[w_T^{(t)}] - \sqrt{1-\bar\alpha_t})$"),
    (PURPLE, r"overall deviation: $\sum_t \delta^{(t)}$"),
)


def _draw_severity(sf, d: dict) -> None:
    axes = sf.subplots(1, 3, squeeze=False, sharey=True)[0]
    for i, (ax, values, r, (color, label)) in enumerate(zip(axes, d["sums"], d["r"], _SEVERITY, strict=True)):
        ax.scatter(values, d["scores"], color=color, s=16, alpha=0.8)
        ax.axhline(0.75, color="black", linestyle=":", linewidth=0.8)
        ax.set_title(f"({LETTERS[i]}) Pearson r = {r:.4f}" if np.isfinite(r)
                     else f"({LETTERS[i]}) Pearson r undefined (a constant)")
        ax.set_xlabel(label)
        if i == 0:
            ax.set_ylabel(f"memorization score ({d['scorer']})")


# --------------------------------------------------------------------------- Fig 12
def _draw_k(sf, d: dict) -> None:
    from matplotlib.lines import Line2D

    ks, memorized = d["k"], d["memorized"]
    axes = sf.subplots(1, len(ks), squeeze=False, sharey=True)[0]
    for i, (ax, (g, k)) in enumerate(zip(axes, ks.items(), strict=True)):
        steps = np.arange(1, k.shape[-1] + 1)
        for name, color in GROUPS:
            members = memorized if name == "memorized" else ~memorized
            if not members.any():
                continue
            values = k[members].reshape(-1, k.shape[-1])  # generations × steps
            p5, p25, p50, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95], axis=0)
            ax.fill_betweenx(steps, p5, p95, color=color, alpha=0.15, linewidth=0)
            ax.fill_betweenx(steps, p25, p75, color=color, alpha=0.35, linewidth=0)
            ax.plot(p50, steps, color=color, linewidth=1.8)
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1.2)
        ax.axhspan(0.5, d["early"] + 0.5, color="gray", alpha=0.08, linewidth=0)
        _title(ax, i, f"g = {g:g}")
        ax.set_xlabel(r"$k = \|\hat{x}_0^{(t)}\|_2 / \|x\|_2$")
        if i == 0:
            ax.set_ylabel("denoising step (1: t = T)")
    axes[0].invert_yaxis()
    extra = [Line2D([], [], color="black", linestyle="--", label="k = 1")]
    _group_legend(sf, _counts(memorized), extra=extra)


# --------------------------------------------------------------------------- Eq 13
def _draw_k_against_g(sf, d: dict) -> None:
    ax = sf.subplots()
    scales, k, memorized = d["scales"], d["k"], d["memorized"]
    ax.plot(scales, scales, color="black", linestyle="--", linewidth=1.2, label="k = g (Eq 13)")
    for name, color in GROUPS:
        members = memorized if name == "memorized" else ~memorized
        for j, row in enumerate(k[members]):
            ax.plot(scales, row, color=color, alpha=0.35, linewidth=1, marker="o", markersize=3,
                    label=f"{name} ({int(members.sum())})" if j == 0 else None)
    ax.set_xlabel("guidance scale g")
    ax.set_ylabel(r"$k = \|\hat{x}_0^{(T)}\|_2 / \|x\|_2$ at t = T")
    ax.legend(loc="upper left")


# --------------------------------------------------------------------------- dose response
def _draw_dose(sf, d: dict) -> None:
    from matplotlib.lines import Line2D

    counts, has = d["counts"], np.isfinite(d["counts"])
    levels = np.unique(counts[has])
    axes = sf.subplots(1, 2, squeeze=False)[0]
    styles = {d["low"]: ("white", "-", "o"), d["high"]: (MEMORIZED, "-", "o")}
    for ax, what, ylabel in ((axes[0], "scores", f"memorization score ({d['scorer']})"),
                             (axes[1], "k", r"$k = \|\hat{x}_0^{(T)}\|_2 / \|x\|_2$ at t = T")):
        for g, values in d[what].items():
            face, line, marker = styles[g]
            color = "black" if g == d["low"] else MEMORIZED
            ax.scatter(counts[has], values[has], facecolor=face, edgecolor=color, s=22, marker=marker, zorder=3,
                       label=f"g = {g:g}: Spearman ρ = {d['rho'][(what.rstrip('s'), g)]:.2f}")
            means = [values[has & (counts == n)].mean() for n in levels]
            ax.plot(levels, means, color=color, linestyle=line, linewidth=1.2, alpha=0.7)
            if (~has).any():
                ax.axhline(values[~has].mean(), color=color, linestyle=":", linewidth=1.0, alpha=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [f"{n:g}" for n in levels])
        ax.minorticks_off()
        ax.set_xlabel("duplication count of the training image")
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left", fontsize=7)
    axes[0].axhline(0.75, color="gray", linestyle="--", linewidth=1.0)
    _title(axes[0], 0, "score against duplication")
    _title(axes[1], 1, "first-step overestimation against duplication")
    extra = [Line2D([], [], color="gray", linestyle="--", label="0.75 threshold"),
             Line2D([], [], color="black", linestyle=":", label="mean of the prompts without a count")]
    sf.legend(handles=extra, loc="outside lower center", ncols=2, frameon=False)


# --------------------------------------------------------------------------- Fig 13
def _draw_residuals(sf, d: dict) -> None:
    axes = sf.subplots(1, 3, squeeze=False)[0]
    memorized = d["memorized"]
    uncond, cond = _per_generation(d["uncond"], memorized), _per_generation(d["cond"], memorized)
    bins = _shared_bins(d["uncond"], d["cond"])
    for i, (ax, groups, text) in enumerate(((axes[0], uncond, r"unconditional: $\|\epsilon_u - x_T\|_2^2$"),
                                            (axes[1], cond, r"conditional: $\|\epsilon_c - x_T\|_2^2$"))):
        _hist(ax, groups, bins)
        _title(ax, i, text)
        ax.set_xlabel("squared magnitude at t = T")
    axes[1].sharex(axes[0])
    ratio = {"normal": d["ratio"][~memorized], "memorized": d["ratio"][memorized]}
    tol = d["tolerance"]
    ax = axes[2]
    ax.axvspan(1 - tol, 1 + tol, color="gray", alpha=0.12, linewidth=0)
    _hist(ax, ratio, _shared_bins(d["ratio"], np.array([1 + tol])))
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.2)
    _title(ax, 2, r"Eq 11 (not in Fig 13): $\|\epsilon_c - \epsilon_u\|_2 / (s\|x\|_2)$")
    ax.set_xlabel(f"ratio per prompt, s = {d['s']:.4f} (shaded: 1 ± {tol:g})")
    _group_legend(sf, _counts(memorized))


# --------------------------------------------------------------------------- the figures
FIGURES: tuple[FigureDef, ...] = (
    FigureDef(
        key="fig01", label="Fig 1", title="Guidance amplifies the presence of x",
        claims=("overfit-without-guidance", "loss-reversal-with-guidance", "direction-preserved"),
        paper="Squared ℓ2 distance (x-axis, log scale) and cosine similarity (y-axis) between x̂0(t) and x after "
              "1, 10 and 50 denoising steps; top row g = 1, bottom row g = 7.5; colour: memorization score.",
        look_for="Top row: memorized (yellow) points sit left of normal ones at every step (overfitting). "
                 "Bottom row, first step: they sit right of normal ones (the loss reverses), yet their cosine "
                 "stays near 1 in every panel: x̂0 ≈ k·x points along x.",
        drawn="DDIM run; one point per generation (prompt × seed); the colour is the prompt's score. "
              "Exact zeros of ‖x̂0 − x‖² are drawn at the left edge of the log axis.",
        data=series.x0_error_and_direction, draw=_draw_x0, size=(10.5, 6.4),
    ),
    FigureDef(
        key="fig03", label="Fig 3", title="Guidance drives memorization",
        claims=("guidance-drives-memorization",),
        paper="Memorization scores with (y-axis) and without (x-axis) classifier-free guidance, one point per prompt.",
        look_for="Points above the dashed diagonal: a prompt's score is higher with guidance.",
        drawn="Scores of the DDIM runs at g = 1 and g = 7.5 as stored in the fixture; colour: the prompt's label "
              "(score at g = 7.5 ≥ 0.75); dotted lines: the 0.75 threshold.",
        data=series.scores_with_and_without_guidance, draw=_draw_scores, size=(5.2, 5.0),
    ),
    FigureDef(
        key="fig05", label="Fig 5", title="Conditional noise prediction captures memorized data",
        claims=("predictions-follow-noise", "unconditional-blind", "conditional-injects-x"),
        paper="Cosine similarity between noise predictions and latents at t = T for normal (blue) and memorized "
              "(red) prompts under g = 7.5: (a) cos(ε_u, x_T), (b) cos(ε_c, x_T), (c) cos(ε_u − x_T, −x), "
              "(d) cos(ε_c − x_T, −x).",
        look_for="(a, b) near 1 for both groups: the predictions follow x_T. (c) near 0: the unconditional "
                 "prediction knows nothing of x. (d) high for memorized prompts only: the conditional prediction "
                 "carries −x.",
        drawn="DDIM run at g = 7.5, first step; one value per generation (the claims test prompt means).",
        data=series.noise_cosines, draw=_draw_noise_cosines, size=(12.0, 3.9),
    ),
    FigureDef(
        key="fig07", label="Fig 7", title="x_t converges under early overestimation",
        claims=("diversity-collapse",),
        paper="Trace of the covariance matrix of x_t across seeds over the denoising steps; colour: score.",
        look_for="Memorized (yellow) lines fall below normal ones early; after 10 steps (dotted line) the trace "
                 "correlates with the score (the paper: r = 0.7148 in absolute value).",
        drawn="DDIM run at g = 7.5; one line per prompt over the states x_T … x_0, log scale.",
        data=series.trace_covariance, draw=_draw_trace, size=(7.5, 4.6),
    ),
    FigureDef(
        key="fig08", label="Fig 8", title="Overestimation aligns denoising updates with memorized directions",
        claims=("update-alignment",),
        paper="Cosine similarity between the first principal component of Δx_{t−1} = x_{t−1} − x_t (across seeds) "
              "and the memorized training image x.",
        look_for="The memorized (red) line is high in the early steps, above the normal (blue) one.",
        drawn="DDIM run at g = 7.5; line: mean over the group's prompts, band: their interquartile range. "
              "The claim's PCA reading (centred or uncentred) is in the axis label.",
        data=series.update_alignment, draw=_draw_alignment, size=(7.0, 4.4),
    ),
    FigureDef(
        key="fig10", label="Fig 10", title="Faster dominance of x under memorization",
        claims=("decomposition-g1", "early-dominance"),
        paper="Least-squares decomposition x_t = w0·x + wT·x_T (or on the final latent x_0): w0 (blue, solid) and "
              "wT (red, solid) against √ᾱ_t (blue, dashed) and √(1−ᾱ_t) (red, dashed); "
              "top row g = 1, bottom row g = 7.5.",
        look_for="g = 1: memorized prompts follow the dashed schedule. g = 7.5: for memorized prompts w0 rises "
                 "above √ᾱ_t and wT drops below √(1−ᾱ_t) early, on x and on x_0.",
        drawn="DDIM run; each solid line is the mean over the group's prompts and seeds, over the states "
              "x_T … x_0.",
        data=series.decomposition, draw=_draw_decomposition, size=(14.0, 6.6),
    ),
    FigureDef(
        key="fig11", label="Fig 11", title="Decomposition deviations predict memorization severity",
        claims=("deviation-predicts-severity",),
        paper="Memorization score against (a) Σ(E[w0] − √ᾱ_t) (blue), (b) −Σ(E[wT] − √(1−ᾱ_t)) (red) and "
              "(c) Σ δ(t) (purple), with Pearson's r (the paper: 0.9203, 0.6997, 0.9224).",
        look_for="Strong positive correlations in all three panels.",
        drawn="DDIM run at g = 7.5, decomposition on x, sums over t = T … 1; one point per prompt.",
        data=series.severity, draw=_draw_severity, size=(12.5, 4.2),
    ),
    FigureDef(
        key="fig12", label="Fig 12", title="Overestimation occurs under memorization",
        claims=("overestimation",),
        paper="Distribution of k = ‖x̂0(t)‖/‖x‖ across timesteps; a dashed line marks k = 1.",
        look_for="At g = 7.5 the memorized (red) distribution lies right of k = 1 in the early steps (shaded).",
        drawn="DDIM run; per step the group's median (line), interquartile range (dark band) and 5–95 % range "
              "(light band) over all its generations; g = 1 beside it for contrast.",
        data=series.overestimation_over_steps, draw=_draw_k, size=(9.5, 5.0),
    ),
    FigureDef(
        key="eq13", label="Eq 13", title="Overestimation grows linearly with guidance",
        claims=("linear-in-guidance",),
        paper="No figure in the paper; Eq 13 (illustrated by Fig 6): under memorization the first-step estimate "
              "is x̂0(T) ≈ g·x, so k = ‖x̂0(T)‖/‖x‖ ≈ g.",
        look_for="Memorized (red) lines lie on the dashed line k = g, with slope 1.",
        drawn="DDIM run at every recorded guidance scale; one line per prompt, k at t = T (mean over seeds).",
        data=series.overestimation_against_guidance, draw=_draw_k_against_g, size=(5.6, 4.6),
    ),
    FigureDef(
        key="fig13", label="Fig 13",
        title="Unconditional predictions replicate x_T, conditional ones also contain memorized information",
        claims=("unconditional-blind", "conditional-injects-x", "magnitude-explained"),
        paper="Distribution of the squared magnitude of the difference between x_T and (a) the unconditional and "
              "(b) the conditional noise prediction at t = T, normal (blue) and memorized (red).",
        look_for="(a) nearly zero for both groups; (b) normal like (a), memorized shifted to larger values. "
                 "(c), added here for the §4 claim: ‖ε_c − ε_u‖ ≈ s‖x‖ for memorized prompts (ratio ≈ 1).",
        drawn="DDIM run at g = 7.5, first step; (a, b) one value per generation on shared bins, (c) one value per "
              "prompt, s = √ᾱ_T / √(1−ᾱ_T).",
        data=series.noise_residuals, draw=_draw_residuals, size=(12.5, 4.0),
    ),
    FigureDef(
        key="fig15", label="Fig 15", title="Guidance amplifies the presence of x, under DDPM",
        claims=("sampler-agnostic",),
        paper="Fig 1 for DDPM sampling (App E).",
        look_for="The same pattern as Fig 1.",
        drawn="DDPM run; one point per generation; labels from the DDIM g = 7.5 scores, as the check.",
        data=lambda src: series.x0_error_and_direction(src, sampler=src.param("sampler-agnostic", "sampler")),
        draw=_draw_x0, size=(10.5, 6.4),
    ),
    FigureDef(
        key="fig16", label="Fig 16", title="Decomposition deviations predict memorization severity, under DDPM",
        claims=("sampler-agnostic",),
        paper="Fig 11 for DDPM sampling (App E).",
        look_for="Strong positive correlations, as in Fig 11.",
        drawn="DDPM run at g = 7.5; scores: the DDIM g = 7.5 scores, as the check.",
        data=lambda src: series.severity(src, sampler=src.param("sampler-agnostic", "sampler")),
        draw=_draw_severity, size=(12.5, 4.2),
    ),
    FigureDef(
        key="dose", label="Dose response", title="Memorization grows with duplication, and guidance drives it",
        claims=("guidance-drives-memorization", "linear-in-guidance"),
        paper="No figure in the paper. For models whose prompts carry a duplication count (manifest field "
              "duplicates, e.g. the digits-graded organism): the score with and without guidance, and the "
              "first-step k, against how often the prompt's training image was duplicated.",
        look_for="(a) The score rises with the count; at middle counts it is below 0.75 at g = 1 and above it at "
                 "g = 7.5 (Fig 3's rise, per dose). (b) k at g = 7.5 rises with the count towards g (Eq 13).",
        drawn="DDIM runs at g = 1 and g = 7.5; one point per prompt with a count (mean over seeds), lines through "
              "the means per count; dotted: the mean of the prompts without a count (class prompts). ρ: Spearman "
              "against log count over the prompts with a count.",
        data=series.dose_response, draw=_draw_dose, size=(10.5, 4.4), optional=True,
    ),
)


def figures_for(claim: str) -> list[FigureDef]:
    return [f for f in FIGURES if claim in f.claims]


def render_figure(defn: FigureDef, sources: Sequence[Source]) -> Rendered:
    """One column per model; a model without the data gets a note in its column instead of panels."""
    import matplotlib.style
    from matplotlib.figure import Figure

    prepared: list[tuple[Source, dict | None, str | None]] = []
    for src in sources:
        try:
            prepared.append((src, defn.data(src), None))
        except (Unavailable, MemharnessError) as exc:  # a fixture that lacks an array: say so, draw the rest
            prepared.append((src, None, str(exc)))
    missing = {src.model: why for src, data, why in prepared if data is None}
    if len(missing) == len(prepared):
        return Rendered(defn, None, missing)
    width, height = defn.size
    with matplotlib.style.context("default"), matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width * len(prepared), height + 0.4), layout="constrained")
        title = textwrap.fill(f"{defn.label} · {defn.title}", width=max(30, int(width * len(prepared) * 8)))
        fig.suptitle(_mathtext(title), fontweight="bold")
        columns = fig.subfigures(1, len(prepared), squeeze=False)[0]
        for sf, (src, data, why) in zip(columns, prepared, strict=True):
            sampler = (data or {}).get("sampler")
            sf.suptitle(src.model + (f" · {sampler.upper()}" if sampler else ""), fontsize=11)
            if data is None:
                sf.text(0.5, 0.5, f"no data for this figure:\n{why}", ha="center", va="center", wrap=True)
            else:
                defn.draw(sf, data)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Rendered(defn, buffer.getvalue(), missing)


def render_all(sources: Sequence[Source], figures: Sequence[FigureDef] = FIGURES) -> list[Rendered]:
    return [render_figure(defn, sources) for defn in figures]
