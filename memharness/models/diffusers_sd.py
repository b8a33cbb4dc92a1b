"""A Denoiser over any StableDiffusionPipeline-compatible model (SD v1.x, v2.x, fine-tunes).

The UNet sees exactly what ``StableDiffusionPipeline.__call__`` gives it: prompts encoded by
the pipeline's own ``encode_prompt`` with the empty string as the unconditional (§2, Eq 8),
unconditional and conditional stacked in one batch [uncond × N, cond × N], and only the
conditional at g = 1. Together with ``memharness.sampling`` (diffusers' step arithmetic and
per-seed generators) this reproduces ``pipe(...)``'s latents bit for bit on the CPU.

The noise schedule is the model's own: the scheduler config from the model folder, with
diffusers' float32 ᾱ_t values, checked for SD's settings (no clipping of x̂0).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memharness.errors import FieldError, MemharnessError
from memharness.models.base import Prompt, guided_unet_outputs
from memharness.models.card import ModelCard
from memharness.schedule import NoiseSchedule

_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """fp16 on CUDA (as the paper), fp32 elsewhere, unless named."""
    if name is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in _DTYPES:
        raise FieldError("dtype", f"unknown dtype {name!r}; choose one of {', '.join(_DTYPES)}")
    return _DTYPES[name]


def schedule_of(scheduler: Any, *, card_scheduler: dict[str, Any] | None = None) -> NoiseSchedule:
    """The model's schedule, with the exact float32 ᾱ_t diffusers steps with (bit-exact sampling)."""
    config = dict(scheduler.config)
    if config.get("clip_sample") or config.get("thresholding"):
        raise MemharnessError(
            "the model's scheduler clips x̂0 (clip_sample/thresholding true), which destroys k; "
            "use a scheduler config with clip_sample: false"
        )
    config["clip_sample"] = False
    schedule = NoiseSchedule.from_config(config)
    alphas_cumprod = scheduler.alphas_cumprod.double().numpy()
    final = float(getattr(scheduler, "final_alpha_cumprod", torch.tensor(1.0)))
    return dataclasses.replace(schedule, alphas_cumprod=alphas_cumprod, final_alpha_cumprod=final)


def _scheduler_for(pipe: Any, sampler: str) -> Any:
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = DDIMScheduler if sampler == "ddim" else DDPMScheduler
    # From the model's config, with clip_sample stated: diffusers' default for a config
    # without the key (SD's PNDM config) is True, which clips x̂0 to [-1, 1].
    overrides = {"clip_sample": False}
    if sampler == "ddpm":
        overrides["variance_type"] = "fixed_small"
    return cls.from_config(pipe.scheduler.config, **overrides)


# Keys that define the noise schedule: a card's expectation must match the model's config.
_SCHEDULE_KEYS = ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "set_alpha_to_one",
                  "steps_offset", "prediction_type")


def _json_config(config: Any) -> dict[str, Any]:
    """A scheduler config as plain JSON values (diffusers' FrozenDict may hold tuples or arrays)."""
    out = {}
    for key, value in dict(config).items():
        if hasattr(value, "tolist"):
            value = value.tolist()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    out.setdefault("prediction_type", "epsilon")
    out["clip_sample"] = False  # what memharness samples with, whatever the config's class defaults to
    return out


def _check_schedule(card: ModelCard, model_config: dict[str, Any]) -> None:
    for key in _SCHEDULE_KEYS:
        expected, actual = card.scheduler.get(key), model_config.get(key)
        if expected is not None and expected != actual:
            raise MemharnessError(
                f"card {card.id}: scheduler {key} should be {expected!r}, the model's config says {actual!r}; "
                "is this the right model for the card?"
            )
    if card.prediction_type != model_config.get("prediction_type"):
        raise MemharnessError(
            f"card {card.id}: prediction_type {card.prediction_type!r}, the model's scheduler says "
            f"{model_config.get('prediction_type')!r}; fix the card"
        )


def _quiet_loading() -> None:
    """No progress bars or hub chatter on stderr: errors must stay one line, progress is ours."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()


def _first_line(exc: BaseException) -> str:
    """The useful part of a loader's message (diffusers points at a stack trace we do not show)."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return line.replace(" Please check out the root cause in the stacktrace above.", "").strip()


def card_from_pipeline(pipe: Any, *, model_id: str) -> ModelCard:
    """A card for a pipeline no card describes (``--model-path DIR`` alone): all of it read off the model."""
    config = _json_config(pipe.scheduler.config)
    unet = pipe.unet.config
    return ModelCard(
        id=model_id,
        title=f"diffusers pipeline {model_id}",
        backend="diffusers",
        latent_shape=(int(unet.in_channels), int(unet.sample_size), int(unet.sample_size)),
        prediction_type=str(config["prediction_type"]),
        scheduler=config,
        params={"paired_latent": "mean"},
    )


