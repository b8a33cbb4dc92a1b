"""The numbers behind each redrawn figure, from one model's fixture (no plotting here).

Every function reads the same quantities, with the same claim parameters, as the claim
check the figure illustrates, so a figure shows what was tested. A function raises
:class:`Unavailable` with a one-line reason when the fixture lacks what it needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memharness.analysis import (
    noise_cosine_with_xT,
    residual_cosine_with_neg_x,
)
from memharness.claims.checks import CHECKS, Context
from memharness.claims.checks.common import overestimation, weights, x0_direction, x0_error_norm2
from memharness.claims.checks.decomposition import measure_severity
from memharness.claims.checks.diversity import measure_alignment, measure_trace
from memharness.claims.checks.noise import measure_magnitude
from memharness.claims.checks.overestimation import measure_k_against_guidance
from memharness.claims.checks.overfitting import measure_scores
from memharness.claims.spec import ClaimSpec
from memharness.schedule import NoiseSchedule
from memharness.scoring.labels import Labels, memorization_labels
from memharness.trace.group import Group
from memharness.trace.store import Fixture


class Unavailable(Exception):
    """The fixture lacks what a figure needs; the message says what."""


@dataclass
class Source:
    """One model's fixture and the claim parameters its figures follow."""

    model: str
    fixture: Fixture
    specs: dict[str, ClaimSpec] = field(default_factory=dict)
    _labels: dict[tuple, Labels | None] = field(default_factory=dict, repr=False)

    def context(self, claim: str, **overrides: Any) -> Context:
        """The claim's check context: its parameters validated, defaults from the check's declaration."""
        spec = self.specs.get(claim) or ClaimSpec(id=claim, title="", reference="", statement="", needs={},
                                                  metric="", test={}, paper_value="", source=claim)
        spec = dataclasses.replace(spec, parameters={**spec.parameters, **overrides})
        return Context(self.fixture, spec, declared=CHECKS[claim].params)

    def param(self, claim: str, name: str) -> Any:
        return self.context(claim).param(name)

    def labels(self, claim: str) -> Labels:
        key = (self.param(claim, "label_sampler"), float(self.param(claim, "label_guidance")),
               float(self.param(claim, "threshold")))
        if key not in self._labels:
            self._labels[key] = memorization_labels(self.fixture, sampler=key[0], guidance=key[1], threshold=key[2])
        labels = self._labels[key]
        if labels is None:
            raise Unavailable(f"no memorization scores for {key[0]} g={key[1]:g}")
        return labels

    def group(self, sampler: str, guidance: float) -> Group:
        if sampler not in self.fixture.runs:
            raise Unavailable(f"no {sampler} run")
        if float(guidance) not in self.fixture.guidance_scales(sampler):
            have = ", ".join(f"{g:g}" for g in self.fixture.guidance_scales(sampler))
            raise Unavailable(f"the {sampler} run has no g={float(guidance):g} (has {have})")
        return self.fixture.group(sampler, float(guidance))

    @property
    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule.from_config(self.fixture.model["scheduler"])

    def state_schedule(self, group: Group, sampler: str) -> tuple[np.ndarray, np.ndarray]:
        """(√ᾱ, √(1−ᾱ)) of the states x_T … x_0, as the decomposition checks use them."""
        return self.schedule.theoretical_weights(np.append(group.timesteps, -1), sampler=sampler)


# --------------------------------------------------------------------------- Fig 1 (and 15 under DDPM)
def x0_error_and_direction(src: Source, *, sampler: str = "ddim", scales=(1.0, 7.5), steps=(1, 10, 50)) -> dict:
    """Per generation (prompt × seed): ‖x̂0 − x‖² and cos(x̂0, x) after each of ``steps`` steps, per g."""
    labels = src.labels("overfit-without-guidance")
    panels = {}
    for g in scales:
        group = src.group(sampler, g)
        err, cos = x0_error_norm2(group), x0_direction(group)
        n_steps = err.shape[-1]
        panels[float(g)] = [(min(s, n_steps), err[..., min(s, n_steps) - 1], cos[..., min(s, n_steps) - 1])
                            for s in steps]
    return {"panels": panels, "scores": labels.scores, "memorized": labels.memorized, "scorer": labels.scorer,
            "sampler": sampler}


# --------------------------------------------------------------------------- Fig 3
def scores_with_and_without_guidance(src: Source) -> dict:
    claim = "guidance-drives-memorization"
    measured = measure_scores(src.context(claim))
    if isinstance(measured, str):
        raise Unavailable(measured)
    labels = src.labels(claim)
    return {**measured, "memorized": labels.memorized, "scorer": labels.scorer, "sampler": src.param(claim, "sampler")}


