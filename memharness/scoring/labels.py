"""Memorized / normal labels from a fixture's memorization scores (§3.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memharness.trace.store import Fixture

THRESHOLD = 0.75  # §3.1: a score ≥ 0.75 marks a copy with 90 % precision (Pizzi et al.)


@dataclass(frozen=True)
class Labels:
    prompt_ids: tuple[str, ...]
    scores: np.ndarray  # (P,) Eq 9 score
    memorized: np.ndarray  # (P,) bool
    scorer: str
    source: str  # which generations were scored, e.g. "ddim g=7.5"

    @property
    def n(self) -> dict[str, int]:
        return {"memorized": int(self.memorized.sum()), "normal": int((~self.memorized).sum())}


def memorization_labels(
    fixture: Fixture, *, sampler: str = "ddim", guidance: float = 7.5, threshold: float = THRESHOLD
) -> Labels | None:
    """Labels from the scores of (sampler, guidance); None when the fixture has no such scores."""
    by_prompt = fixture.scores_for(sampler, guidance)
    if by_prompt is None:
        return None
    scores = fixture.scores
    ids = tuple(p["id"] for p in fixture.prompts)
    values = np.array([by_prompt[pid]["score"] for pid in ids], dtype=np.float64)
    return Labels(
        prompt_ids=ids,
        scores=values,
        memorized=values >= threshold,
        scorer=str(scores.get("scorer", "unknown")),
        source=f"{sampler} g={guidance:g}",
    )
