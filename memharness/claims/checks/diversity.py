"""Collapse of trajectories: Fig 7 (trace of the covariance of x_t) and Fig 8 (PC1 of Δx aligned with x)."""

from __future__ import annotations

from memharness.claims.checks._common import Context
from memharness.claims.checks._registry import register
from memharness.claims.statistics import against_bound, combine, compare_groups, correlation

_PCA_COLUMN = {"centred": 0, "uncentred": 1}


@register("diversity-collapse")
def diversity_collapse(ctx: Context):
    """Fig 7: tr Cov(x_t) across seeds is smaller under memorization; after 10 steps it tracks the score."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    state = min(int(ctx.param("state", 10)), group.arrays["trace_cov"].shape[1] - 1)
    trace = group.arrays["trace_cov"][:, state].astype(float)
    labels = ctx.labels()
    return ctx.verdict(combine([
        correlation(labels.scores, trace, sign=-1, what=f"Pearson(score, tr Cov) after {state} steps",
                    alpha=float(ctx.param("alpha")), min_r=float(ctx.param("min_r", 0.5)), **ctx.decide_opts()),
        compare_groups(trace[labels.memorized], trace[~labels.memorized], alternative="less",
                       what=f"tr Cov(x_t) after {state} steps", **ctx.decide_opts()),
    ]))


@register("update-alignment")
def update_alignment(ctx: Context):
    """Fig 8: early on, the first principal component of Δx = x_{t−1} − x_t points along x for memorized prompts."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    pca = ctx.param("pca", "uncentred")
    if pca not in _PCA_COLUMN:
        return ctx.skip(f"parameter pca must be one of {', '.join(_PCA_COLUMN)}, not {pca!r}")
    early = int(ctx.param("early_steps", 10))
    alignment = ctx.group(sampler, g).arrays["pc1_cos_x"][:, :early, _PCA_COLUMN[pca]].mean(1).astype(float)
    memorized = ctx.labels().memorized
    return ctx.verdict(combine([
        against_bound(alignment[memorized], bound=float(ctx.param("min_cosine", 0.5)), direction=">",
                      what=f"|cos(PC1(Δx), x)| over the first {early} steps ({pca} PCA)", **ctx.decide_opts()),
        compare_groups(alignment[memorized], alignment[~memorized], alternative="greater",
                       what="|cos(PC1(Δx), x)|", **ctx.decide_opts()),
    ]), pca=pca)
