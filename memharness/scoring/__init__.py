"""Memorization scores (§3.1, Eq 9) and the labels derived from them."""

from memharness.scoring.latent import LATENT_SCORER, latent_scores, score_fixture_latent

MEMORIZATION_THRESHOLD = 0.75  # §3.1: SSCD score ≥ 0.75 counts as memorized

__all__ = ["LATENT_SCORER", "MEMORIZATION_THRESHOLD", "latent_scores", "score_fixture_latent"]
