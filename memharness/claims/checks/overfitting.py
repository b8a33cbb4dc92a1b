"""Memorization is not just overfitting: §3.2, Fig 1 (x̂0 error), Fig 3 (scores with and without guidance)."""

from __future__ import annotations

import dataclasses

import numpy as np

from memharness.claims.checks.common import MIN_AUC, SAMPLER, Context, guidance, x0_error_norm2
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import combine, compare_groups, paired_increase
from memharness.claims.verdict import Outcome


@register("overfit-without-guidance", params={
    "sampler": SAMPLER, "guidance": guidance(1.0),
    "steps": Param(list, [1, 10, 50], item=int, low=1, high=10_000,
                   doc="Fig 1a-c's 'after 1, 10 and 50 steps', read as x̂0 of the n-th step (1: t = T)"),
    "min_auc": MIN_AUC,
})
def overfit_without_guidance(ctx: Context):
    """Fig 1a-c: at g = 1, ‖x̂0(t) − x‖² is smaller for memorized prompts after 1, 10 and 50 steps."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    err = x0_error_norm2(group).mean(1)  # (P, S), mean over seeds
    memorized = ctx.labels().memorized
    steps = ctx.param("steps")
    n_steps = err.shape[1]
    parts = []
    for step in steps:
        index = min(step, n_steps) - 1  # "after n steps": x̂0 of the n-th step; short runs use their last
        parts.append(compare_groups(err[memorized, index], err[~memorized, index], alternative="less",
                                    what=f"‖x̂0 − x‖² after {index + 1} steps", min_auc=ctx.param("min_auc"),
                                    **ctx.decide_opts()))
    return ctx.verdict(combine(parts))


@register("loss-reversal-with-guidance", params={
    "sampler": SAMPLER, "guidance": guidance(7.5),
    "step": Param(int, 1, low=1, high=10_000,
                  doc="the step whose ‖x̂0 − x‖² is compared, 1-based: 1 is t = T, Fig 1d's 'very first step'"),
    "min_auc": MIN_AUC,
})
def loss_reversal(ctx: Context):
    """Fig 1d: at g = 7.5 the first-step ‖x̂0(T) − x‖² is larger for memorized prompts (Eq 10's loss rises)."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    step = min(ctx.param("step"), len(ctx.group(sampler, g).timesteps)) - 1
    err = x0_error_norm2(ctx.group(sampler, g))[..., step].mean(1)
    memorized = ctx.labels().memorized
    return ctx.verdict(compare_groups(err[memorized], err[~memorized], alternative="greater",
                                      what=f"‖x̂0 − x‖² after {step + 1} step(s) at g={g:g}",
                                      min_auc=ctx.param("min_auc"), **ctx.decide_opts()))


def measure_scores(ctx: Context) -> dict | str:
    """Fig 3: each prompt's score (Eq 9) at baseline_guidance and at guidance; or why the fixture has none."""
    sampler = ctx.param("sampler")
    low, high = ctx.param("baseline_guidance"), ctx.param("guidance")
    by_scale = {g: ctx.fixture.scores_for(sampler, g) for g in (low, high)}
    missing = [g for g, by_prompt in by_scale.items() if by_prompt is None]
    if missing:
        return f"the fixture has no memorization scores for {sampler} g={missing[0]:g}"
    ids = [p["id"] for p in ctx.fixture.prompts]
    before, after = (np.array([by_scale[g][pid]["score"] for pid in ids]) for g in (low, high))
    return {"low": low, "high": high, "before": before, "after": after,
            "scorer": ctx.fixture.scores.get("scorer", "unknown")}


@register("guidance-drives-memorization", params={
    "sampler": SAMPLER,
    "baseline_guidance": guidance(1.0, doc="the g the rise is measured from (no guidance: g = 1)"),
    "guidance": guidance(7.5, doc="the g the rise is measured to (the paper's setting)"),
    "min_rise": Param(float, 0.1, low=0.0, high=1.0, doc="the mean paired rise of the score that counts"),
}, null_not_applicable="it reads only the scores: a permutation moves each prompt's scores at both scales together")
def guidance_drives_memorization(ctx: Context):
    """Fig 3: the prompts memorized at g = 7.5 score higher there than at g = 1 (paired, per prompt)."""
    sampler = ctx.param("sampler")
    low, high = ctx.param("baseline_guidance"), ctx.param("guidance")
    if early := ctx.preflight(sampler, low, high):
        return early
    measured = measure_scores(ctx)
    if isinstance(measured, str):
        return ctx.skip(measured)
    before, after, scorer = measured["before"], measured["after"], measured["scorer"]
    memorized = ctx.labels().memorized
    min_rise, threshold = ctx.param("min_rise"), ctx.param("threshold")
    already = int((before[memorized] >= threshold).sum())
    normal_rise = float((after - before)[~memorized].mean()) if (~memorized).any() else float("nan")
    note = (f"; {already} of {int(memorized.sum())} were memorized at g={low:g} already; "
            f"normal prompts' mean change {normal_rise:+.3g}")
    decision = paired_increase(after[memorized], before[memorized],
                               what=f"{scorer} score of memorized prompts from g={low:g} to g={high:g}",
                               min_increase=min_rise, **ctx.decide_opts())
    headroom = float((1.0 - before[memorized]).mean()) if memorized.any() else 1.0
    if decision.measured is not None and headroom < min_rise:  # no rise of min_rise can show: not a FAIL
        decision = dataclasses.replace(
            decision, outcome=Outcome.INCONCLUSIVE,
            reason=f"{scorer} score saturated: the memorized prompts already score {1 - headroom:.3f} at g={low:g}, "
                   f"less than the floor {min_rise:g} below the maximum 1, so no rise can show ({decision.reason})")
    decision = dataclasses.replace(decision, reason=decision.reason + note)
    return ctx.verdict(decision, scorer=scorer, already_memorized_without_guidance=already,
                       normal_mean_change=normal_rise)
