"""The sampler against a loop over diffusers' own DDIMScheduler / DDPMScheduler."""

from __future__ import annotations

import pytest
import torch

from memharness.errors import FieldError
from memharness.models import load_denoiser
from memharness.sampling import initial_latents, sample
from tests.helpers import small_card


def _diffusers_loop(denoiser, cond, seeds, g, sampler, steps):
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = DDIMScheduler if sampler == "ddim" else DDPMScheduler
    scheduler = cls.from_config(denoiser.card.scheduler)
    assert not scheduler.config.clip_sample
    scheduler.set_timesteps(steps)
    latents, generators = initial_latents(seeds, denoiser.card.latent_shape, dtype=torch.float64,
                                          device=torch.device("cpu"))
    for t in scheduler.timesteps:
        out_u, out_c = denoiser.model_output(latents, int(t), cond, need_uncond=g != 1.0)
        noise = out_c if out_u is None else out_u + g * (out_c - out_u)
        kwargs = {"generator": generators} if sampler == "ddpm" else {}
        latents = scheduler.step(noise, t, latents, **kwargs).prev_sample
    return latents


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("g", [1.0, 7.5])
def test_matches_diffusers_scheduler_loop(sampler, g):
    # diffusers keeps ᾱ in float32, we in float64: agreement to float32 precision, not bits.
    denoiser = load_denoiser(small_card())
    prompt = denoiser.prompts()[0]
    cond = denoiser.encode(prompt)
    ours = sample(denoiser, cond, seeds=[0, 1, 2], guidance_scale=g, sampler=sampler, num_inference_steps=20)
    theirs = _diffusers_loop(denoiser, cond, [0, 1, 2], g, sampler, 20)
    torch.testing.assert_close(ours.x_0, theirs, rtol=1e-5, atol=1e-5)


def test_hooks_see_every_step_and_uncond_only_when_guided():
    denoiser = load_denoiser(small_card())
    prompt = denoiser.prompts()[0]
    seen = []
    sample(denoiser, denoiser.encode(prompt), seeds=[0, 1], guidance_scale=1.0, num_inference_steps=7,
           hooks=[lambda s: seen.append((s.step, s.t, s.eps_uncond is None))])
    assert [s[0] for s in seen] == list(range(7))
    assert all(none for *_, none in seen)
    seen.clear()
    sample(denoiser, denoiser.encode(prompt), seeds=[0, 1], guidance_scale=0.5, num_inference_steps=3,
           hooks=[lambda s: seen.append(s.eps_uncond is None)])
    assert seen == [False, False, False]


def test_first_step_x0_hat_is_g_times_x_for_memorized_prompt():
    """Eq 13 on the analytic model: x̂0(T) ≈ g·x for a memorized prompt."""
    denoiser = load_denoiser(small_card(background_classes=64))
    prompt = next(p for p in denoiser.prompts() if p.kind == "memorized")
    x = denoiser.paired_latent(prompt).reshape(-1)
    for g in (0.5, 1.0, 2.0, 7.5):
        first: list = []

        def keep_first(state, first=first):
            if state.step == 0:
                first.append(state.x0_hat)

        sample(denoiser, denoiser.encode(prompt), seeds=range(8), guidance_scale=g, num_inference_steps=50,
               hooks=[keep_first])
        k = first[0].reshape(8, -1).norm(dim=1) / x.norm()
        assert k.mean().item() == pytest.approx(g, rel=0.05)


def test_seeds_are_reproducible_and_independent_of_batch():
    denoiser = load_denoiser(small_card())
    prompt = denoiser.prompts()[3]
    a = sample(denoiser, denoiser.encode(prompt), seeds=[5, 6], guidance_scale=7.5, sampler="ddpm",
               num_inference_steps=5)
    b = sample(denoiser, denoiser.encode(prompt), seeds=[6], guidance_scale=7.5, sampler="ddpm",
               num_inference_steps=5)
    torch.testing.assert_close(a.x_0[1:], b.x_0, rtol=0, atol=0)


def test_bad_arguments():
    denoiser = load_denoiser(small_card())
    # Each names its field, which the CLI prints as --sampler / --seeds (memharness.cli.runtime.flag).
    with pytest.raises(FieldError, match="^sampler: unknown sampler 'euler'"):
        sample(denoiser, 0, seeds=[0], guidance_scale=1.0, sampler="euler")
    with pytest.raises(FieldError, match="^seeds: at least one seed"):
        sample(denoiser, 0, seeds=[], guidance_scale=1.0)
