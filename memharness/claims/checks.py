"""Claim checks: fixture arrays → analysis functions → statistical decision → Verdict.

Each check is registered under the id of its claim file and reads its choices
from the file's ``parameters``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from memharness.analysis import guidance_slope, overestimation_factor, x0_hat_norm2
from memharness.claims.labels import memorization_labels
from memharness.claims.spec import ClaimSpec
from memharness.claims.statistics import bootstrap_mean_ci, interval_vs_band
from memharness.claims.verdict import Outcome, Verdict
from memharness.trace.store import Fixture

CheckFn = Callable[[Fixture, ClaimSpec], Verdict]
CHECKS: dict[str, CheckFn] = {}


def register(claim_id: str) -> Callable[[CheckFn], CheckFn]:
    def wrap(fn: CheckFn) -> CheckFn:
        CHECKS[claim_id] = fn
        return fn

    return wrap


def _verdict(spec: ClaimSpec, outcome: Outcome, reason: str, **kw) -> Verdict:
    return Verdict(
        id=spec.id, title=spec.title, reference=spec.reference, verdict=outcome,
        paper=spec.paper_value, reason=reason, **kw,
    )


def first_step_k(fixture: Fixture, sampler: str, guidance: float, step: int) -> np.ndarray:
    """k = ‖x̂0‖/‖x‖ at denoising step ``step``, mean over seeds: (P,)."""
    group = fixture.group(sampler, guidance)
    x0n2 = x0_hat_norm2(
        group.inner("x0_err", "x0_err")[..., step],
        group.inner("x0_err", "x")[..., step],
        group.inner_final("x", "x"),
    )
    return overestimation_factor(x0n2, group.inner_final("x", "x")).mean(axis=1)


def decide_linear_in_guidance(
    guidance: np.ndarray, k: np.ndarray, memorized: np.ndarray, *, tolerance: float, min_group: int, alpha: float
) -> tuple[Outcome, dict]:
    """Eq 13 on (P, G) first-step k: the memorized prompts' mean slope of k on g must lie in 1 ± tolerance.

    Pure: takes arrays, returns the outcome and the numbers behind it.
    """
    slopes = guidance_slope(guidance, k)
    mem, norm = slopes[memorized], slopes[~memorized]
    info: dict = {"n": {"memorized": int(mem.size), "normal": int(norm.size)}}
    if mem.size < min_group:
        return Outcome.INCONCLUSIVE, {**info, "reason": f"{mem.size} memorized prompts, fewer than {min_group}"}
    measured = float(mem.mean())
    ci = bootstrap_mean_ci(mem)
    info.update(measured=measured, ci=ci, ratio=(k[memorized] / guidance).mean(axis=0).tolist())
    if norm.size >= 2:
        test = stats.mannwhitneyu(mem, norm, alternative="greater")
        info.update(test="Mann-Whitney U (memorized > normal slope)", statistic=float(test.statistic),
                    p_value=float(test.pvalue), normal_slope=float(norm.mean()))
    position = interval_vs_band(ci, 1.0 - tolerance, 1.0 + tolerance)
    band = f"1 ± {tolerance:g}"
    if position == "outside":
        return Outcome.FAIL, {**info, "reason": f"slope of k on g is {measured:.3f}, outside {band}"}
    if position == "straddles":
        return Outcome.INCONCLUSIVE, {**info, "reason": f"the CI of the slope straddles the edge of {band}"}
    return Outcome.PASS, {**info, "reason": f"slope of k on g is {measured:.3f}, within {band}"}


@register("linear-in-guidance")
def check_linear_in_guidance(fixture: Fixture, spec: ClaimSpec) -> Verdict:
    p = spec.parameters
    sampler, step = p.get("sampler", "ddim"), int(p.get("step", 0))
    scales = fixture.guidance_scales(sampler)
    if len(scales) < 2:
        return _verdict(spec, Outcome.SKIP, f"needs ≥ 2 guidance scales in a {sampler} run; the fixture has {scales}")
    labels = memorization_labels(
        fixture, sampler=p.get("label_sampler", "ddim"), guidance=float(p.get("label_guidance", 7.5)),
        threshold=float(p.get("threshold", 0.75)),
    )
    if labels is None:
        return _verdict(spec, Outcome.SKIP, "the fixture has no memorization scores for the label source")
    g = np.asarray(scales)
    k = np.stack([first_step_k(fixture, sampler, s, step) for s in scales], axis=1)  # (P, G)
    outcome, info = decide_linear_in_guidance(
        g, k, labels.memorized, tolerance=float(p.get("slope_tolerance", 0.1)),
        min_group=int(p.get("min_group", 5)), alpha=float(spec.test.get("alpha", 0.05)),
    )
    reason = info["reason"]
    if "ratio" in info:
        ratios = ", ".join(f"{r:.3f}" for r in info["ratio"])
        reason += f"; k/g = {ratios} at g = {', '.join(f'{s:g}' for s in scales)}"
    if "normal_slope" in info:
        reason += f"; normal prompts' slope {info['normal_slope']:.3f}"
    return _verdict(
        spec, outcome, reason, measured=info.get("measured"), ci=info.get("ci"), n=info["n"],
        test=info.get("test"), statistic=info.get("statistic"), p_value=info.get("p_value"),
        details={"labels": f"{labels.scorer} on {labels.source}, threshold {p.get('threshold', 0.75)}"},
    )
