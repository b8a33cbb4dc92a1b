"""Models: the Denoiser protocol, model cards and the backends behind them."""

from memharness.errors import MemharnessError
from memharness.models.base import Denoiser, Prompt
from memharness.models.card import ModelCard, available_cards, load_card


def load_denoiser(card: ModelCard, *, device: str = "cpu") -> Denoiser:
    """Instantiate the backend a card names (imports torch)."""
    if card.backend == "analytic":
        from memharness.models.analytic import AnalyticDenoiser

        return AnalyticDenoiser(card, device=device)
    raise MemharnessError(f"card {card.id}: backend {card.backend!r} is not available in this version")


__all__ = ["Denoiser", "ModelCard", "Prompt", "available_cards", "load_card", "load_denoiser"]
