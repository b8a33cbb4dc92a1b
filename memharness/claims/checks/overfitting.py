"""Memorization is not just overfitting: §3.2, Fig 1 (x̂0 error), Fig 3 (scores with and without guidance)."""

from __future__ import annotations

import numpy as np

from memharness.claims.checks._common import Context, x0_error_norm2
from memharness.claims.checks._registry import register
from memharness.claims.statistics import combine, compare_groups, paired_increase
from memharness.trace import schema


@register("overfit-without-guidance")
def overfit_without_guidance(ctx: Context):
    """Fig 1a-c: at g = 1, ‖x̂0(t) − x‖² is smaller for memorized prompts after 1, 10 and 50 steps."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 1.0))
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    err = x0_error_norm2(group).mean(1)  # (P, S), mean over seeds
    memorized = ctx.labels().memorized
    steps = [int(s) for s in ctx.param("steps", [1, 10, 50])]
    n_steps = err.shape[1]
    parts = []
    for step in steps:
        index = min(step, n_steps) - 1  # "after n steps": x̂0 of the n-th step; short runs use their last
        parts.append(compare_groups(err[memorized, index], err[~memorized, index], alternative="less",
                                    what=f"‖x̂0 − x‖² after {index + 1} steps", **ctx.decide_opts()))
    return ctx.verdict(combine(parts))


@register("loss-reversal-with-guidance")
def loss_reversal(ctx: Context):
    """Fig 1d: at g = 7.5 the first-step ‖x̂0(T) − x‖² is larger for memorized prompts (Eq 10's loss rises)."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    step = int(ctx.param("step", 1)) - 1
    err = x0_error_norm2(ctx.group(sampler, g))[..., step].mean(1)
    memorized = ctx.labels().memorized
    return ctx.verdict(compare_groups(err[memorized], err[~memorized], alternative="greater",
                                      what=f"‖x̂0 − x‖² after {step + 1} step(s) at g={g:g}", **ctx.decide_opts()))


@register("guidance-drives-memorization")
def guidance_drives_memorization(ctx: Context):
    """Fig 3: a prompt's memorization score is higher with g = 7.5 than with g = 1 (paired)."""
    sampler = ctx.param("sampler", "ddim")
    low, high = float(ctx.param("without_guidance", 1.0)), float(ctx.param("with_guidance", 7.5))
    if early := ctx.preflight(sampler, low, high):
        return early
    values = ctx.fixture.scores["values"].get(sampler, {})
    if schema.guidance_key(low) not in values or schema.guidance_key(high) not in values:
        return ctx.skip(f"the fixture has no memorization scores for {sampler} g={low:g} and g={high:g}")
    ids = [p["id"] for p in ctx.fixture.prompts]
    before = np.array([values[schema.guidance_key(low)][pid]["score"] for pid in ids])
    after = np.array([values[schema.guidance_key(high)][pid]["score"] for pid in ids])
    scorer = ctx.fixture.scores.get("scorer", "unknown")
    decision = paired_increase(after, before, what=f"{scorer} score from g={low:g} to g={high:g}",
                               alpha=float(ctx.param("alpha")), **ctx.decide_opts())
    return ctx.verdict(decision, scorer=scorer)
