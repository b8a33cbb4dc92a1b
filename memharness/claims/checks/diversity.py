"""Collapse of trajectories: Fig 7 (trace of the covariance of x_t) and Fig 8 (PC1 of Δx aligned with x)."""

from __future__ import annotations

from memharness.claims.checks.common import EARLY_STEPS, MIN_AUC, SAMPLER, Context, guidance
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import against_bound, combine, compare_groups, correlation

_PCA_COLUMN = {"centred": 0, "uncentred": 1}


def measure_trace(ctx: Context) -> dict:
    """Fig 7: tr Cov(x_t) across seeds per prompt and state (P, S+1), and the state the claim reads."""
    trace = ctx.group(ctx.param("sampler"), ctx.param("guidance")).arrays["trace_cov"].astype(float)
    return {"trace": trace, "state": min(ctx.param("state"), trace.shape[1] - 1)}


def measure_alignment(ctx: Context) -> dict:
    """Fig 8: |cos(PC1(Δx), x)| per prompt and step (P, S) in the claim's PCA, and its early mean (P,)."""
    pca, early = ctx.param("pca"), ctx.param("early_steps")
    cos = ctx.group(ctx.param("sampler"), ctx.param("guidance")).arrays["pc1_cos_x"][..., _PCA_COLUMN[pca]]
    cos = cos.astype(float)
    return {"cos": cos, "alignment": cos[:, :early].mean(1), "pca": pca, "early": early}


@register("diversity-collapse", params={
    "sampler": SAMPLER, "guidance": guidance(7.5), "state": Param(
        int, 10, low=0, high=10_000, doc="tr Cov(x_t) is read after this many steps (Fig 7: 'after 10 steps', t = 40)"),
    "min_r": Param(float, 0.6, low=0.0, high=1.0, doc="r must be below −min_r: near Fig 7's 0.7148 (a negative r)"),
    "min_auc": MIN_AUC,
})
def diversity_collapse(ctx: Context):
    """Fig 7: tr Cov(x_t) across seeds is smaller under memorization; after 10 steps it tracks the score."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    measured = measure_trace(ctx)
    state, trace = measured["state"], measured["trace"][:, measured["state"]]
    labels = ctx.labels()
    return ctx.verdict(combine([
        correlation(labels.scores, trace, sign=-1, what=f"Pearson(score, tr Cov) after {state} steps",
                    min_r=ctx.param("min_r"), **ctx.decide_opts()),
        compare_groups(trace[labels.memorized], trace[~labels.memorized], alternative="less",
                       what=f"tr Cov(x_t) after {state} steps", min_auc=ctx.param("min_auc"), **ctx.decide_opts()),
    ]))


@register("update-alignment", params={
    "sampler": SAMPLER, "guidance": guidance(7.5), "pca": Param(
        str, "uncentred", choices=tuple(_PCA_COLUMN),
        doc="PCA of Δx for Fig 8's PC1; the paper does not say; uncentred (ours) keeps the shared x direction"),
    "early_steps": EARLY_STEPS,
    "min_cosine": Param(float, 0.5, low=0.0, high=1.0,
                        doc="floor of the early absolute cos(PC1(Δx), x); Fig 8 says 'strongly', 0.5 is ours"),
    "min_auc": MIN_AUC,
})
def update_alignment(ctx: Context):
    """Fig 8: early on, the first principal component of Δx = x_{t−1} − x_t points along x for memorized prompts."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    measured = measure_alignment(ctx)
    pca, early, alignment = measured["pca"], measured["early"], measured["alignment"]
    memorized = ctx.labels().memorized
    return ctx.verdict(combine([
        against_bound(alignment[memorized], bound=ctx.param("min_cosine"), direction=">",
                      what=f"|cos(PC1(Δx), x)| over the first {early} steps ({pca} PCA)", **ctx.decide_opts()),
        compare_groups(alignment[memorized], alignment[~memorized], alternative="greater",
                       what="|cos(PC1(Δx), x)|", min_auc=ctx.param("min_auc"), **ctx.decide_opts()),
    ]), pca=pca)
