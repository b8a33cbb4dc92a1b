"""The decomposition x_t ≈ w0·x + wT·x_T: Eq 14, Fig 10 (against the schedule) and Fig 11 (against the score)."""

from __future__ import annotations

import numpy as np

from memharness.analysis import schedule_deviation, severity_sums
from memharness.claims.checks._common import Context, state_schedule, weights
from memharness.claims.checks._registry import register
from memharness.claims.statistics import against_bound, combine, compare_groups, correlation
from memharness.trace.store import Group


def _reference_schedule(ctx: Context, group: Group, sampler: str) -> tuple[np.ndarray, np.ndarray]:
    """The curves w0 and wT are compared with: Eq 21 (√ᾱ_t, √(1−ᾱ_t); the paper's plots) or the exact Eq 20."""
    choice = ctx.param("schedule_reference", "eq21")
    if choice == "eq20":
        states = np.append(group.timesteps, -1)
        return ctx.schedule.eq20_weights(states, t_start=int(group.timesteps[0]), sampler=sampler)
    return state_schedule(ctx, group, sampler=sampler)


@register("decomposition-g1")
def decomposition_g1(ctx: Context):
    """Fig 10a,b: at g = 1, w0 and wT follow √ᾱ_t and √(1−ᾱ_t) more closely for memorized prompts."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 1.0))
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    w0, wT = weights(group, ctx.param("reference", "x"))
    d0, dT = schedule_deviation(w0.mean(1), wT.mean(1), *_reference_schedule(ctx, group, sampler))
    rms = np.sqrt((d0**2 + dT**2).mean(-1) / 2)  # (P,) over all states
    memorized = ctx.labels().memorized
    return ctx.verdict(combine([
        against_bound(rms[memorized], bound=float(ctx.param("max_rms", 0.1)), direction="<",
                      what="RMS distance of (w0, wT) from the schedule", **ctx.decide_opts()),
        compare_groups(rms[memorized], rms[~memorized], alternative="less",
                       what="distance from the schedule", **ctx.decide_opts()),
    ]))


@register("early-dominance")
def early_dominance(ctx: Context):
    """Fig 10f,h: at g = 7.5, early on w0 overshoots √ᾱ_t and wT undershoots √(1−ᾱ_t), against x and x_0."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    early = int(ctx.param("early_steps", 10))
    memorized = ctx.labels().memorized
    parts = []
    for reference in ctx.param("references", ["x", "x_0"]):
        w0, wT = weights(group, reference)
        d0, dT = schedule_deviation(w0.mean(1), wT.mean(1), *state_schedule(ctx, group, sampler=sampler))
        # States 1..early: the states the first `early` steps produce (state 0 is x_T itself).
        window = slice(1, early + 1)
        parts.append(against_bound(d0[memorized, window].mean(-1), bound=0.0, direction=">",
                                   what=f"w0 − √ᾱ_t (on {reference})", **ctx.decide_opts()))
        parts.append(against_bound(dT[memorized, window].mean(-1), bound=0.0, direction="<",
                                   what=f"wT − √(1−ᾱ_t) (on {reference})", **ctx.decide_opts()))
    return ctx.verdict(combine(parts))


@register("deviation-predicts-severity")
def deviation_predicts_severity(ctx: Context):
    """Fig 11: the score correlates with Σ(E[w0] − √ᾱ), −Σ(E[wT] − √(1−ᾱ)) and Σ δ(t)."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    w0, wT = weights(group, ctx.param("reference", "x"))
    sqrt_ab, sqrt_1mab = state_schedule(ctx, group, sampler=sampler)
    # Σ over t = T … 1: the states each step starts from, not the final x_0.
    states = slice(0, None if ctx.param("include_final_state", False) else -1)
    excess, suppression, overall = severity_sums(w0.mean(1)[:, states], wT.mean(1)[:, states],
                                                 sqrt_ab[states], sqrt_1mab[states])
    scores = ctx.labels().scores
    opts = dict(sign=1, alpha=float(ctx.param("alpha")), min_r=float(ctx.param("min_r", 0.5)), **ctx.decide_opts())
    parts = [
        correlation(scores, overall, what="r(score, Σ δ(t))", **opts),
        correlation(scores, excess, what="r(score, Σ(E[w0] − √ᾱ))", **opts),
        correlation(scores, suppression, what="r(score, −Σ(E[wT] − √(1−ᾱ)))", **opts),
    ]
    return ctx.verdict(combine(parts), r=[p.measured for p in parts])
