"""Models: the Denoiser protocol, model cards and the backends behind them."""

from memharness.errors import MemharnessError
from memharness.models.base import Denoiser, Prompt
from memharness.models.card import ModelCard, available_cards, load_card


def load_denoiser(
    card: ModelCard | None, *, device: str = "cpu", model_path: str | None = None, dtype: str | None = None,
    sampler: str = "ddim", revision: str | None = None, variant: str | None = None,
) -> Denoiser:
    """Instantiate the backend a card names (imports torch). With no card, ``model_path`` must be a
    diffusers pipeline folder, a single-file checkpoint or a hub id, and the card is read off the model.
    ``revision`` / ``variant``: which weights of a hub id (or a folder's variant files) to load."""
    if card is None or card.backend == "diffusers":
        from memharness.models.diffusers_sd import DiffusersDenoiser

        if card is None:
            if not model_path:
                raise MemharnessError("--model-path: give a diffusers pipeline folder, or a --model with a card")
            return DiffusersDenoiser.from_path(model_path, device=device, dtype=dtype, sampler=sampler,
                                               revision=revision, variant=variant)
        return DiffusersDenoiser.load(card, model_path=model_path, device=device, dtype=dtype, sampler=sampler,
                                      revision=revision, variant=variant)
    for option, value in (("--revision", revision), ("--variant", variant)):
        if value:
            raise MemharnessError(f"{option}: model {card.id} ({card.backend}) is not loaded from a hub")
    if card.backend == "zoo":
        if dtype not in (None, "float32"):
            raise MemharnessError(f"--dtype: model {card.id} (zoo) runs in float32 only")
        if card.params.get("organism", "digits") not in ("digits", "digits-graded"):
            raise MemharnessError(
                f"card {card.id}: unknown zoo organism {card.params.get('organism')!r}; known: digits, digits-graded")
        from memharness.zoo.digits import DigitsDenoiser

        return DigitsDenoiser(card, model_path=model_path, device=device)
    if model_path:
        raise MemharnessError(f"--model-path {model_path}: model {card.id} ({card.backend}) has no weights to load")
    if card.backend == "analytic":
        if dtype is not None:
            raise MemharnessError("--dtype: the analytic model always runs in float64")
        from memharness.models.analytic import AnalyticDenoiser

        return AnalyticDenoiser(card, device=device)
    raise MemharnessError(f"card {card.id}: backend {card.backend!r} is not available in this version")


__all__ = ["Denoiser", "ModelCard", "Prompt", "available_cards", "load_card", "load_denoiser"]
