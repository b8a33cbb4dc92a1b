"""Overestimation of x under guidance: Fig 1 (direction), App B.1 (k > 1), Eq 13 (k ≈ g)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from memharness.analysis import guidance_slope
from memharness.claims.checks.common import (
    EARLY_STEPS,
    MIN_AUC,
    SAMPLER,
    Context,
    guidance,
    overestimation,
    x0_direction,
)
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import against_bound, combine, compare_groups, within_band


def measure_k_against_guidance(ctx: Context) -> dict:
    """Eq 13: k = ‖x̂0‖/‖x‖ at the claim's step (mean over seeds) per prompt and recorded g (P, G), and
    each prompt's least-squares slope of k on g."""
    sampler, step = ctx.param("sampler"), ctx.param("step")
    scales = np.asarray(ctx.fixture.guidance_scales(sampler), dtype=float)
    k = np.stack([overestimation(ctx.group(sampler, g))[..., step].mean(1) for g in scales], axis=1)
    return {"scales": scales, "k": k, "slopes": guidance_slope(scales, k)}


@register("linear-in-guidance", params={
    "sampler": SAMPLER, "step": Param(int, 0, low=0, high=10_000,
                                     doc="the step k is read at, 0-based: 0 is t = T, where Eq 13 (x̂0 ≈ g·x) holds"),
    "slope_tolerance": Param(float, 0.1, low=0.0, high=10.0,
                             doc="the slope of k on g must lie in 1 ± this (Eq 13); the paper gives none, ours"),
    "min_auc": MIN_AUC,
})
def linear_in_guidance(ctx: Context):
    """Eq 13: first-step k of memorized prompts grows with g at slope ≈ 1, faster than for normal prompts."""
    sampler = ctx.param("sampler")
    scales = ctx.fixture.guidance_scales(sampler)
    if len(scales) < 2:
        return ctx.skip(f"needs ≥ 2 guidance scales in a {sampler} run; the fixture has {scales or 'none'}")
    if early := ctx.preflight(sampler, *scales):
        return early
    memorized = ctx.labels().memorized
    measured = measure_k_against_guidance(ctx)
    k, slopes = measured["k"], measured["slopes"]
    tol = ctx.param("slope_tolerance")
    decision = combine([
        within_band(slopes[memorized], lower=1 - tol, upper=1 + tol, what="slope of k on g", **ctx.decide_opts()),
        compare_groups(slopes[memorized], slopes[~memorized], alternative="greater", what="slope",
                       min_auc=ctx.param("min_auc"), **ctx.decide_opts()),
    ])
    ratio = ", ".join(f"{r:.3f}" for r in (k[memorized] / np.asarray(scales)).mean(0)) if memorized.any() else "—"
    note = f"; k/g = {ratio} at g = {', '.join(f'{g:g}' for g in scales)}"
    if (~memorized).any():
        note += f"; normal prompts' slope {slopes[~memorized].mean():.3f}"
    return ctx.verdict(replace(decision, reason=decision.reason + note))


@register("overestimation", params={
    "sampler": SAMPLER, "guidance": guidance(7.5), "early_steps": EARLY_STEPS,
    "min_k": Param(float, 1.0, low=0.0, high=1000.0,
                   doc="the memorized prompts' early k = ‖x̂0‖/‖x‖ must exceed it (App B.1, Fig 12: k > 1)"),
    "min_auc": MIN_AUC,
})
def overestimation_claim(ctx: Context):
    """App B.1, Fig 12: early at g = 7.5, k = ‖x̂0(t)‖/‖x‖ > 1 for memorized prompts, and larger than
    for normal prompts (whose k exceeds 1 too when their x is a typical sample, not their mode)."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    early = ctx.param("early_steps")
    k = overestimation(ctx.group(sampler, g))[..., :early].mean((1, 2))  # (P,) mean over seeds and early steps
    memorized = ctx.labels().memorized
    decision = combine([
        against_bound(k[memorized], bound=ctx.param("min_k"), direction=">",
                      what=f"k over the first {early} steps", **ctx.decide_opts()),
        compare_groups(k[memorized], k[~memorized], alternative="greater", what="k",
                       min_auc=ctx.param("min_auc"), **ctx.decide_opts()),
    ])
    return ctx.verdict(decision, normal_k=float(k[~memorized].mean()) if (~memorized).any() else None)


@register("direction-preserved", params={
    "sampler": SAMPLER, "guidance_scales": Param(list, [1.0, 7.5], item=float, low=0.0, high=100.0,
                                               doc="the g's checked, each on its own (Fig 1a-c: g = 1; Fig 1d-f: 7.5)"),
    "min_cosine": Param(float, 0.9, low=-1.0, high=1.0,
                        doc="floor of cos(x̂0, x) at the weakest step; Fig 1 says 'high', 0.9 is our reading"),
    "min_auc": MIN_AUC,
})
def direction_preserved(ctx: Context):
    """Fig 1: cos(x̂0(t), x) stays high for memorized prompts at every step, with and without guidance,
    and higher than for normal prompts (averaged over the steps)."""
    sampler = ctx.param("sampler")
    scales = ctx.param("guidance_scales")
    if early := ctx.preflight(sampler, *scales):
        return early
    memorized = ctx.labels().memorized
    bound = ctx.param("min_cosine")
    parts = []
    for g in scales:
        cos = x0_direction(ctx.group(sampler, g)).mean(1)  # (P, S)
        worst = int(np.argmin(cos[memorized].mean(0))) if memorized.any() else 0
        parts.append(against_bound(cos[memorized, worst], bound=bound, direction=">",
                                   what=f"cos(x̂0, x) at g={g:g}, weakest step {worst + 1}", **ctx.decide_opts()))
        parts.append(compare_groups(cos[memorized].mean(1), cos[~memorized].mean(1), alternative="greater",
                                    what=f"cos(x̂0, x) at g={g:g} over the steps", min_auc=ctx.param("min_auc"),
                                    **ctx.decide_opts()))
    bounds = parts[::2]
    primary = 2 * int(np.argmin([p.measured if p.measured is not None else np.inf for p in bounds]))
    return ctx.verdict(combine(parts, primary=primary))
