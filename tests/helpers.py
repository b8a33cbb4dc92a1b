"""Helpers shared by the tests."""

from __future__ import annotations

from memharness.models.card import ModelCard, load_card

SMALL_PARAMS = {
    "seed": 3,
    "memorized_prompts": 6,
    "normal_prompts": 6,
    "background_classes": 16,
}


def small_card(**params) -> ModelCard:
    """The analytic card at a test size: 12 prompts, 4×4×4 latents."""
    base = load_card("analytic").to_dict()
    base["latent_shape"] = [4, 4, 4]
    base["params"] = {**base["params"], **SMALL_PARAMS, **params}
    return ModelCard.from_mapping(base, source="tests")
