"""Mitigation (App H, Fig 25): switching guidance off once δ(t) flags a seed lowers the train similarity."""

from __future__ import annotations

import dataclasses

import numpy as np

from memharness.claims.checks._common import Context
from memharness.claims.checks._registry import register
from memharness.claims.statistics import Decision, paired_increase
from memharness.claims.verdict import Outcome
from memharness.scoring.latent import LATENT_SCORER
from memharness.trace import schema


def _mitigated_train(ctx: Context, section: dict, method: str, scorer: str) -> np.ndarray | str:
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


@register("mitigation")
def mitigation(ctx: Context):
    """App H, Fig 25: SSCD_train (or the latent cos(x_0, x)) of memorized prompts drops with δ mitigation."""
    section = ctx.fixture.mitigation
    if section is None:
        return ctx.skip("the fixture has no mitigation runs; record them with `memharness mitigate --model M`")
    settings = section["settings"]
    method, gamma = str(ctx.param("method", "delta")), float(ctx.param("gamma", 0.2))
    sampler, g = str(ctx.param("label_sampler")), float(ctx.param("label_guidance"))
    if method not in settings["methods"]:
        return ctx.skip(f"the mitigation runs have no {method!r} method (have {', '.join(settings['methods'])})")
    recorded_gamma = settings["methods"][method].get("gamma")
    if method == "delta" and recorded_gamma is not None and float(recorded_gamma) != gamma:
        return ctx.skip(f"the mitigation runs used γ = {recorded_gamma:g}; the claim is about γ = {gamma:g}")
    if settings.get("sampler") != sampler or float(settings.get("guidance", -1)) != g:
        return ctx.skip(f"the mitigation runs are {settings.get('sampler')} g={settings.get('guidance')}, "
                        f"not the labels' {sampler} g={g:g}")
    if reason := ctx.missing(sampler, g):
        return ctx.skip(reason)
    run = ctx.fixture.runs[sampler]["settings"]
    if settings["seeds"] != run["seeds"] or settings.get("num_inference_steps") != run["num_inference_steps"]:
        return ctx.skip(f"the mitigation runs' seeds or steps differ from the {sampler} run's; re-run "
                        "`memharness mitigate --overwrite`")
    labels = ctx.labels()
    scorer = labels.scorer
    after = _mitigated_train(ctx, section, method, scorer)
    if isinstance(after, str):
        return ctx.skip(after)
    by_prompt = ctx.fixture.scores["values"][sampler][schema.guidance_key(g)]
    before = np.array([float(by_prompt[pid]["train"]) for pid in labels.prompt_ids])
    mem = labels.memorized
    similarity = "latent cos(x_0, x)" if scorer == LATENT_SCORER else f"SSCD_train ({scorer})"
    min_drop, least = float(ctx.param("min_drop", 0.1)), int(ctx.param("min_group"))
    if mem.sum() < least:
        return ctx.verdict(Decision(Outcome.INCONCLUSIVE, f"{int(mem.sum())} memorized prompts, fewer than {least}"))
    # Wilcoxon signed-rank, one-sided: unmitigated > mitigated per memorized prompt; measured = mean drop.
    decision = paired_increase(before[mem], after[mem], what=f"drop in {similarity}", min_increase=min_drop,
                               **ctx.decide_opts())
    if decision.measured is not None:
        b, a = float(before[mem].mean()), float(after[mem].mean())
        head = f"{similarity} of memorized prompts {b:.3f} → {a:.3f} with {method} (γ = {gamma:g})"
        p = f", p={decision.p_value:.2g}" if decision.p_value is not None else ""
        tail = {
            Outcome.PASS: f": drop {decision.measured:.3g}{p}",
            Outcome.FAIL: f": no drop of {min_drop:g} or more (mean drop {decision.measured:.3g}, "
                          f"CI [{decision.ci[0]:.3g}, {decision.ci[1]:.3g}]{p})",
        }.get(decision.outcome, f": mean drop {decision.measured:.3g}{p}, neither shown nor ruled out")
        decision = dataclasses.replace(decision, reason=head + tail)
    details = {
        "similarity": similarity,
        "before_memorized": float(before[mem].mean()) if mem.any() else None,
        "after_memorized": float(after[mem].mean()) if mem.any() else None,
        "gamma": gamma,
        "method": method,
    }
    for other in (m for m in settings["methods"] if m != method):  # for comparison, not part of the verdict
        values = _mitigated_train(ctx, section, other, scorer)
        if not isinstance(values, str) and mem.any():
            details[f"after_memorized_{other}"] = float(values[mem].mean())
    switch = np.stack([ctx.fixture.mitigation_arrays(pid)[f"{method}/switch_step"] for pid in labels.prompt_ids])
    if mem.any():
        flagged = switch[mem] >= 0
        details["flagged_seeds_memorized"] = float(flagged.mean())
        if flagged.any():
            details["mean_detection_step_memorized"] = float(switch[mem][flagged].mean())
    return ctx.verdict(decision, **details)
