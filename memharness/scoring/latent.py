"""The latent memorization score: Eq 9 with the cosine of latents in place of SSCD.

For models without a decoder (the analytic model) the final latents are scored
directly: score_train = mean over seeds of cos(x_0, x), score_generate = mean over
all seed pairs of cos(x_0^i, x_0^j), score = their mean (Eq 9).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memharness.trace import schema
from memharness.trace.store import Fixture
from memharness.trace.writer import FixtureWriter

LATENT_SCORER = "latent-cosine"


def latent_scores(final_x0_x: np.ndarray, final_x0_norm2: np.ndarray, x_norm2: np.ndarray, final_cos: np.ndarray):
    """(train, generate, score) per prompt from (P, N) inner products and (P, N, N) seed cosines."""
    train = (final_x0_x / np.sqrt(final_x0_norm2 * x_norm2)).mean(axis=1)
    n = final_cos.shape[-1]
    upper = np.triu_indices(n, k=1)
    generate = final_cos[:, upper[0], upper[1]].mean(axis=1)
    return train, generate, (train + generate) / 2.0


def score_fixture_latent(fixture: Fixture) -> dict[str, Any]:
    """Scores of every (run, guidance scale, prompt) of a fixture, in the manifest's form."""
    values: dict[str, Any] = {}
    incomplete = set(fixture.incomplete_runs())  # an interrupted run is scored once it is finished
    for sampler in fixture.runs:
        if sampler in incomplete:
            continue
        values[sampler] = {}
        for g in fixture.guidance_scales(sampler):
            group = fixture.group(sampler, g)
            train, generate, score = latent_scores(
                group.inner_final("x_0", "x"),
                group.inner_final("x_0", "x_0"),
                group.inner_final("x", "x"),
                group.arrays["final_cos"],
            )
            values[sampler][schema.guidance_key(g)] = {
                pid: {"train": float(a), "generate": float(b), "score": float(c)}
                for pid, a, b, c in zip(group.prompt_ids, train, generate, score, strict=True)
            }
    return {"scorer": LATENT_SCORER, "values": values}


def write_latent_scores(root, *, replace_other: bool = False) -> dict[str, Any] | None:
    """Write the latent scores into the fixture at ``root``; returns them.

    Scores carry their scorer. Scores of another scorer (SSCD on images) are never replaced unless
    ``replace_other``: then nothing is written and None is returned (``trace`` keeps them).
    """
    fixture = Fixture(root)
    existing = fixture.scores
    if existing is not None and existing.get("scorer") != LATENT_SCORER and not replace_other:
        return None
    scores = score_fixture_latent(fixture)
    writer = FixtureWriter(
        root,
        model=fixture.model,
        prompts=fixture.prompts,
        prompt_set=fixture.manifest["prompt_set"]["name"],
    )
    writer.write_scores(scores)
    return scores
