"""The decomposition x_t ≈ w0·x + wT·x_T: Eq 14, Fig 10 (against the schedule) and Fig 11 (against the score)."""

from __future__ import annotations

import dataclasses

import numpy as np

from memharness.analysis import schedule_deviation, severity_sums
from memharness.claims.checks.common import EARLY_STEPS, MIN_AUC, SAMPLER, Context, guidance, state_schedule, weights
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import against_bound, combine, compare_groups, correlation
from memharness.trace.group import Group

# Eq 14's reference r in x_t ≈ w0·r + wT·x_T: the training latent x (the paper's text) or the
# generation's own final latent x_0 (what the authors' code decomposes on).
REFERENCE = Param(str, "x", choices=("x", "x_0"),
                  doc="r in Eq 14's x_t ≈ w0·r + wT·x_T: x (the paper's text) or x_0 (Fig 10c,d,g,h; authors' code)")


def _reference_schedule(ctx: Context, group: Group, sampler: str) -> tuple[np.ndarray, np.ndarray]:
    """The curves w0 and wT are compared with: Eq 21 (√ᾱ_t, √(1−ᾱ_t); the paper's plots) or the exact Eq 20."""
    choice = ctx.param("schedule_reference")
    if choice == "eq20":
        states = np.append(group.timesteps, -1)
        return ctx.schedule.eq20_weights(states, t_start=int(group.timesteps[0]), sampler=sampler)
    return state_schedule(ctx, group, sampler=sampler)


@register("decomposition-g1", params={
    "sampler": SAMPLER, "guidance": guidance(1.0), "reference": REFERENCE,
    "schedule_reference": Param(str, "eq21", choices=("eq21", "eq20"),
                                doc="the curves w0, wT follow: eq21 (√ᾱ_t, √(1−ᾱ_t), as Fig 10 plots) or exact Eq 20"),
    "max_rms": Param(float, 0.1, low=0.0, high=10.0,
                     doc="bound on the RMS distance of (w0, wT) from it; Fig 10a,b say 'track', 0.1 is ours"),
    "min_auc": MIN_AUC,
})
def decomposition_g1(ctx: Context):
    """Fig 10a,b: at g = 1, w0 and wT follow √ᾱ_t and √(1−ᾱ_t) more closely for memorized prompts."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    w0, wT = weights(group, ctx.param("reference"))
    d0, dT = schedule_deviation(w0.mean(1), wT.mean(1), *_reference_schedule(ctx, group, sampler))
    rms = np.sqrt((d0**2 + dT**2).mean(-1) / 2)  # (P,) over all states
    memorized = ctx.labels().memorized
    return ctx.verdict(combine([
        against_bound(rms[memorized], bound=ctx.param("max_rms"), direction="<",
                      what="RMS distance of (w0, wT) from the schedule", **ctx.decide_opts()),
        compare_groups(rms[memorized], rms[~memorized], alternative="less",
                       what="distance from the schedule", min_auc=ctx.param("min_auc"), **ctx.decide_opts()),
    ]))


@register("early-dominance", params={
    "sampler": SAMPLER, "guidance": guidance(7.5),
    "references": Param(list, ["x", "x_0"], item=str, choices=("x", "x_0"),
                        doc="the r's of Eq 14 checked, each on its own: x (Fig 10f) and x_0 (Fig 10h)"),
    "early_steps": EARLY_STEPS, "min_auc": MIN_AUC,
})
def early_dominance(ctx: Context):
    """Fig 10f,h: at g = 7.5, early on w0 overshoots √ᾱ_t and wT undershoots √(1−ᾱ_t) for memorized
    prompts, on x and on x_0, and more than for normal prompts."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    early = ctx.param("early_steps")
    memorized = ctx.labels().memorized
    opts = dict(min_auc=ctx.param("min_auc"), **ctx.decide_opts())
    parts = []
    for reference in ctx.param("references"):
        w0, wT = weights(group, reference)
        d0, dT = schedule_deviation(w0.mean(1), wT.mean(1), *state_schedule(ctx, group, sampler=sampler))
        # States 1..early: the states the first `early` steps produce (state 0 is x_T itself).
        window = slice(1, early + 1)
        d0, dT = d0[:, window].mean(-1), dT[:, window].mean(-1)
        parts += [
            against_bound(d0[memorized], bound=0.0, direction=">", what=f"w0 − √ᾱ_t (on {reference})",
                          **ctx.decide_opts()),
            against_bound(dT[memorized], bound=0.0, direction="<", what=f"wT − √(1−ᾱ_t) (on {reference})",
                          **ctx.decide_opts()),
            # The contrast is on δ = (w0 − √ᾱ_t) − (wT − √(1−ᾱ_t)), App H's one-number deviation.
            compare_groups((d0 - dT)[memorized], (d0 - dT)[~memorized], alternative="greater",
                           what=f"δ (on {reference})", **opts),
        ]
    return ctx.verdict(combine(parts))


