"""memharness samples a diffusers pipeline exactly as ``pipe(...)`` does: bit for bit on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memharness.models.base import Prompt
from memharness.models.diffusers_sd import DiffusersDenoiser, card_from_pipeline
from memharness.models.tiny import build_tiny_pipeline
from memharness.sampling import sample

SEEDS = [3, 7]
PROMPT = Prompt(id="p0", text="a photo of an astronaut riding a horse")


def _pair(prediction_type: str, sampler: str):
    pipe = build_tiny_pipeline(prediction_type=prediction_type, scheduler=sampler)
    denoiser = DiffusersDenoiser(card_from_pipeline(pipe, model_id="tiny"), pipe, sampler=sampler)
    return pipe, denoiser


def _pipe_latents(pipe, g: float, steps: int, output_type: str = "latent"):
    return pipe(
        prompt=PROMPT.text, num_images_per_prompt=len(SEEDS), guidance_scale=g, num_inference_steps=steps,
        generator=[torch.Generator().manual_seed(s) for s in SEEDS], output_type=output_type,
    ).images


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("g", [1.0, 7.5])
def test_final_latents_equal_pipe(sampler, prediction_type, g):
    pipe, denoiser = _pair(prediction_type, sampler)
    ours = sample(denoiser, denoiser.encode(PROMPT), seeds=SEEDS, guidance_scale=g, sampler=sampler,
                  num_inference_steps=6)
    theirs = _pipe_latents(pipe, g, 6)
    assert torch.equal(ours.x_0, theirs), (ours.x_0 - theirs).abs().max()


def test_decoded_images_equal_pipe():
    pipe, denoiser = _pair("epsilon", "ddim")
    ours = sample(denoiser, denoiser.encode(PROMPT), seeds=SEEDS, guidance_scale=7.5, num_inference_steps=4)
    theirs = _pipe_latents(pipe, 7.5, 4, output_type="np")  # float images in [0, 1]
    np.testing.assert_array_equal(denoiser.decode(ours.x_0), (theirs * 255).round().astype(np.uint8))


def test_eps_and_x0_are_converted_from_v():
    """Hooks see ε and x̂0 (Eq 5) whatever the model predicts; for v: x̂0 = √ᾱ x_t − √(1−ᾱ) v."""
    _, denoiser = _pair("v_prediction", "ddim")
    seen = []
    sample(denoiser, denoiser.encode(PROMPT), seeds=SEEDS, guidance_scale=7.5, num_inference_steps=3,
           hooks=[seen.append])
    first = seen[0]
    ab = first.alpha_bar
    eps = (1 - 7.5) * first.eps_uncond + 7.5 * first.eps_cond
    x0 = (first.x_t - (1 - ab) ** 0.5 * eps) / ab**0.5  # Eq 5 with the guided ε (Eq 8)
    torch.testing.assert_close(first.x0_hat, x0, rtol=1e-4, atol=1e-4)


def test_scheduler_that_clips_is_rejected():
    from diffusers import DDIMScheduler

    from memharness.errors import MemharnessError
    from memharness.models.diffusers_sd import schedule_of

    with pytest.raises(MemharnessError, match="clip"):
        schedule_of(DDIMScheduler(clip_sample=True))
