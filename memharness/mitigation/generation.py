"""Generating with real-time detection and, optionally, mitigation (App H).

``generate`` samples one prompt (DDIM) while App H's δ(t) watches every seed: with
``mitigate=True`` a flagged seed continues with g = 0 (ε_u alone) from its detection step on,
otherwise it only reports the step. ``generate_mitigated`` does the same for any diffusers
``StableDiffusionPipeline`` object, and ``write_generation`` writes the outputs: PNG images
for models with a decoder (the VAE of SD-style pipelines, the digits organism's 8×8 pixels),
the final latents as safetensors for models without one (the analytic model).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memharness.errors import FieldError, MemharnessError
from memharness.mitigation.policies import DEFAULT_GAMMA, DeltaPolicy
from memharness.models.base import Denoiser, Prompt
from memharness.sampling import StepHook, sample
from memharness.trace.safety import atomic_write_bytes

RESULT_FILE = "generate.json"
LATENTS_FILE = "latents.safetensors"


@dataclass(frozen=True)
class Generation:
    prompt: Prompt
    seeds: tuple[int, ...]
    latents: torch.Tensor  # (N, C, H, W) final latents x_0
    images: np.ndarray | None  # uint8 (N, H, W, 3) or (N, H, W) grayscale; None without a decoder
    detection_step: np.ndarray  # (N,) first state with δ > −γ (App H), −1 where it never fired
    delta: np.ndarray  # (N, S) online δ(t) per step, NaN at state 0
    guidance_used: np.ndarray  # (N, S) g per seed and step
    mitigated: bool
    gamma: float
    guidance_scale: float
    num_inference_steps: int


def generate(
    denoiser: Denoiser,
    prompt: Prompt,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3),
    guidance_scale: float = 7.5,
    num_inference_steps: int = 50,
    mitigate: bool = True,
    gamma: float = DEFAULT_GAMMA,
    rho2: float | None = None,
    hooks: Sequence[StepHook] = (),
) -> Generation:
    """Sample ``prompt`` with δ(t) detection (App H); ``mitigate``: g = 0 for a seed once flagged."""
    seeds = tuple(int(s) for s in seeds)
    policy = DeltaPolicy(gamma=gamma, rho2=rho2, mitigate=mitigate)
    result = sample(denoiser, denoiser.encode(prompt), seeds=seeds, guidance_scale=float(guidance_scale),
                    sampler="ddim", num_inference_steps=num_inference_steps, hooks=hooks, guidance_policy=policy)
    return Generation(
        prompt=prompt, seeds=seeds, latents=result.x_0, images=to_images(denoiser, result.x_0),
        detection_step=policy.switch_step.copy(), delta=policy.delta_per_step.copy(),
        guidance_used=result.guidance_used.numpy(), mitigated=mitigate, gamma=float(gamma),
        guidance_scale=float(guidance_scale), num_inference_steps=int(num_inference_steps),
    )


def to_images(denoiser: Denoiser, latents: torch.Tensor) -> np.ndarray | None:
    """uint8 images of final latents: the model's decoder (VAE), the digits' pixels, or None."""
    if denoiser.can_decode:
        return denoiser.decode(latents)
    if denoiser.latents_are_pixels:  # digits: 0–16 grey levels → 0–255, (N, 8, 8)
        pixels = denoiser.to_pixels(latents).detach().cpu().double().numpy()
        return np.clip(np.round(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8).reshape(
            latents.shape[0], *latents.shape[-2:])
    return None


def generate_mitigated(
    pipe: Any,
    prompt: str,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3),
    guidance_scale: float = 7.5,
    gamma: float = DEFAULT_GAMMA,
    num_inference_steps: int = 50,
    mitigate: bool = True,
) -> Generation:
    """App H's detection and mitigation on any diffusers ``StableDiffusionPipeline`` object.

    Samples with DDIM (the pipeline's scheduler config, x̂0 unclipped) and the pipeline's own
    UNet, text encoder and VAE; ``.images`` are uint8 (N, H, W, 3), ``.detection_step`` the
    detection step per seed (−1: never). The pipeline's scheduler is restored afterwards.
    """
    from memharness.models.diffusers_sd import DiffusersDenoiser, card_from_pipeline

    if not isinstance(prompt, str) or not prompt:
        raise MemharnessError("prompt: give the prompt text")
    scheduler = pipe.scheduler
    name = Path(str(getattr(pipe, "name_or_path", None) or "pipeline")).name or "pipeline"
    try:
        denoiser = DiffusersDenoiser(card_from_pipeline(pipe, model_id=name), pipe, sampler="ddim")
        return generate(denoiser, Prompt(id="prompt", text=prompt), seeds=seeds, guidance_scale=guidance_scale,
                        num_inference_steps=num_inference_steps, mitigate=mitigate, gamma=gamma)
    finally:
        pipe.scheduler = scheduler  # DiffusersDenoiser installs a DDIM scheduler on the pipe


def write_generation(gen: Generation, out: Path, *, model: str) -> dict[str, Any]:
    """``out/<seed>.png`` per seed (or ``out/latents.safetensors`` without a decoder) and
    ``out/generate.json`` with each seed's detection step; written atomically. Returns the JSON."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FieldError("out", f"{out} is a file; give a folder")
    files = []
    if gen.images is not None:
        from PIL import Image

        for seed, image in zip(gen.seeds, gen.images, strict=True):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            atomic_write_bytes(out / f"{seed}.png", buffer.getvalue())
            files.append(f"{seed}.png")
        output = "png"
    else:
        from safetensors.numpy import save as st_save

        latents = gen.latents.detach().cpu().numpy()
        atomic_write_bytes(out / LATENTS_FILE, st_save({"x_0": np.ascontiguousarray(latents),
                                                        "seeds": np.asarray(gen.seeds, dtype=np.int64)}))
        files.append(LATENTS_FILE)
        output = "latents (the model has no decoder: final latents x_0, (N, C, H, W), in seed order)"
    detected = gen.detection_step
    record = {
        "model": model,
        "prompt": {"id": gen.prompt.id, "text": gen.prompt.text},
        "sampler": "ddim",
        "guidance": gen.guidance_scale,
        "num_inference_steps": gen.num_inference_steps,
        "seeds": list(gen.seeds),
        "mitigate": gen.mitigated,
        "gamma": gen.gamma,
        # App H: the first state index (0 = x_T) where δ(t) > −γ; −1: never flagged.
        "detection_step": {str(s): int(d) for s, d in zip(gen.seeds, detected, strict=True)},
        "flagged": int((detected >= 0).sum()),
        "output": output,
        "files": files,
    }
    atomic_write_bytes(out / RESULT_FILE, (json.dumps(record, indent=1) + "\n").encode())
    return record
