"""Real-time detection (App H): δ(t) > −γ flags memorized generations early, and δ is specific to them."""

from __future__ import annotations

from dataclasses import replace

from memharness.claims.checks._common import Context
from memharness.claims.checks._registry import register
from memharness.claims.statistics import against_bound, combine, compare_groups
from memharness.detection.signals import censored_steps, default_rho2, delta_states, window_score


@register("realtime-detection")
def realtime_detection(ctx: Context):
    """App H: the mean detection step of memorized prompts is small (paper: 3.31 ± 3.69), and the
    per-prompt δ score separates memorized from normal prompts (the flag is not raised for everyone)."""
    sampler, g = ctx.param("sampler", "ddim"), float(ctx.param("guidance", 7.5))
    if early := ctx.preflight(sampler, g):
        return early
    group = ctx.group(sampler, g)
    reference = str(ctx.param("reference", "online"))
    rho2 = ctx.param("rho2")
    rho2 = default_rho2(ctx.fixture) if rho2 is None else float(rho2)
    gamma, first = float(ctx.param("gamma", 0.2)), int(ctx.param("first_state", 1))
    n_steps = len(group.timesteps)
    window = min(int(ctx.param("window", 10)), n_steps - 1)
    d = delta_states(group, ctx.schedule, reference, rho2=rho2)  # (P, N, S)
    steps = censored_steps(d, gamma=gamma, first_state=first)  # a miss counts as S
    score = window_score(d, first_state=first, window=window).mean(axis=1)
    memorized = ctx.labels().memorized
    decision = combine([
        against_bound(steps.mean(axis=1)[memorized], bound=float(ctx.param("max_mean_step", 7.0)), direction="<",
                      what=f"mean detection step of memorized prompts (γ = {gamma:g}, {reference})",
                      **ctx.decide_opts()),
        compare_groups(score[memorized], score[~memorized], alternative="greater",
                       what=f"max δ ({reference}) over states {first}–{window}", alpha=float(ctx.param("alpha")),
                       min_auc=float(ctx.param("min_auc", 0.75)), **ctx.decide_opts()),
    ])
    flagged = steps < n_steps
    fpr, tpr = float(flagged[~memorized].mean()), float(flagged[memorized].mean())
    # App H's rule as stated flags at any step; its false-positive rate is reported, not tested.
    decision = replace(decision, reason=f"{decision.reason}; at γ = {gamma:g} the rule flags {tpr:.0%} of "
                                        f"memorized and {fpr:.0%} of normal generations")
    return ctx.verdict(decision, reference=reference, rho2=rho2, window=window,
                       step_std_memorized=float(steps[memorized].std()), flagged_memorized=tpr, flagged_normal=fpr)
