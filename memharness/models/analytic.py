"""The analytic model: the exact posterior mean of a Gaussian mixture.

Training data is a mixture of isotropic Gaussians N(m_k, s_k² I) in latent space
(dimension D = 4·h·w, shaped like SD latents):

- each *memorized* prompt is a point mass (s_k = 0) at its one training latent x;
- each *normal* prompt is a Gaussian class; its paired x is one member of it;
- *background* classes are training data no prompt points at.

The conditional model of a prompt is its own component; the unconditional
model is the whole mixture, centred so that the data mean is exactly zero (with
uncentred data the unconditional x̂0 is the data mean and k ≈ g (Eq 13) fails).

For a component, x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε (Eq 3) gives x_t ~ N(√ᾱ_t m, v I) with
v = ᾱ_t s² + 1 − ᾱ_t, and the exact posterior mean

    E[x0 | x_t] = m + (√ᾱ_t s² / v) (x_t − √ᾱ_t m).

A mixture weighs these by the responsibilities r_k ∝ π_k N(x_t; √ᾱ_t m_k, v_k I).
The optimal noise predictor is then ε = (x_t − √ᾱ_t E[x0|x_t]) / √(1−ᾱ_t) (Eq 5 inverted),
which is what ``model_output`` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memharness.errors import FieldError, MemharnessError
from memharness.models.base import Prompt, prompt_index
from memharness.models.card import ModelCard
from memharness.schedule import NoiseSchedule

_DEFAULTS = {
    "seed": 0,
    "memorized_prompts": 16,
    "normal_prompts": 16,
    "background_classes": 64,
    "class_mean_std": math.sqrt(0.5),
    "class_std": math.sqrt(0.5),
    "duplicate_weight": 0.25,
}


@dataclass(frozen=True)
class MixtureSpec:
    """The training distribution, as float64 arrays (component k = row k)."""

    means: np.ndarray  # (K, D)  m_k
    variances: np.ndarray  # (K,)  s_k²; 0 for a memorized point mass
    weights: np.ndarray  # (K,)  π_k, sums to 1
    prompt_component: np.ndarray  # (P,)  the component each prompt conditions on
    paired: np.ndarray  # (P, D)  the training latent x of each prompt
    kinds: tuple[str, ...]  # (P,)  "memorized" | "normal"


def build_mixture(params: dict[str, Any], dim: int) -> MixtureSpec:
    """Draw the mixture deterministically from ``params['seed']``."""
    p = {**_DEFAULTS, **params}
    unknown = sorted(set(params) - set(_DEFAULTS))
    if unknown:
        raise MemharnessError(f"analytic card: unknown parameter {unknown[0]!r}; known: {', '.join(_DEFAULTS)}")
    n_mem, n_norm, n_bg = int(p["memorized_prompts"]), int(p["normal_prompts"]), int(p["background_classes"])
    if min(n_mem, n_norm, n_bg) < 0 or n_mem + n_norm == 0:
        raise MemharnessError("analytic card: prompt and class counts must be ≥ 0, with at least one prompt")
    rng = np.random.default_rng(int(p["seed"]))
    mean_std, class_std = float(p["class_mean_std"]), float(p["class_std"])

    n_classes = n_norm + n_bg
    class_means = rng.normal(0.0, mean_std, size=(n_classes, dim))
    # A memorized training latent is an ordinary member of some class, duplicated.
    source_class = rng.integers(0, n_classes, size=n_mem)
    mem_points = class_means[source_class] + rng.normal(0.0, class_std, size=(n_mem, dim))
    normal_members = class_means[:n_norm] + rng.normal(0.0, class_std, size=(n_norm, dim))

    means = np.concatenate([mem_points, class_means])
    variances = np.concatenate([np.zeros(n_mem), np.full(n_classes, class_std**2)])
    weights = np.concatenate([np.full(n_mem, float(p["duplicate_weight"])), np.ones(n_classes)])
    weights = weights / weights.sum()

    # Centre the data: the mixture mean Σ π_k m_k becomes exactly 0.
    centre = weights @ means
    means = means - centre
    paired = np.concatenate([mem_points, normal_members]) - centre

    return MixtureSpec(
        means=means,
        variances=variances,
        weights=weights,
        prompt_component=np.concatenate([np.arange(n_mem), n_mem + np.arange(n_norm)]),
        paired=paired,
        kinds=("memorized",) * n_mem + ("normal",) * n_norm,
    )


def posterior_mean(
    x_t: torch.Tensor,
    alpha_bar: float,
    means: torch.Tensor,
    variances: torch.Tensor,
    log_weights: torch.Tensor,
) -> torch.Tensor:
    """E[x0 | x_t] under a Gaussian mixture; x_t (B, D), means (K, D) → (B, D)."""
    sqrt_ab = math.sqrt(alpha_bar)
    v = alpha_bar * variances + (1.0 - alpha_bar)  # (K,) marginal variance of x_t per component
    dim = x_t.shape[1]
    # ‖x_t − √ᾱ m_k‖², expanded so the batch is one matrix product.
    sq = (
        (x_t * x_t).sum(1, keepdim=True)
        - 2.0 * sqrt_ab * x_t @ means.T
        + alpha_bar * (means * means).sum(1)
    )
    log_r = log_weights - 0.5 * dim * torch.log(v) - sq / (2.0 * v)
    r = torch.softmax(log_r, dim=1)  # (B, K) responsibilities
    gain = sqrt_ab * variances / v  # (K,) pull of x_t on each component's mean
    return (r * (1.0 - gain * sqrt_ab)) @ means + (r @ gain).unsqueeze(1) * x_t


class AnalyticDenoiser:
    """Exact ε-predictor of the mixture in ``build_mixture`` (float64, CPU)."""

    can_decode = False  # its latents are points of a Gaussian mixture: scores use latents
    latents_are_pixels = False
    any_prompt_text = False
    takes_weights = False
    hub_weights = False
    cpu_only = True

    @classmethod
    def from_card(cls, card: ModelCard, *, device: str, model_path: str | None, dtype: str | None,
                  sampler: str) -> AnalyticDenoiser:
        if dtype is not None:
            raise FieldError("dtype", "the analytic model always runs in float64")
        return cls(card, device=device)

    def __init__(self, card: ModelCard, *, device: str = "cpu") -> None:
        if card.prediction_type != "epsilon":
            raise MemharnessError(f"card {card.id}: the analytic model predicts epsilon, not {card.prediction_type}")
        self.card = card
        self.schedule = NoiseSchedule.from_config(card.scheduler)
        self.device = torch.device(device)
        self.dtype = torch.float64
        self.dim = int(np.prod(card.latent_shape))
        self.mixture = build_mixture(card.params, self.dim)
        to = {"device": self.device, "dtype": self.dtype}
        self._means = torch.as_tensor(self.mixture.means, **to)
        self._variances = torch.as_tensor(self.mixture.variances, **to)
        self._log_weights = torch.log(torch.as_tensor(self.mixture.weights, **to))
        n_mem = self.mixture.kinds.count("memorized")
        self._prompts = [
            Prompt(id=f"mem-{i:02d}", text=f"memorized training image {i:02d}", kind="memorized")
            if kind == "memorized"
            else Prompt(id=f"cls-{i - n_mem:02d}", text=f"a photo of class {i - n_mem:02d}", kind="normal")
            for i, kind in enumerate(self.mixture.kinds)
        ]

    def prompts(self) -> list[Prompt]:
        return list(self._prompts)

    def _index(self, prompt: Prompt) -> int:
        return prompt_index(self._prompts, prompt, model="analytic")

    def encode(self, prompt: Prompt) -> int:
        return int(self.mixture.prompt_component[self._index(prompt)])

    def paired_latent(self, prompt: Prompt) -> torch.Tensor:
        x = self.mixture.paired[self._index(prompt)]
        return torch.as_tensor(x, device=self.device, dtype=self.dtype).reshape(self.card.latent_shape)

    def _eps(self, x_flat: torch.Tensor, alpha_bar: float, comps: slice | int) -> torch.Tensor:
        if isinstance(comps, int):
            sl = slice(comps, comps + 1)
            one = torch.zeros(1, dtype=self.dtype, device=self.device)  # log-weight of a single component
            x0 = posterior_mean(x_flat, alpha_bar, self._means[sl], self._variances[sl], one)
        else:
            x0 = posterior_mean(x_flat, alpha_bar, self._means, self._variances, self._log_weights)
        # ε from x̂0: Eq 5 solved for ε.
        return (x_flat - math.sqrt(alpha_bar) * x0) / math.sqrt(1.0 - alpha_bar)

    def model_output(
        self, x_t: torch.Tensor, t: int, cond: Any, *, need_uncond: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        alpha_bar = self.schedule.alpha_bar(int(t))
        flat = x_t.reshape(x_t.shape[0], -1).to(self.dtype)
        eps_c = self._eps(flat, alpha_bar, int(cond)).reshape(x_t.shape)
        eps_u = self._eps(flat, alpha_bar, slice(None)).reshape(x_t.shape) if need_uncond else None
        return eps_u, eps_c
