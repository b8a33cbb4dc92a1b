"""Mitigation (App H, Fig 25): switching guidance off once δ(t) flags a seed lowers the train similarity."""

from __future__ import annotations

import dataclasses

import numpy as np

from memharness.claims.checks.common import Context
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import combine, mean_difference, paired_increase
from memharness.mitigation.constants import MITIGATION_METHODS
from memharness.scoring.latent import LATENT_SCORER


def mitigated_train(ctx: Context, section: dict, method: str, scorer: str) -> np.ndarray | str:
    """Train similarity of the mitigated generations per prompt, in the fixture scorer's terms; or a SKIP reason."""
    ids = [p["id"] for p in ctx.fixture.prompts]
    if scorer == LATENT_SCORER:  # mean over seeds of cos(x_0, x), as the latent score's "train"
        return np.array([ctx.fixture.mitigation_arrays(pid)[f"{method}/train_cos"].astype(np.float64).mean()
                         for pid in ids])
    scores = section.get("scores") or {}
    values = (scores.get("values") or {}).get(method) or {}
    if scores.get("scorer") != scorer or any(pid not in values for pid in ids):
        return (f"the fixture is scored with {scorer} but its mitigated generations are not; record them with "
                f"`memharness mitigate --images DIR` and score them with `memharness score --images DIR`")
    return np.array([float(values[pid]["train"]) for pid in ids])


def unmitigated_train(ctx: Context, sampler: str, g: float, scorer: str) -> np.ndarray:
    """Train similarity of the unmitigated generations per prompt, from the same source as the mitigated."""
    if scorer == LATENT_SCORER:  # from the trajectories, not the scores: a permutation of the scores moves labels only
        group = ctx.group(sampler, g)
        x0_x, x0_2, x_2 = group.inner_final("x_0", "x"), group.inner_final("x_0", "x_0"), group.inner_final("x", "x")
        return (x0_x / np.sqrt(x0_2 * x_2)).mean(axis=1)
    by_prompt = ctx.fixture.scores_for(sampler, g)
    return np.array([float(by_prompt[pid]["train"]) for pid in ctx.labels().prompt_ids])


def _unusable_section(ctx: Context, section: dict | None) -> str | None:
    """Why the fixture's mitigation runs cannot answer this claim's question (method, γ, the labels' run), if so."""
    if section is None:
        return "the fixture has no mitigation runs; record them with `memharness mitigate --model M`"
    settings = section["settings"]
    method, gamma = ctx.param("method"), ctx.param("gamma")
    sampler, g = ctx.param("label_sampler"), ctx.param("label_guidance")
    if method not in settings["methods"]:
        return f"the mitigation runs have no {method!r} method (have {', '.join(settings['methods'])})"
    recorded_gamma = settings["methods"][method].get("gamma")
    if method == "delta" and recorded_gamma is not None and float(recorded_gamma) != gamma:
        return f"the mitigation runs used γ = {recorded_gamma:g}; the claim is about γ = {gamma:g}"
    if settings.get("sampler") != sampler or float(settings.get("guidance", -1)) != g:
        return (f"the mitigation runs are {settings.get('sampler')} g={settings.get('guidance')}, "
                f"not the labels' {sampler} g={g:g}")
    if reason := ctx.missing(sampler, g):
        return reason
    run = ctx.fixture.runs[sampler]["settings"]
    if settings["seeds"] != run["seeds"] or settings.get("num_inference_steps") != run["num_inference_steps"]:
        return (f"the mitigation runs' seeds or steps differ from the {sampler} run's; re-run "
                "`memharness mitigate --overwrite`")
    return None


@register("mitigation", params={
    "method": Param(str, "delta", choices=MITIGATION_METHODS,
                    doc="the policy judged: delta (App H: g = 0 once δ(t) > −γ) or a Jain et al. (2025) variant"),
    "gamma": Param(float, 0.2, low=0.0, high=10.0,
                   doc="the margin of the delta rule δ(t) > −γ (App H, Fig 25: 0.2); runs at another γ: SKIP"),
    "min_drop": Param(float, 0.2, low=0.0, high=2.0, doc="the memorized prompts' mean drop that counts"),
    "min_excess_drop": Param(float, 0.1, low=0.0, high=2.0,
                             doc="how much more the memorized prompts must drop than the normal ones"),
})
def mitigation(ctx: Context):
    """App H, Fig 25: SSCD_train (or the latent cos(x_0, x)) of memorized prompts drops with δ mitigation,
    and drops more than that of normal prompts (a policy that flags everyone is unconditional sampling)."""
    section = ctx.fixture.mitigation
    if reason := _unusable_section(ctx, section):
        return ctx.skip(reason)
    settings = section["settings"]
    method, gamma = ctx.param("method"), ctx.param("gamma")
    sampler, g = ctx.param("label_sampler"), ctx.param("label_guidance")
    labels = ctx.labels()
    scorer = labels.scorer
    after = mitigated_train(ctx, section, method, scorer)
    if isinstance(after, str):
        return ctx.skip(after)
    if early := ctx.preflight(sampler, g):
        return early
    before = unmitigated_train(ctx, sampler, g, scorer)
    drop, mem = before - after, labels.memorized
    similarity = "latent cos(x_0, x)" if scorer == LATENT_SCORER else f"SSCD_train ({scorer})"
    opts = ctx.decide_opts()
    decision = combine([
        paired_increase(before[mem], after[mem], what=f"drop in {similarity} of memorized prompts",
                        min_increase=ctx.param("min_drop"), **opts),
        mean_difference(drop[mem], drop[~mem], min_difference=ctx.param("min_excess_drop"),
                        what="drop", **opts),
    ])
    switch = np.stack([ctx.fixture.mitigation_arrays(pid)[f"{method}/switch_step"] for pid in labels.prompt_ids])
    flagged = (switch >= 0).mean(axis=1)
    head = (f"{similarity} with {method} (γ = {gamma:g}): memorized {before[mem].mean():.3f} → "
            f"{after[mem].mean():.3f}, normal {before[~mem].mean():.3f} → {after[~mem].mean():.3f}; the policy acts "
            f"on {flagged[mem].mean():.0%} of memorized and {flagged[~mem].mean():.0%} of normal generations")
    decision = dataclasses.replace(decision, reason=f"{head}; {decision.reason}")
    details = {
        "similarity": similarity, "gamma": gamma, "method": method,
        "before_memorized": float(before[mem].mean()), "after_memorized": float(after[mem].mean()),
        "before_normal": float(before[~mem].mean()), "after_normal": float(after[~mem].mean()),
        "flagged_memorized": float(flagged[mem].mean()), "flagged_normal": float(flagged[~mem].mean()),
    }
    for other in (m for m in settings["methods"] if m != method):  # for comparison, not part of the verdict
        values = mitigated_train(ctx, section, other, scorer)
        if not isinstance(values, str):
            details[f"after_memorized_{other}"] = float(values[mem].mean())
            details[f"after_normal_{other}"] = float(values[~mem].mean())
    flagged_seeds = switch[mem] >= 0
    if flagged_seeds.any():
        details["mean_detection_step_memorized"] = float(switch[mem][flagged_seeds].mean())
    return ctx.verdict(decision, **details)