# --------------------------------------------------------------------------- Fig 5, Fig 13
def _first_step(group: Group, a: str, b: str) -> np.ndarray:
    return group.inner(a, b)[..., 0]


def noise_cosines(src: Source) -> dict:
    """Fig 5 (a–d) per generation at t = T: cos(ε_u, x_T), cos(ε_c, x_T), cos(ε_u − x_T, −x), cos(ε_c − x_T, −x)."""
    claim = "predictions-follow-noise"
    sampler, g = src.param(claim, "sampler"), float(src.param(claim, "guidance"))
    labels = src.labels(claim)
    group = src.group(sampler, g)
    xT2, x2 = group.inner_final("x_T", "x_T"), group.inner_final("x", "x")
    residuals = ("eps_u_res", "eps_c_res")
    panels = [noise_cosine_with_xT(_first_step(group, r, r), _first_step(group, r, "x_T"), xT2) for r in residuals]
    panels += [residual_cosine_with_neg_x(_first_step(group, r, "x"), _first_step(group, r, r), x2) for r in residuals]
    return {"panels": panels, "memorized": labels.memorized, "sampler": sampler, "guidance": g}


def noise_residuals(src: Source) -> dict:
    """Fig 13: ‖ε_u − x_T‖² and ‖ε_c − x_T‖² at t = T per generation; and ‖ε_c − ε_u‖ / (s‖x‖) per prompt (Eq 11)."""
    claim = "magnitude-explained"
    sampler, g = src.param(claim, "sampler"), float(src.param(claim, "guidance"))
    labels = src.labels(claim)
    group = src.group(sampler, g)
    ru2, rc2 = _first_step(group, "eps_u_res", "eps_u_res"), _first_step(group, "eps_c_res", "eps_c_res")
    measured = measure_magnitude(src.context(claim))
    return {"uncond": ru2, "cond": rc2, "ratio": measured["ratio"], "s": measured["s"], "memorized": labels.memorized,
            "tolerance": src.param(claim, "ratio_tolerance"), "sampler": sampler, "guidance": g}


# --------------------------------------------------------------------------- Fig 7, Fig 8
def trace_covariance(src: Source) -> dict:
    claim = "diversity-collapse"
    sampler, g = src.param(claim, "sampler"), src.param(claim, "guidance")
    labels = src.labels(claim)
    src.group(sampler, g)  # Unavailable with its reason when the run lacks it
    measured = measure_trace(src.context(claim))
    return {**measured, "scores": labels.scores, "memorized": labels.memorized, "scorer": labels.scorer,
            "sampler": sampler, "guidance": g}


def update_alignment(src: Source) -> dict:
    claim = "update-alignment"
    sampler, g = src.param(claim, "sampler"), src.param(claim, "guidance")
    labels = src.labels(claim)
    src.group(sampler, g)
    measured = measure_alignment(src.context(claim))
    return {"cos": measured["cos"], "pca": measured["pca"], "early": measured["early"],
            "memorized": labels.memorized, "sampler": sampler, "guidance": g}


# --------------------------------------------------------------------------- Fig 10, Fig 11 (and 16)
def decomposition(src: Source, *, sampler: str = "ddim", scales=(1.0, 7.5), references=("x", "x_0")) -> dict:
    """Fig 10: w0, wT per prompt of each group (seeds averaged) over the states x_T … x_0, and the schedule,
    per (g, reference); the figure draws each group's mean over prompts with its CI."""
    labels = src.labels("early-dominance")
    memorized = labels.memorized
    panels = {}
    for g in scales:
        group = src.group(sampler, g)
        sqrt_ab, sqrt_1mab = src.state_schedule(group, sampler)
        for reference in references:
            w0, wT = weights(group, reference)
            w0, wT = w0.mean(1), wT.mean(1)  # (P, S+1): E over seeds, as the checks
            panels[(float(g), reference)] = {
                name: (w0[members], wT[members])
                for name, members in (("normal", ~memorized), ("memorized", memorized)) if members.any()
            }
            panels[(float(g), reference)]["schedule"] = (sqrt_ab, sqrt_1mab)
    return {"panels": panels, "sampler": sampler, "n": labels.n, "memorized": memorized,
            "early": int(src.param("early-dominance", "early_steps"))}


