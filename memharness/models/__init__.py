"""Models: the Denoiser protocol, model cards and the backends behind them."""

from memharness.errors import FieldError
from memharness.models.base import Denoiser, Prompt
from memharness.models.card import ModelCard, available_cards, load_card
from memharness.models.registry import backend_class, known_backends, register_backend


def load_denoiser(
    card: ModelCard | None, *, device: str = "cpu", model_path: str | None = None, dtype: str | None = None,
    sampler: str = "ddim", revision: str | None = None, variant: str | None = None,
) -> Denoiser:
    """Instantiate the backend a card names (imports torch). With no card, ``model_path`` must be a
    diffusers pipeline folder, a single-file checkpoint or a hub id, and the card is read off the model.
    ``revision`` / ``variant``: which weights of a hub id (or a folder's variant files) to load."""
    if card is None:
        if not model_path:
            raise FieldError("model_path", "give a diffusers pipeline folder, or a model with a card")
        return backend_class("diffusers").from_path(model_path, device=device, dtype=dtype, sampler=sampler,
                                                    revision=revision, variant=variant)
    backend = backend_class(card.backend, card_id=card.id)
    hub = {"revision": revision, "variant": variant}
    if not backend.hub_weights:
        for option, value in hub.items():
            if value:
                raise FieldError(option, f"model {card.id} ({card.backend}) is not loaded from a hub")
        hub = {}
    if model_path and not backend.takes_weights:
        raise FieldError("model_path", f"model {card.id} ({card.backend}) has no weights to load",
                         value=model_path)
    return backend.from_card(card, device=device, model_path=model_path, dtype=dtype, sampler=sampler, **hub)


__all__ = ["Denoiser", "ModelCard", "Prompt", "available_cards", "backend_class", "known_backends", "load_card",
           "load_denoiser", "register_backend"]
