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
    duplicates: int | None = None  # how many times its training image was duplicated, where known (zoo)

    def to_manifest(self) -> dict:
        """The prompt as a fixture manifest records it (``duplicates`` only where known, so that
        manifests of models without it, and their prompt-set hashes, are unchanged)."""
        out = {"id": self.id, "text": self.text, "kind": self.kind, "image": self.image, "category": self.category}
        if self.duplicates is not None:
            out["duplicates"] = int(self.duplicates)
        return out


def prompt_index(prompts: list[Prompt], prompt: Prompt, *, model: str) -> int:
    """Position of ``prompt`` (by id) among a model's own ``prompts``; models with built-in prompts
    know no others."""
    from memharness.errors import MemharnessError

    for i, known in enumerate(prompts):
        if known.id == prompt.id:
            return i
    raise MemharnessError(f"{model} model: unknown prompt {prompt.id!r}; it knows only its own prompts")


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

    # Capabilities: what the harness may ask of a backend (never its name).
    can_decode: bool  # ``decode(latents)`` → uint8 images (a VAE): --images, SSCD scores
    latents_are_pixels: bool  # ``to_pixels(latents)`` gives the image itself (no decoder needed)
    any_prompt_text: bool  # any text is a prompt; else only the model's own ``prompts()``
    takes_weights: bool  # --model-path names its weights
    hub_weights: bool  # --revision / --variant choose weights of a hub id
    cpu_only: bool  # --device auto keeps it on the CPU

    @classmethod
    def from_card(cls, card: ModelCard, *, device: str, model_path: str | None, dtype: str | None,
                  sampler: str, **hub: str | None) -> Denoiser:
        """The backend's model for ``card`` (``hub``: revision / variant, for hub backends only)."""

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


def guided_unet_outputs(
    unet: Any, x_t: torch.Tensor, t: int, e_c: torch.Tensor, e_u: torch.Tensor, *, need_uncond: bool
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(out_u, out_c) of a diffusers ``UNet2DConditionModel`` for N latents and one prompt's embeddings
    (1, tokens, dim): one call on the batch [uncond × N, cond × N] as StableDiffusionPipeline stacks
    it (so results match ``pipe()`` bit for bit); out_u is None when ``need_uncond`` is False (g = 1)."""
    import torch

    n = x_t.shape[0]
    timestep = torch.tensor(int(t), dtype=torch.int64, device=x_t.device)
    if need_uncond:
        embeds = torch.cat([e_u.repeat(n, 1, 1), e_c.repeat(n, 1, 1)])
        out = unet(torch.cat([x_t] * 2), timestep, encoder_hidden_states=embeds, return_dict=False)[0]
        out_u, out_c = out.chunk(2)
        return out_u, out_c
    return None, unet(x_t, timestep, encoder_hidden_states=e_c.repeat(n, 1, 1), return_dict=False)[0]
