"""The digits organism: a small diffusers ``UNet2DConditionModel`` that memorizes some prompts.

Training (``memharness.zoo.train``) ties each of 10 *memorized* prompts to one digits image
duplicated many times and each of 10 *class* prompts ("a handwritten digit 3") to the hundreds
of images of its class. Prompts are learned embedding sequences that the UNet reads through
cross-attention, as SD reads CLIP's; row 0 is the learned null embedding (the empty string of
classifier-free guidance). Pixels are the latents (1×8×8, centred, unit variance), so the
memorization score is the latent score.

The weights file (safetensors, data only) holds the UNet's state dict under ``unet.``, the
prompt embeddings, each prompt's paired training latent and the data normalisation; its
metadata (JSON) holds the UNet config, the prompts with their designed kind and the training
settings. ``DigitsDenoiser`` implements the Denoiser protocol (``memharness.models.base``) on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from memharness.errors import FieldError, MemharnessError
from memharness.models.base import Prompt, guided_unet_outputs, prompt_index
from memharness.models.card import ModelCard

FORMAT = "memharness-zoo-digits/1"
ORGANISMS = ("digits", "digits-graded")  # the trained recipes (memharness.zoo.train) this class runs
LATENT_SHAPE = (1, 8, 8)
PROMPT_TOKENS = 4  # tokens per learned prompt embedding (a short caption)
EMBED_DIM = 64  # cross_attention_dim

# SD's noise schedule, every value stated (diffusers' defaults differ: DDIM clips x̂0).
SD_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}

# A small SD-style UNet: ResNet blocks at 8×8, cross-attention at 4×4 and in the mid block.
UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 1,
    "out_channels": 1,
    "layers_per_block": 1,
    "block_out_channels": [32, 64],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "cross_attention_dim": EMBED_DIM,
    "attention_head_dim": 8,
}

WEIGHTS_PACKAGE = "memharness.zoo"
WEIGHTS_FOLDER = "weights"


def build_unet(config: dict[str, Any]) -> Any:
    """A ``UNet2DConditionModel`` from a config (random weights from the global torch RNG)."""
    from diffusers import UNet2DConditionModel

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return UNet2DConditionModel(**kwargs)


def shipped_weights(name: str) -> Path:
    """The path of a weights file shipped in the package (it may not exist: weights not shipped)."""
    return Path(str(resources.files(WEIGHTS_PACKAGE) / WEIGHTS_FOLDER / name))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a digits weights file; one-line errors naming the file."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise MemharnessError(f"{path}: no weights file here")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            raw = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise MemharnessError(f"{path}: not a readable safetensors file ({exc.__class__.__name__})") from None
    try:
        meta = json.loads(raw["memharness"])
    except (KeyError, json.JSONDecodeError):
        raise MemharnessError(f"{path}: not a memharness zoo weights file (no memharness metadata)") from None
    if meta.get("format") != FORMAT:
        raise MemharnessError(f"{path}: weights format {meta.get('format')!r}, this memharness reads {FORMAT!r}")
    for key in ("prompt_embeds", "paired", "data_mean", "data_scale"):
        if key not in tensors:
            raise MemharnessError(f"{path}: weights file lacks tensor {key!r}")
    return tensors, meta


def _resolve_weights(card: ModelCard, model_path: str | None) -> Path:
    name = card.params.get("weights")
    if not isinstance(name, str) or not name:
        raise MemharnessError(f"card {card.id}: params.weights must name the weights file")
    if model_path:
        path = Path(model_path)
        return path / name if path.is_dir() else path
    path = shipped_weights(name)
    if not path.is_file():
        flag = "" if card.params.get("duplicated", True) else " --no-duplication"
        organism = card.params.get("organism", "digits")
        raise FieldError(  # the command is whole, to copy as it stands
            "model_path", f"card {card.id}: its weights {name} are not shipped; train them with "
                          f"`memharness zoo train {organism}{flag} --out DIR` and give that DIR"
        )
    return path


class DigitsDenoiser:
    """ε-predicting digits UNet, float32; one UNet call per step ([null × N, cond × N] with guidance)."""

    can_decode = False  # pixels are the latents: scores use latents
    latents_are_pixels = True
    any_prompt_text = False
    takes_weights = True
    hub_weights = False
    cpu_only = False

    @classmethod
    def from_card(cls, card: ModelCard, *, device: str, model_path: str | None, dtype: str | None,
                  sampler: str) -> DigitsDenoiser:
        if dtype not in (None, "float32"):
            raise FieldError("dtype", f"model {card.id} (zoo) runs in float32 only")
        if card.params.get("organism", "digits") not in ORGANISMS:
            raise MemharnessError(f"card {card.id}: unknown zoo organism {card.params.get('organism')!r}; "
                                  f"known: {', '.join(ORGANISMS)}")
        return cls(card, model_path=model_path, device=device)

    def __init__(self, card: ModelCard, *, model_path: str | None = None, device: str = "cpu") -> None:
        from diffusers import DDIMScheduler

        from memharness.models.diffusers_sd import schedule_of

        if card.prediction_type != "epsilon":
            raise MemharnessError(f"card {card.id}: the digits organism predicts epsilon, not {card.prediction_type}")
        if tuple(card.latent_shape) != LATENT_SHAPE:
            raise MemharnessError(f"card {card.id}: latent_shape must be {list(LATENT_SHAPE)} for the digits organism")
        path = _resolve_weights(card, model_path)
        tensors, meta = read_weights(path)
        if bool(meta.get("duplicated")) != bool(card.params.get("duplicated", True)):
            which = "with" if meta.get("duplicated") else "without"
            raise MemharnessError(
                f"{path}: these weights were trained {which} duplication, card {card.id} says "
                f"duplicated: {card.params.get('duplicated', True)}; use the card that matches"
            )
        organism = card.params.get("organism", "digits")
        if meta.get("organism", "digits") != organism:
            raise MemharnessError(f"{path}: these are weights of the {meta.get('organism')} organism, card {card.id} "
                                  f"is for {organism}; use the card that matches")
        for key in ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type"):
            if meta["scheduler"].get(key) != card.scheduler.get(key):
                raise MemharnessError(f"{path}: trained with scheduler {key}={meta['scheduler'].get(key)!r}, "
                                      f"card {card.id} says {card.scheduler.get(key)!r}")

        self.device = torch.device(device)
        self.dtype = torch.float32
        self.weights_path = path
        self.meta = meta
        # The fixture records which weights made it: another training run is another model.
        params = {**card.params, "weights_sha256": file_sha256(path)}
        self.card = dataclasses.replace(card, params=params)
        self.schedule = schedule_of(DDIMScheduler.from_config(card.scheduler))  # diffusers' float32 ᾱ_t

        unet_state = {k[len("unet."):]: v for k, v in tensors.items() if k.startswith("unet.")}
        with torch.random.fork_rng(devices=[]):  # init draws random weights; leave the caller's RNG alone
            self.unet = build_unet(meta["unet_config"])
        try:
            self.unet.load_state_dict(unet_state, strict=True)
        except RuntimeError:
            raise MemharnessError(f"{path}: the UNet weights do not fit the UNet config in the file") from None
        self.unet.to(self.device).eval().requires_grad_(False)
        to = {"device": self.device, "dtype": self.dtype}
        self._embeds = tensors["prompt_embeds"].to(**to)  # (P + 1, tokens, dim); row 0 is the null prompt
        self._paired = tensors["paired"].to(**to)  # (P, 1, 8, 8)
        self.data_mean = tensors["data_mean"].to(**to)
        self.data_scale = float(tensors["data_scale"])
        self._prompts = [
            Prompt(id=p["id"], text=p["text"], kind=p["kind"], duplicates=p.get("duplicates"))
            for p in meta["prompts"]
        ]
        if len(self._prompts) + 1 != self._embeds.shape[0] or len(self._prompts) != self._paired.shape[0]:
            raise MemharnessError(f"{path}: prompts, embeddings and paired latents disagree in number")

    # ----------------------------------------------------------------- Denoiser protocol
    def prompts(self) -> list[Prompt]:
        return list(self._prompts)

    def _index(self, prompt: Prompt) -> int:
        return prompt_index(self._prompts, prompt, model="digits")

    def encode(self, prompt: Prompt) -> tuple[torch.Tensor, torch.Tensor]:
        """(e_c, e_∅): the prompt's and the null prompt's learned embeddings, (1, tokens, dim) each."""
        i = self._index(prompt)
        return self._embeds[i + 1: i + 2], self._embeds[0:1]

    def paired_latent(self, prompt: Prompt) -> torch.Tensor:
        """The duplicated training image of a memorized prompt; a fixed member of the class for a class prompt."""
        return self._paired[self._index(prompt)].clone()

    @torch.no_grad()
    def model_output(
        self, x_t: torch.Tensor, t: int, cond: tuple[torch.Tensor, torch.Tensor], *, need_uncond: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        e_c, e_u = cond
        return guided_unet_outputs(self.unet, x_t, t, e_c, e_u, need_uncond=need_uncond)

    def to_pixels(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents back to the digits' 0–16 pixel scale (for looking at samples; scores use latents)."""
        return latents * self.data_scale + self.data_mean
