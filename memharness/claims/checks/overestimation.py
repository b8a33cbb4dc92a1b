"""Overestimation of x under guidance: Fig 1 (direction), App B.1 (k > 1), Eq 13 (k ≈ g)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from memharness.analysis import guidance_slope
from memharness.claims.checks._common import Context, overestimation, x0_direction
from memharness.claims.checks._registry import register
from memharness.claims.statistics import against_bound, combine, compare_groups, within_band


@register("linear-in-guidance")
def linear_in_guidance(ctx: Context):
    """Eq 13: first-step k of memorized prompts grows with g at slope ≈ 1."""
    sampler, step = ctx.param("sampler", "ddim"), int(ctx.param("step", 0))
    scales = ctx.fixture.guidance_scales(sampler)
    if len(scales) < 2:
        return ctx.skip(f"needs ≥ 2 guidance scales in a {sampler} run; the fixture has {scales or 'none'}")
    if early := ctx.preflight(sampler, *scales):
        return early
    memorized = ctx.labels().memorized
    k = np.stack([overestimation(ctx.group(sampler, g))[..., step].mean(1) for g in scales], axis=1)  # (P, G)
    slopes = guidance_slope(np.asarray(scales), k)
    tol = float(ctx.param("slope_tolerance", 0.1))
    decision = within_band(slopes[memorized], lower=1 - tol, upper=1 + tol, what="slope of k on g",
                           **ctx.decide_opts())
    contrast = compare_groups(slopes[memorized], slopes[~memorized], alternative="greater",
                              what="slope", **ctx.decide_opts())
    ratio = ", ".join(f"{r:.3f}" for r in (k[memorized] / np.asarray(scales)).mean(0)) if memorized.any() else "—"
    note = f"; k/g = {ratio} at g = {', '.join(f'{g:g}' for g in scales)}"
    if (~memorized).any():
        note += f"; normal prompts' slope {slopes[~memorized].mean():.3f}"
    return ctx.verdict(replace(decision, reason=decision.reason + note), contrast=contrast.reason)


@register("overestimation")
def overestimation_claim(ctx: Context):
    """App B.1, Fig 12: k = ‖x̂0(t)‖/‖x‖ > 1 for memorized prompts in the early steps at g = 7.5."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    early = int(ctx.param("early_steps", 10))
    k = overestimation(ctx.group(sampler, g))[..., :early].mean((1, 2))  # (P,) mean over seeds and early steps
    memorized = ctx.labels().memorized
    return ctx.verdict(against_bound(k[memorized], bound=1.0, direction=">",
                                     what=f"k over the first {early} steps", **ctx.decide_opts()))


@register("direction-preserved")
def direction_preserved(ctx: Context):
    """Fig 1: cos(x̂0(t), x) stays high for memorized prompts at every step, with and without guidance."""
    sampler = ctx.param("sampler", "ddim")
    scales = [float(g) for g in ctx.param("guidance_scales", [1.0, 7.5])]
    if early := ctx.preflight(sampler, *scales):
        return early
    memorized = ctx.labels().memorized
    bound = float(ctx.param("min_cosine", 0.9))
    parts = []
    for g in scales:
        cos = x0_direction(ctx.group(sampler, g)).mean(1)  # (P, S)
        worst = int(np.argmin(cos[memorized].mean(0))) if memorized.any() else 0
        parts.append(against_bound(cos[memorized, worst], bound=bound, direction=">",
                                   what=f"cos(x̂0, x) at g={g:g}, weakest step {worst + 1}", **ctx.decide_opts()))
    primary = int(np.argmin([p.measured if p.measured is not None else np.inf for p in parts]))
    return ctx.verdict(combine(parts, primary=primary))
