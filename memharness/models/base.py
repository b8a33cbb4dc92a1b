"""The Denoiser protocol every model backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from memharness.models.card import ModelCard
    from memharness.schedule import NoiseSchedule


@dataclass(frozen=True)
class Prompt:
    """A prompt and what is known about it before any scoring."""

    id: str
    text: str
    kind: str | None = None  # ground truth where the model knows it ("memorized" / "normal")
    image: str | None = None  # path of the paired training image, for models with a VAE
    category: str | None = None  # Webster (2023) category: MV, TV, RV or N (App A)

    def to_manifest(self) -> dict:
        """The prompt as a fixture manifest records it."""
        return {"id": self.id, "text": self.text, "kind": self.kind, "image": self.image, "category": self.category}


class Denoiser(Protocol):
    """Noise predictions for a batch of latents at one timestep.

    ``model_output`` returns the raw outputs in the card's prediction type
    (ε, v or x0); the sampler converts them (Eq 5) so that guidance is applied
    exactly where diffusers applies it.
    """

    card: ModelCard
    schedule: NoiseSchedule
    device: torch.device
    dtype: torch.dtype

    def prompts(self) -> list[Prompt]:
        """The model's default prompt set."""

    def encode(self, prompt: Prompt) -> Any:
        """Conditioning for one prompt, passed back to ``model_output``."""

    def paired_latent(self, prompt: Prompt) -> torch.Tensor:
        """The training latent x paired with a prompt, shaped ``card.latent_shape``."""

    def model_output(
        self, x_t: torch.Tensor, t: int, cond: Any, *, need_uncond: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(unconditional or None, conditional) outputs for ``x_t`` of shape (N, *latent_shape)."""