def measure_severity(ctx: Context) -> dict:
    """Fig 11: per prompt Σ(E[w0] − √ᾱ), −Σ(E[wT] − √(1−ᾱ)) and Σδ over t = T … 1 (the states each step
    starts from, not x_0), and Σδ over the early window (states 1..early_steps), where the mechanism lives."""
    sampler = ctx.param("sampler")
    group = ctx.group(sampler, ctx.param("guidance"))
    w0, wT = weights(group, ctx.param("reference"))
    w0, wT = w0.mean(1), wT.mean(1)  # E over seeds: (P, S+1)
    sqrt_ab, sqrt_1mab = state_schedule(ctx, group, sampler=sampler)
    states = slice(0, None if ctx.param("include_final_state") else -1)
    window = slice(1, ctx.param("early_steps") + 1)
    return {"sums": severity_sums(w0[:, states], wT[:, states], sqrt_ab[states], sqrt_1mab[states]),
            "early_delta": severity_sums(w0[:, window], wT[:, window], sqrt_ab[window], sqrt_1mab[window])[2]}


@register("deviation-predicts-severity", params={
    "sampler": SAMPLER, "guidance": guidance(7.5), "reference": REFERENCE,
    "include_final_state": Param(bool, False,
                                 doc="add x_0 to the sums; false: Σ over t = T … 1, as Fig 11's sums are written"),
    "min_r": Param(float, 0.9, low=0.0, high=1.0, doc="floor of r for Σδ and Σ(w0 − √ᾱ) (Fig 11: 0.92)"),
    "min_r_wT": Param(float, 0.5, low=0.0, high=1.0, doc="floor of r for −Σ(wT − √(1−ᾱ)) (Fig 11: 0.70)"),
    "early_steps": EARLY_STEPS,
})
def deviation_predicts_severity(ctx: Context):
    """Fig 11: the score correlates with Σ(E[w0] − √ᾱ), −Σ(E[wT] − √(1−ᾱ)) and Σ δ(t)."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    measured = measure_severity(ctx)
    excess, suppression, overall = measured["sums"]
    scores = ctx.labels().scores
    opts = dict(sign=1, **ctx.decide_opts())
    parts = [
        correlation(scores, overall, what="r(score, Σ δ(t))", min_r=ctx.param("min_r"), **opts),
        correlation(scores, excess, what="r(score, Σ(E[w0] − √ᾱ))", min_r=ctx.param("min_r"), **opts),
        correlation(scores, suppression, what="r(score, −Σ(E[wT] − √(1−ᾱ)))", min_r=ctx.param("min_r_wT"), **opts),
    ]
    decision = combine(parts)
    # Late states are partly the score itself (the latent score's train term is cos(x_0, x), close to
    # w0 at the last states): the early window is reported beside the full sums.
    early_r = correlation(scores, measured["early_delta"], what="r(score, Σ δ(t) over the early states)",
                          min_r=ctx.param("min_r"), **opts)
    decision = dataclasses.replace(decision, reason=f"{decision.reason}; reported, not decided: {early_r.reason}")
    return ctx.verdict(decision, r=[p.measured for p in parts], r_early_delta=early_r.measured,
                       r_early_delta_ci=early_r.ci)
