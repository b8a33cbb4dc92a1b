"""The analytic model is the exact posterior mean of its mixture."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memharness.errors import MemharnessError
from memharness.models import load_denoiser
from memharness.models.analytic import build_mixture
from tests.helpers import small_card


def _log_density(x_t, alpha_bar, mix):
    """log p(x_t) of the mixture, written independently of posterior_mean."""
    means = torch.as_tensor(mix.means)
    v = alpha_bar * torch.as_tensor(mix.variances) + (1 - alpha_bar)
    d = x_t.shape[-1]
    sq = ((x_t[None, :] - math.sqrt(alpha_bar) * means) ** 2).sum(-1)
    log_comp = torch.log(torch.as_tensor(mix.weights)) - 0.5 * d * torch.log(2 * math.pi * v) - sq / (2 * v)
    return torch.logsumexp(log_comp, 0)


@pytest.mark.parametrize("t", [981, 501, 41, 1])
def test_unconditional_equals_tweedie(t):
    """Tweedie: E[x0 | x_t] = (x_t + (1−ᾱ)∇log p(x_t)) / √ᾱ, with ∇ by autograd."""
    denoiser = load_denoiser(small_card())
    alpha_bar = denoiser.schedule.alpha_bar(t)
    gen = torch.Generator().manual_seed(t)
    x_t = torch.randn(denoiser.dim, generator=gen, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(_log_density(x_t, alpha_bar, denoiser.mixture), x_t)
    tweedie = (x_t + (1 - alpha_bar) * grad) / math.sqrt(alpha_bar)
    eps_u, _ = denoiser.model_output(x_t.detach().reshape(1, *denoiser.card.latent_shape), t, 0, need_uncond=True)
    x0 = (x_t.detach() - math.sqrt(1 - alpha_bar) * eps_u.reshape(-1)) / math.sqrt(alpha_bar)
    np.testing.assert_allclose(x0.numpy(), tweedie.detach().numpy(), rtol=1e-7, atol=1e-9)


def test_memorized_conditional_is_its_training_latent():
    denoiser = load_denoiser(small_card())
    prompt = next(p for p in denoiser.prompts() if p.kind == "memorized")
    x = denoiser.paired_latent(prompt).reshape(-1)
    for t in (981, 501, 1):
        ab = denoiser.schedule.alpha_bar(t)
        x_t = torch.randn(3, *denoiser.card.latent_shape, dtype=torch.float64)
        _, eps_c = denoiser.model_output(x_t, t, denoiser.encode(prompt), need_uncond=False)
        x0 = (x_t.reshape(3, -1) - math.sqrt(1 - ab) * eps_c.reshape(3, -1)) / math.sqrt(ab)
        np.testing.assert_allclose(x0.numpy(), x.expand(3, -1).numpy(), atol=1e-9)


def test_mixture_is_zero_mean_and_deterministic():
    params = small_card().params
    a, b = build_mixture(params, 64), build_mixture(params, 64)
    np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_allclose(a.weights @ a.means, 0.0, atol=1e-12)
    assert a.kinds.count("memorized") == 6 and a.kinds.count("normal") == 6
    other = build_mixture({**params, "seed": 4}, 64)
    assert not np.allclose(a.means, other.means)


def test_normal_prompt_pairs_with_a_member_of_its_class():
    denoiser = load_denoiser(small_card())
    mix = denoiser.mixture
    for p, kind in enumerate(mix.kinds):
        comp = mix.prompt_component[p]
        if kind == "memorized":
            np.testing.assert_array_equal(mix.paired[p], mix.means[comp])
            assert mix.variances[comp] == 0
        else:
            assert mix.variances[comp] > 0
            assert not np.allclose(mix.paired[p], mix.means[comp])


def test_unknown_parameter_and_prompt_are_rejected():
    with pytest.raises(MemharnessError, match="unknown parameter 'sede'"):
        load_denoiser(small_card(sede=1))
    from memharness.models.base import Prompt

    with pytest.raises(MemharnessError, match="unknown prompt"):
        load_denoiser(small_card()).encode(Prompt(id="other", text="x"))
