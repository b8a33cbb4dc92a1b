"""App E: the findings hold under DDPM sampling too."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

from memharness.claims.checks.common import Context, run_check
from memharness.claims.checks.registry import CHECKS, register
from memharness.claims.params import SAMPLERS, Param
from memharness.claims.spec import load_spec
from memharness.claims.statistics import Decision, combine


@register("sampler-agnostic", params={
    "sampler": Param(str, "ddpm", choices=SAMPLERS, doc="the sampler the listed claims are re-run under (App E: DDPM)"),
    "claims": Param(list, ["overfit-without-guidance", "loss-reversal-with-guidance", "deviation-predicts-severity"],
                    item=str, doc="the claims re-run: App E's Fig 15 (Fig 1 under DDPM) and Fig 16 (Fig 11)"),
})
def sampler_agnostic(ctx: Context):
    """App E, Fig 15-16: the listed claims, re-run on the DDPM run (Eq 22-27), must hold as under DDIM."""
    sampler = ctx.param("sampler")
    if early := ctx.preflight(sampler):
        return early
    folder = Path(ctx.spec.source).parent
    parts, verdicts = [], []
    for claim_id in ctx.param("claims"):
        path = folder / f"{claim_id}.yaml"
        if claim_id not in CHECKS or not path.is_file():
            return ctx.skip(f"parameter claims names {claim_id!r}, which has no claim file or check")
        sub = load_spec(path)
        sub = dataclasses.replace(sub, parameters={**sub.parameters, "sampler": sampler})
        verdict = run_check(ctx.fixture, sub)
        verdicts.append(verdict)
        if verdict.verdict.value == "SKIP":
            return ctx.skip(f"{claim_id} under {sampler}: {verdict.reason}")
        parts.append(Decision(verdict.verdict, f"{claim_id} {verdict.verdict.value}", measured=verdict.measured,
                              ci=verdict.ci, test=verdict.test, statistic=verdict.statistic, p_value=verdict.p_value,
                              floor=f"{claim_id}: {verdict.floor}", higher_is_stronger=verdict.higher_is_stronger))
    decision = combine(parts)
    summary = ", ".join(p.reason for p in parts)
    return ctx.verdict(replace(decision, reason=f"under {sampler}: {summary}"),
                       sub_reasons={v.id: v.reason for v in verdicts})