def severity(src: Source, *, sampler: str | None = None) -> dict:
    """Fig 11: the three sums of the deviation from the schedule per prompt, and the score."""
    claim = "deviation-predicts-severity"
    ctx = src.context(claim, **({"sampler": sampler} if sampler else {}))
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    labels = src.labels(claim)
    src.group(sampler, g)
    sums = measure_severity(ctx)["sums"]
    r = [_pearson(labels.scores, s) for s in sums]
    return {"sums": sums, "r": r, "scores": labels.scores, "memorized": labels.memorized, "scorer": labels.scorer,
            "sampler": sampler, "guidance": g}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


# --------------------------------------------------------------------------- Fig 12, Eq 13
def overestimation_over_steps(src: Source, *, scales=(1.0, 7.5)) -> dict:
    """Fig 12: k = ‖x̂0(t)‖/‖x‖ per generation and step, per g."""
    claim = "overestimation"
    sampler = src.param(claim, "sampler")
    labels = src.labels(claim)
    ks, timesteps = {}, None
    for g in scales:
        group = src.group(sampler, g)
        ks[float(g)] = overestimation(group)  # (P, N, S)
        timesteps = group.timesteps
    return {"k": ks, "timesteps": timesteps, "memorized": labels.memorized, "sampler": sampler,
            "early": int(src.param(claim, "early_steps"))}


def overestimation_against_guidance(src: Source) -> dict:
    """Eq 13: first-step k (mean over seeds) per prompt at every recorded g."""
    claim = "linear-in-guidance"
    sampler = src.param(claim, "sampler")
    scales = src.fixture.guidance_scales(sampler)
    if len(scales) < 2:
        raise Unavailable(f"needs ≥ 2 guidance scales in a {sampler} run (has {len(scales)})")
    labels = src.labels(claim)
    measured = measure_k_against_guidance(src.context(claim))
    return {"scales": measured["scales"], "k": measured["k"], "memorized": labels.memorized, "sampler": sampler}


# --------------------------------------------------------------------------- sparklines
def group_curves(src: Source, *, sampler: str = "ddim", guidance: float = 7.5) -> dict:
    """Per group, mean over prompts and seeds of k(t) (per step) and w0(t) on x (per state), and √ᾱ_t."""
    labels = src.labels("overestimation")
    group = src.group(sampler, guidance)
    k = overestimation(group).mean(1)  # (P, S)
    w0, _ = weights(group, "x")
    w0 = w0.mean(1)  # (P, S+1)
    sqrt_ab, _ = src.state_schedule(group, sampler)
    curves = {}
    for name, members in (("memorized", labels.memorized), ("normal", ~labels.memorized)):
        if members.any():
            curves[name] = {"k": k[members].mean(0), "w0": w0[members].mean(0), "n": int(members.sum())}
    return {"curves": curves, "schedule_w0": sqrt_ab, "sampler": sampler, "guidance": float(guidance)}


# --------------------------------------------------------------------------- dose response (not in the paper)
def duplication_counts(src: Source) -> np.ndarray:
    """Per prompt, the manifest's ``duplicates`` (NaN where a prompt has none); Unavailable when no prompt has one."""
    counts = np.array([np.nan if p.get("duplicates") is None else float(p["duplicates"]) for p in src.fixture.prompts])
    if not np.isfinite(counts).any():
        raise Unavailable("its prompts carry no duplication count (the manifest's optional prompt field duplicates)")
    return counts


def dose_response(src: Source) -> dict:
    """Score at g = 1 and g = 7.5 and the first-step k = ‖x̂0(T)‖/‖x‖ (mean over seeds) against each
    prompt's duplication count, with Spearman's ρ of each against log count over the prompts that have one."""
    from scipy.stats import spearmanr

    counts = duplication_counts(src)
    has = np.isfinite(counts)
    claim = "guidance-drives-memorization"
    sampler = src.param(claim, "sampler")
    low, high = float(src.param(claim, "baseline_guidance")), float(src.param(claim, "guidance"))
    labels = src.labels(claim)
    ids = [p["id"] for p in src.fixture.prompts]
    scores, ks, rho = {}, {}, {}
    for g in (low, high):
        by_prompt = src.fixture.scores_for(sampler, g)
        if by_prompt is None:
            raise Unavailable(f"no memorization scores for {sampler} g={g:g}")
        scores[g] = np.array([by_prompt[pid]["score"] for pid in ids], dtype=float)
        ks[g] = overestimation(src.group(sampler, g))[..., 0].mean(1)  # (P,)
        for name, v in (("score", scores[g]), ("k", ks[g])):
            r = spearmanr(np.log(counts[has]), v[has]).statistic if has.sum() > 2 else float("nan")
            rho[(name, g)] = float(r)
    return {"counts": counts, "scores": scores, "k": ks, "rho": rho, "low": low, "high": high,
            "memorized": labels.memorized, "scorer": labels.scorer, "sampler": sampler}