class DiffusersDenoiser:
    """ε-, v- or x0-predicting UNet of a StableDiffusionPipeline."""

    can_decode = True  # the pipeline's VAE
    latents_are_pixels = False
    any_prompt_text = True  # CLIP reads any text
    takes_weights = True
    hub_weights = True
    cpu_only = False

    def __init__(self, card: ModelCard, pipe: Any, *, sampler: str = "ddim"):
        model_config = _json_config(pipe.scheduler.config)
        _check_schedule(card, model_config)
        unet = pipe.unet.config
        model_shape = (int(unet.in_channels), int(unet.sample_size), int(unet.sample_size))
        if tuple(card.latent_shape) != model_shape:
            raise MemharnessError(
                f"card {card.id}: latent_shape {list(card.latent_shape)}, but the model's UNet takes "
                f"{list(model_shape)}; is this the right model for the card?"
            )
        # The fixture records the model's own scheduler config, not the card's expectation.
        self.card = dataclasses.replace(card, scheduler=model_config)
        self.pipe = pipe
        self.schedule = schedule_of(_scheduler_for(pipe, "ddim"))  # DDIM's carries final_alpha_cumprod
        self.pipe.scheduler = _scheduler_for(pipe, sampler)  # what pipe(...) would step with
        self.device = pipe.unet.device
        self.dtype = pipe.unet.dtype
        self.sampler = sampler
        self._prompts: list[Prompt] = []
        self._empty: torch.Tensor | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_card(cls, card: ModelCard, *, device: str, model_path: str | None, dtype: str | None,
                  sampler: str, revision: str | None = None, variant: str | None = None) -> DiffusersDenoiser:
        return cls.load(card, model_path=model_path, device=device, dtype=dtype, sampler=sampler,
                        revision=revision, variant=variant)

    @classmethod
    def load(
        cls, card: ModelCard, *, model_path: str | None = None, device: str = "cpu", dtype: str | None = None,
        sampler: str = "ddim", revision: str | None = None, variant: str | None = None,
    ) -> DiffusersDenoiser:
        """The card's weights: ``model_path`` (a folder, a single file or a hub id), else the card's hub id."""
        torch_device = torch.device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        source = model_path or card.params.get("hub_id")
        if not source:
            raise FieldError("model_path", f"card {card.id} has no hub_id; give the weights (a diffusers folder, "
                                           "a .safetensors/.ckpt file or a hub id)")
        if not model_path and not revision and card.params.get("revision"):
            revision = card.params["revision"]
        vae = card.params.get("vae") if not model_path else None
        config = card.params.get("single_file_config") or card.params.get("hub_id")
        pipe, weights = _load_pipeline(str(source), dtype=torch_dtype, revision=revision, variant=variant,
                                       vae=vae, config=config, from_card=not model_path)
        pipe = pipe.to(torch_device)
        pipe.set_progress_bar_config(disable=True)
        denoiser = cls(card, pipe, sampler=sampler)
        denoiser.weights_path = weights
        return denoiser

    @classmethod
    def from_path(cls, model_path: str, *, device: str = "cpu", dtype: str | None = None,
                  sampler: str = "ddim", revision: str | None = None, variant: str | None = None) -> DiffusersDenoiser:
        """Weights no card describes; the card (id = the folder's or file's name) is read off the model."""
        torch_device = torch.device(device)
        pipe, weights = _load_pipeline(str(model_path), dtype=resolve_dtype(dtype, torch_device),
                                       revision=revision, variant=variant)
        pipe = pipe.to(torch_device)
        pipe.set_progress_bar_config(disable=True)
        path = Path(model_path)
        name = path.resolve().stem if path.is_file() else (path.resolve().name if path.is_dir()
                                                           else str(model_path).rstrip("/").split("/")[-1])
        denoiser = cls(card_from_pipeline(pipe, model_id=name), pipe, sampler=sampler)
        denoiser.weights_path = weights
        return denoiser

    weights_path: Path | None = None

    def weights_sha256(self) -> str | None:
        """sha256 of the weights loaded (a file's bytes; a folder's weight files), None for a hub id."""
        from memharness.runtime import weights_sha256

        return weights_sha256(self.weights_path)

    # ----------------------------------------------------------------- Denoiser protocol
    def prompts(self) -> list[Prompt]:
        if not self._prompts:
            raise FieldError("prompts", f"model {self.card.id} has no built-in prompts; give a prompt file")
        return list(self._prompts)

    def use_prompts(self, prompts: list[Prompt]) -> None:
        self._prompts = list(prompts)

    @torch.no_grad()
    def encode(self, prompt: Prompt) -> tuple[torch.Tensor, torch.Tensor]:
        """(e_c, e_∅): the prompt's and the empty string's embeddings, one row each."""
        cond, uncond = self.pipe.encode_prompt(
            prompt.text, self.device, num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt=None,
        )
        return cond, uncond

    @torch.no_grad()
    def model_output(
        self, x_t: torch.Tensor, t: int, cond: tuple[torch.Tensor, torch.Tensor], *, need_uncond: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        e_c, e_u = cond
        return guided_unet_outputs(self.pipe.unet, x_t, t, e_c, e_u, need_uncond=need_uncond)

    @torch.no_grad()
    def paired_latent(self, prompt: Prompt) -> torch.Tensor:
        """x = VAE posterior mean of the paired training image × scaling factor (§2: x is a latent)."""
        if not prompt.image:
            raise FieldError("prompts", f"prompt {prompt.id!r} has no paired training image; give its path in "
                                        "the prompt file")
        return self.encode_image(load_training_image(prompt.image, self.image_size))[0]

    @property
    def image_size(self) -> int:
        return int(self.card.latent_shape[-1]) * int(self.pipe.vae_scale_factor)

    @torch.no_grad()
    def encode_image(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) → latents (N, 4, h, w). The posterior mean, not a sample: x must not
        depend on a random draw, and the mean is what the model was trained towards on average."""
        pixels = torch.tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        pixels = pixels.to(device=self.device, dtype=self.pipe.vae.dtype)
        posterior = self.pipe.vae.encode(pixels).latent_dist
        return (posterior.mean * self.pipe.vae.config.scaling_factor).to(self.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Final latents → uint8 images (N, H, W, 3), as the pipeline's output_type="np" then ×255."""
        image = self.pipe.vae.decode(latents / self.pipe.vae.config.scaling_factor, return_dict=False)[0]
        image = self.pipe.image_processor.postprocess(image, output_type="np", do_denormalize=[True] * len(image))
        return (image * 255).round().astype(np.uint8)


SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def _load_pipeline(source: str, *, dtype: torch.dtype, revision: str | None = None, variant: str | None = None,
                   vae: str | None = None, config: str | None = None, from_card: bool = False,
                   ) -> tuple[Any, Path | None]:
    """A StableDiffusionPipeline from a diffusers folder, a single-file checkpoint (``from_single_file``
    with ``config``, the card's pipeline config: a hub id or a local diffusers folder) or a hub id.
    Returns it and the local weights path (None for a hub id)."""
    _quiet_loading()  # before the import: resolving the pipeline class logs transformers warnings
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    path = Path(source).expanduser()
    common: dict[str, Any] = {"safety_checker": None, "requires_safety_checker": False}
    try:
        if path.is_dir():
            kwargs = {**common, "dtype": dtype, **({"variant": variant} if variant else {})}
            return StableDiffusionPipeline.from_pretrained(path, **kwargs), path
        if path.is_file():
            if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
                raise FieldError("model_path", f"{source} is neither a diffusers folder nor a checkpoint file "
                                                 f"({', '.join(SINGLE_FILE_SUFFIXES)})")
            if path.suffix.lower() == ".safetensors":
                _check_safetensors(path)
            kwargs = {**common, "torch_dtype": dtype, "local_files_only": True}
            if config:
                kwargs["config"] = str(Path(config).expanduser()) if Path(config).expanduser().is_dir() else config
            # diffusers unpickles a .ckpt with torch.load(weights_only=True): tensors only, no code runs.
            return StableDiffusionPipeline.from_single_file(str(path), **kwargs), path
        if source.startswith((".", "/", "~")) or source.count("/") != 1:
            raise FieldError("model_path", f"{source} does not exist (give a diffusers folder, a "
                                             ".safetensors/.ckpt file or a hub id like CompVis/stable-diffusion-v1-4)")
        kwargs = {**common, "dtype": dtype, **({"variant": variant} if variant else {}),
                  **({"revision": revision} if revision else {})}
        if vae:
            kwargs["vae"] = AutoencoderKL.from_pretrained(vae, dtype=dtype)
        return StableDiffusionPipeline.from_pretrained(source, **kwargs), None
    except MemharnessError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        if path.is_dir() and from_card:
            raise MemharnessError(f"cannot load folder {source}: {_first_line(exc)}") from None
        if path.is_dir():
            raise FieldError("model_path", f"cannot load a pipeline from folder {source}: {_first_line(exc)}") \
                from None
        if path.is_file():
            hint = "" if config else "; a single file needs the pipeline config: give {model} a card whose " \
                                     "hub_id (or single_file_config) names it, as a hub id or a local diffusers folder"
            raise FieldError("model_path", f"cannot load the checkpoint {source}: {_first_line(exc)}{hint}",
                             mentions=() if config else ("model",)) from None
        raise FieldError("model_path", f"cannot load hub id {source!r}: {_first_line(exc)}; without network, "
                                       "download the weights elsewhere and give their folder or file") from None


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line
        raise FieldError("model_path", f"{path} is not a readable safetensors file ({_first_line(exc)})") \
            from None


def load_training_image(path: str | Path, size: int) -> np.ndarray:
    """An image file → uint8 (1, size, size, 3): shorter side resized to ``size`` (bicubic), centre crop,
    as SD's training pipeline prepared LAION images."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
            w, h = img.size
            left, top = (w - size) // 2, (h - size) // 2
            img = img.crop((left, top, left + size, top + size))
            return np.asarray(img, dtype=np.uint8)[None]
    except FileNotFoundError:
        raise MemharnessError(f"{path}: paired training image not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise MemharnessError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
