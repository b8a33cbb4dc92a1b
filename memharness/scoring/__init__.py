"""Memorization scores (§3.1, Eq 9) and the labels derived from them."""

from memharness.scoring.labels import THRESHOLD as MEMORIZATION_THRESHOLD  # §3.1: SSCD score ≥ 0.75 counts as memorized
from memharness.scoring.latent import LATENT_SCORER, latent_scores, score_fixture_latent

__all__ = ["LATENT_SCORER", "MEMORIZATION_THRESHOLD", "latent_scores", "score_fixture_latent"]
