"""How well each detector separates memorized from normal prompts on a recorded fixture (App H, §4).

No sampling: a fixture's Gram holds every inner product the detectors need. Detectors, each
scored per prompt (mean over seeds) and judged by AUC and TPR at a low FPR against the fixture's
memorization labels (§3.1):

- δ(t) against the reference online, final or train (App H; memharness.analysis.detection);
  score = max δ over states first_state..window; App H's rule flags a generation at the
  first state ≥ first_state with δ > −γ (its detection step);
- Wen et al.: ‖ε_c − ε_u‖ averaged over steps [wen_start, wen_end) and the first
  wen_generations seeds (§4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memharness.analysis import roc_auc, tpr_at_fpr, wen_score
from memharness.detection.signals import (
    REFERENCES,
    censored_steps,
    default_rho2,
    delta_states,
    guidance_magnitudes,
    window_score,
)
from memharness.errors import MemharnessError
from memharness.schedule import NoiseSchedule
from memharness.scoring.labels import THRESHOLD, memorization_labels
from memharness.trace.store import Fixture


@dataclass(frozen=True)
class DetectorRow:
    """One detector's result. Step fields are None for detectors without a flag rule (Wen)."""

    detector: str  # key: delta-online, delta-final, delta-train, wen
    label: str  # for tables
    auc: float
    tpr: float  # TPR at the FPR of DetectionResult.settings["fpr"]
    threshold: float  # score > threshold flags
    n_memorized: int
    n_normal: int
    step_mean: float | None = None  # App H detection step over memorized generations (misses count as S)
    step_std: float | None = None
    flagged_memorized: float | None = None  # fraction of memorized generations flagged at γ (any state)
    flagged_normal: float | None = None  # the same for normal generations: the rule's FPR at γ


@dataclass(frozen=True)
class DetectionResult:
    model: str
    fixture: str
    labels: str  # where the labels come from
    settings: dict[str, Any]
    rows: tuple[DetectorRow, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "fixture": self.fixture, "labels": self.labels, "settings": self.settings,
                "detectors": [asdict(r) for r in self.rows]}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise MemharnessError(message)


def evaluate_detectors(
    fixture: Fixture, *, gamma: float = 0.2, window: int = 10, first_state: int = 1, rho2: float | None = None,
    wen_start: int = 0, wen_end: int = 1, wen_generations: int = 4, fpr: float = 0.01,
    sampler: str = "ddim", guidance: float = 7.5, threshold: float = THRESHOLD,
) -> DetectionResult:
    """Every detector on ``fixture``'s (sampler, guidance) run, labels from its scores of that run."""
    root = fixture.root
    _require(sampler in fixture.runs and float(guidance) in fixture.guidance_scales(sampler),
             f"{root}: no {sampler} run at g = {guidance:g}, which detection scores; record it with "
             f"`memharness trace --sampler {sampler} --guidance {guidance:g} --out {root}`")
    labels = memorization_labels(fixture, sampler=sampler, guidance=guidance, threshold=threshold)
    _require(labels is not None, f"{root}: no memorization scores for {sampler} g={guidance:g}; record them "
                                 f"with `memharness score --fixtures {root}`")
    mem = labels.memorized
    n_mem, n_norm = labels.n["memorized"], labels.n["normal"]
    _require(n_mem >= 2 and n_norm >= 2,
             f"{root}: {n_mem} memorized and {n_norm} normal prompts (score ≥ {threshold:g} at {sampler} "
             f"g={guidance:g}); an AUC needs ≥ 2 of each, trace a prompt set with more of both")
    group = fixture.group(sampler, guidance)
    n_seeds, n_steps = len(group.seeds), len(group.timesteps)
    rho2 = default_rho2(fixture) if rho2 is None else float(rho2)
    _require(math.isfinite(gamma) and gamma >= 0, f"gamma {gamma:g}: must be a number ≥ 0")
    _require(0 <= first_state < n_steps, f"first_state {first_state}: must be in 0..{n_steps - 1}")
    _require(window >= first_state, f"window {window}: must be ≥ first_state ({first_state})")
    _require(math.isfinite(rho2) and rho2 > 0, f"rho2 {rho2:g}: must be a number > 0")
    _require(0 <= wen_start < wen_end <= n_steps,
             f"wen steps [{wen_start}, {wen_end}): need 0 ≤ start < end ≤ {n_steps} (the run's steps)")
    _require(wen_generations >= 1, f"wen_generations {wen_generations}: must be ≥ 1")
    _require(0 < fpr < 1, f"fpr {fpr:g}: must be in (0, 1)")
    window = min(window, n_steps - 1)
    wen_generations = min(wen_generations, n_seeds)

    schedule = NoiseSchedule.from_config(fixture.model["scheduler"])
    rows = []
    for reference in REFERENCES:
        d = delta_states(group, schedule, reference, rho2=rho2)
        score = window_score(d, first_state=first_state, window=window).mean(axis=1)
        steps = censored_steps(d, gamma=gamma, first_state=first_state)
        flagged = steps < n_steps
        tpr, thr = tpr_at_fpr(score[mem], score[~mem], fpr=fpr)
        rows.append(DetectorRow(
            detector=f"delta-{reference}", label=f"δ {reference}", auc=roc_auc(score[mem], score[~mem]),
            tpr=tpr, threshold=thr, n_memorized=n_mem, n_normal=n_norm,
            step_mean=float(steps[mem].mean()), step_std=float(steps[mem].std()),
            flagged_memorized=float(flagged[mem].mean()), flagged_normal=float(flagged[~mem].mean()),
        ))
    score = wen_score(guidance_magnitudes(group), start=wen_start, end=wen_end, generations=wen_generations)
    tpr, thr = tpr_at_fpr(score[mem], score[~mem], fpr=fpr)
    rows.append(DetectorRow(detector="wen", label="Wen ‖ε_c − ε_u‖", auc=roc_auc(score[mem], score[~mem]),
                            tpr=tpr, threshold=thr, n_memorized=n_mem, n_normal=n_norm))
    settings = {
        "sampler": sampler, "guidance": float(guidance), "steps": n_steps, "seeds": n_seeds,
        "gamma": float(gamma), "first_state": first_state, "window": window, "rho2": rho2,
        "latent_size": int(np.prod(fixture.model["latent_shape"])), "fpr": fpr,
        "wen_start": wen_start, "wen_end": wen_end, "wen_generations": wen_generations,
    }
    source = f"{labels.scorer} score on {labels.source} ≥ {threshold:g}"
    return DetectionResult(model=str(fixture.model.get("id")), fixture=str(Path(root)), labels=source,
                           settings=settings, rows=tuple(rows))
