"""Real-time detection (App H): δ(t) > −γ flags memorized generations early, and not normal ones."""

from __future__ import annotations

from dataclasses import replace

from memharness.claims.checks.common import SAMPLER, Context, guidance
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import against_bound, combine, compare_groups, mean_difference
from memharness.detection.signals import censored_steps, default_rho2, delta_states, window_score


@register("realtime-detection", params={
    "sampler": SAMPLER, "guidance": guidance(7.5),
    "reference": Param(str, "online", choices=("online", "train", "final"),
                       doc="r of δ(t): online ρ·x̂0(t)/‖x̂0(t)‖ (ours; App H does not say), train x, final x_0"),
    "gamma": Param(float, 0.2, low=-10.0, high=10.0, doc="the rule's margin; below 0 a threshold above δ = 0"),
    "first_state": Param(int, 1, low=0, high=10_000,
                         doc="the first state scored; 0 is x_T, where δ is the same for every prompt (ours)"),
    "horizon": Param(int, None, low=1, high=10_000, nullable=True,
                     doc="steps a flag counts in, a miss counting as this; null: all (App H acts at any step)"),
    "window": Param(int, 10, low=1, high=10_000,
                    doc="the reported score is max δ over states first_state…window (the early steps, Fig 12)"),
    "rho2": Param(float, None, low=1e-12, high=1e15, nullable=True,
                  doc="ρ², the online reference's squared norm; null: d, the latent size (unit variance; ours)"),
    "max_mean_step": Param(float, 7.0, low=0.0, high=10_000.0,
                           doc="bound on the memorized mean detection step: App H's 3.31 ± 3.69, mean + 1 sd"),
    "min_flag_gap": Param(float, 0.5, low=0.0, high=1.0,
                          doc="the share of seeds flagged, memorized minus normal, must exceed it (ours)"),
    "min_auc": Param(float, 0.75, low=0.5, high=1.0,
                     doc="the floor the reported (not decided) AUC of the window's max δ is held to"),
})
def realtime_detection(ctx: Context):
    """App H: the rule δ(t) > −γ flags memorized generations within a few steps (paper: 3.31 ± 3.69), and
    it flags them much more often than normal generations; a rule that flags everyone detects nothing."""
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    reference = ctx.param("reference")
    rho2 = ctx.param("rho2")
    rho2 = default_rho2(ctx.fixture) if rho2 is None else rho2
    gamma, first = ctx.param("gamma"), ctx.param("first_state")
    n_steps = len(group.timesteps)
    d = delta_states(group, ctx.schedule, reference, rho2=rho2)  # (P, N, S)
    horizon = n_steps if ctx.param("horizon") is None else min(ctx.param("horizon"), n_steps)
    steps = censored_steps(d[..., :horizon], gamma=gamma, first_state=first)  # a miss counts as horizon
    flagged = (steps < horizon).mean(axis=1)  # (P,) share of each prompt's seeds flagged
    memorized = ctx.labels().memorized
    opts = ctx.decide_opts()
    decision = combine([
        against_bound(steps.mean(axis=1)[memorized], bound=ctx.param("max_mean_step"), direction="<",
                      what=f"mean detection step of memorized prompts (γ = {gamma:g}, {reference})", **opts),
        mean_difference(flagged[memorized], flagged[~memorized], min_difference=ctx.param("min_flag_gap"),
                        what=f"share of seeds flagged within {horizon} steps", **opts),
    ])
    window = min(ctx.param("window"), n_steps - 1)
    score = window_score(d, first_state=first, window=window).mean(axis=1)
    separation = compare_groups(score[memorized], score[~memorized], alternative="greater",
                                what=f"max δ ({reference}) over states {first}–{window}",
                                min_auc=ctx.param("min_auc"), **opts)
    fpr, tpr = float(flagged[~memorized].mean()), float(flagged[memorized].mean())
    decision = replace(decision, reason=f"{decision.reason}; the rule flags {tpr:.0%} of memorized and {fpr:.0%} "
                                        f"of normal generations; reported, not decided: {separation.reason}")
    return ctx.verdict(decision, reference=reference, rho2=rho2, window=window, horizon=horizon,
                       step_std_memorized=float(steps[memorized].std()), flagged_memorized=tpr, flagged_normal=fpr,
                       separation_auc=separation.measured)
