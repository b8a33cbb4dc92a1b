"""DDIM (Eq 7) and DDPM (Eq 22) sampling with classifier-free guidance (Eq 8).

One prompt, a batch of seeds, one guidance scale per call. The arithmetic
follows diffusers' ``DDIMScheduler.step`` / ``DDPMScheduler.step`` and the
StableDiffusionPipeline loop operation for operation, so that a diffusers
backend can match ``pipe(...)`` exactly:

- x_T is drawn per seed from its own ``torch.Generator`` (as ``randn_tensor``
  with a list of generators), and DDPM's step noise z from the same generators;
- at g == 1 only the conditional pass runs, as in diffusers (ε_u is then None);
  for any other g both run and Eq 8 applies (diffusers also skips the
  unconditional pass for g < 1, which would ignore g; we do not);
- no clipping of x̂0, ever.

Step hooks see every step's state for recording, detection and mitigation. A guidance
policy (``guidance_policy=``) chooses g per seed at each step from both predictions, before
Eq 8 is applied (App H's mitigation, Jain et al.'s transition point); with a policy both ε_u
and ε_c are computed at every step, g == 1 included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from memharness.errors import FieldError, MemharnessError
from memharness.guidance import uses_unconditional
from memharness.models.base import Denoiser
from memharness.schedule import SAMPLERS
from memharness.schedule.prediction import epsilon_from_output, x0_from_output


@dataclass(frozen=True)
class StepState:
    """What a hook sees at denoising step ``step`` (0-based; the paper's "after step+1 steps")."""

    step: int
    t: int  # timestep of the input state
    alpha_bar: float  # ᾱ_t
    alpha_bar_prev: float  # ᾱ of the state this step produces
    guidance_scale: float  # the nominal g (Eq 8) of the call
    x_t: torch.Tensor  # (N, C, H, W) input state
    eps_uncond: torch.Tensor | None  # ε_θ(x_t, e_∅), None when g == 1 without a policy
    eps_cond: torch.Tensor  # ε_θ(x_t, e_c)
    x0_hat: torch.Tensor  # x̂0(t) from the guided ε̃ actually used (Eq 5 with Eq 8)
    guidance_used: torch.Tensor | None = None  # (N,) float64 CPU: the g each seed was guided with


StepHook = Callable[[StepState], None]


@dataclass(frozen=True)
class PolicyInput:
    """What a guidance policy sees at step ``step``: both predictions, before Eq 8 is applied."""

    step: int
    t: int
    alpha_bar: float  # ᾱ_t of x_t
    alpha_bar_prev: float
    guidance_scale: float  # the nominal g of the call
    x_T: torch.Tensor  # (N, C, H, W)
    x_t: torch.Tensor
    eps_uncond: torch.Tensor  # ε_θ(x_t, e_∅)
    eps_cond: torch.Tensor  # ε_θ(x_t, e_c)
    x0_hat: torch.Tensor  # x̂0(t) at the nominal g (Eq 5 with Eq 8), what App H's δ reads


class GuidancePolicy(Protocol):
    """Per-seed guidance: ``reset`` before the first step, then one call per step → g of shape (N,)."""

    def reset(self, num_seeds: int, num_steps: int) -> None: ...

    def __call__(self, state: PolicyInput) -> torch.Tensor: ...


@dataclass(frozen=True)
class SampleResult:
    x_T: torch.Tensor  # (N, C, H, W) initial latents
    x_0: torch.Tensor  # (N, C, H, W) final latents
    timesteps: tuple[int, ...]
    guidance_used: torch.Tensor | None = None  # (N, S) float64 CPU: g per seed and step


def initial_latents(
    seeds: Sequence[int], shape: Sequence[int], *, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """x_T ~ N(0, I), one CPU generator per seed (diffusers' ``randn_tensor`` with a generator list)."""
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    draws = [torch.randn((1, *shape), generator=g, dtype=dtype) for g in generators]
    return torch.cat(draws).to(device), generators


def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    # diffusers keeps ᾱ as float32 tensors; float64 latents keep float64 scalars.
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    return torch.tensor(value, dtype=dtype, device=like.device)


def sample(
    denoiser: Denoiser,
    cond: Any,
    *,
    seeds: Sequence[int],
    guidance_scale: float,
    sampler: str = "ddim",
    num_inference_steps: int = 50,
    hooks: Sequence[StepHook] = (),
    guidance_policy: GuidancePolicy | None = None,
) -> SampleResult:
    """Denoise ``len(seeds)`` latents for one prompt's conditioning ``cond``.

    ``guidance_policy``: per-seed g at each step (see :class:`GuidancePolicy`); None keeps
    ``guidance_scale`` for every seed and step with diffusers' exact arithmetic.
    """
    step_fn = sampler_step(sampler)
    if not seeds:
        raise FieldError("seeds", "at least one seed is needed")
    schedule = denoiser.schedule
    prediction_type = denoiser.card.prediction_type
    timesteps = [int(t) for t in schedule.timesteps(num_inference_steps)]
    x_T, generators = initial_latents(seeds, denoiser.card.latent_shape, dtype=denoiser.dtype, device=denoiser.device)
    need_uncond = uses_unconditional(guidance_scale) or guidance_policy is not None
    if guidance_policy is not None:
        guidance_policy.reset(len(seeds), len(timesteps))
    used = []
    x_t = x_T
    for step, t in enumerate(timesteps):
        out_u, out_c = denoiser.model_output(x_t, t, cond, need_uncond=need_uncond)
        ab_value = schedule.alpha_bar(t)
        ab_prev_value = schedule.alpha_bar_prev(t, num_inference_steps, sampler=sampler)
        alpha_bar, alpha_bar_prev = _scalar(ab_value, x_t), _scalar(ab_prev_value, x_t)
        if guidance_policy is None:
            # Eq 8, in diffusers' form u + g(c − u), applied in the model's output space.
            output = out_c if out_u is None else out_u + guidance_scale * (out_c - out_u)
            g_used = torch.full((x_t.shape[0],), float(guidance_scale), dtype=torch.float64)
        else:
            output, g_used = _policy_guided(
                guidance_policy, out_u, out_c, prediction_type=prediction_type, guidance_scale=guidance_scale,
                step=step, t=t, ab_value=ab_value, ab_prev_value=ab_prev_value, alpha_bar=alpha_bar,
                x_T=x_T, x_t=x_t,
            )
        used.append(g_used)
        x0_hat = x0_from_output(output, x_t, alpha_bar, prediction_type)  # Eq 5
        eps = epsilon_from_output(output, x_t, alpha_bar, prediction_type)

        if hooks:
            eps_u, eps_c = _raw_epsilons(out_u, out_c, x_t, alpha_bar, prediction_type)
            state = StepState(step=step, t=t, alpha_bar=ab_value, alpha_bar_prev=ab_prev_value,
                              guidance_scale=float(guidance_scale), x_t=x_t, eps_uncond=eps_u, eps_cond=eps_c,
                              x0_hat=x0_hat, guidance_used=g_used)
            for hook in hooks:
                hook(state)

        x_t = step_fn(x_t, x0_hat, eps, alpha_bar, alpha_bar_prev, t=t, generators=generators)
    return SampleResult(x_T=x_T, x_0=x_t, timesteps=tuple(timesteps), guidance_used=torch.stack(used, dim=1))


def _policy_guided(
    policy: GuidancePolicy, out_u: torch.Tensor, out_c: torch.Tensor, *, prediction_type: str,
    guidance_scale: float, step: int, t: int, ab_value: float, ab_prev_value: float, alpha_bar: torch.Tensor,
    x_T: torch.Tensor, x_t: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(guided output, g per seed): Eq 8 with the g the policy picks for each seed from both predictions."""
    nominal = out_u + guidance_scale * (out_c - out_u)  # Eq 8 at the nominal g
    g_used = _policy_guidance(policy, PolicyInput(
        step=step, t=t, alpha_bar=ab_value, alpha_bar_prev=ab_prev_value,
        guidance_scale=float(guidance_scale), x_T=x_T, x_t=x_t,
        eps_uncond=epsilon_from_output(out_u, x_t, alpha_bar, prediction_type),
        eps_cond=epsilon_from_output(out_c, x_t, alpha_bar, prediction_type),
        x0_hat=x0_from_output(nominal, x_t, alpha_bar, prediction_type),
    ), x_t.shape[0])
    g = g_used.to(device=out_c.device, dtype=out_c.dtype).reshape(-1, *([1] * (out_c.dim() - 1)))
    return out_u + g * (out_c - out_u), g_used  # Eq 8 with one g per seed; g = 0 gives ε_u exactly


def _raw_epsilons(out_u: torch.Tensor | None, out_c: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor,
                  prediction_type: str) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(ε_θ(x_t, e_∅) or None when it was not computed, ε_θ(x_t, e_c)): the unguided outputs as ε (Eq 5)."""
    eps_uncond = None if out_u is None else epsilon_from_output(out_u, x_t, alpha_bar, prediction_type)
    return eps_uncond, epsilon_from_output(out_c, x_t, alpha_bar, prediction_type)


def _policy_guidance(policy: GuidancePolicy, state: PolicyInput, n: int) -> torch.Tensor:
    """The policy's g for each of the n seeds, as float64 on the CPU."""
    value = torch.as_tensor(policy(state)).detach().to(device="cpu", dtype=torch.float64)
    if value.dim() == 0:
        value = value.expand(n)
    if value.shape != (n,) or not bool(torch.isfinite(value).all()):
        raise MemharnessError(f"guidance_policy: step {state.step} returned g of shape {tuple(value.shape)}; "
                              f"expected {n} finite values, one per seed")
    return value.clone()


# --------------------------------------------------------------------------- samplers
# One step x_t → x_{t−1} from x̂0 and the guided ε̃ (with ᾱ_t, ᾱ_{t−1} as tensors); ``generators``
# are the seeds' own, for samplers that draw noise.
SamplerStep = Callable[..., torch.Tensor]


def ddim_step(x_t, x0_hat, eps, alpha_bar, alpha_bar_prev, *, t: int, generators) -> torch.Tensor:
    """Eq 7 with η = 0: x_{t−1} = √ᾱ_{t−1} x̂0 + √(1−ᾱ_{t−1}) ε̃."""
    return alpha_bar_prev ** (0.5) * x0_hat + (1 - alpha_bar_prev) ** (0.5) * eps


def ddpm_step(x_t, x0_hat, eps, alpha_bar, alpha_bar_prev, *, t: int, generators) -> torch.Tensor:
    """Eq 22 written as the posterior mean μ̃(x_t, x̂0) (DDPM's Eq 7), as diffusers does; α_t, β_t
    are the strided ones: α_t = ᾱ_t / ᾱ_{t−1}."""
    beta_prod_t, beta_prod_t_prev = 1 - alpha_bar, 1 - alpha_bar_prev
    current_alpha_t = alpha_bar / alpha_bar_prev
    current_beta_t = 1 - current_alpha_t
    x0_coeff = (alpha_bar_prev ** (0.5) * current_beta_t) / beta_prod_t
    xt_coeff = current_alpha_t ** (0.5) * beta_prod_t_prev / beta_prod_t
    mean = x0_coeff * x0_hat + xt_coeff * x_t
    if t > 0:
        # σ_t z with σ_t² = β̃_t (Eq 23), in diffusers' arithmetic ("fixed_small", clamped);
        # z drawn per seed like randn_tensor with a generator list.
        z = torch.cat([torch.randn((1, *x_t.shape[1:]), generator=g, dtype=x_t.dtype) for g in generators])
        variance = torch.clamp(beta_prod_t_prev / beta_prod_t * current_beta_t, min=1e-20)
        mean = mean + variance ** (0.5) * z.to(x_t.device)
    return mean


# Sampler name → its step. The names are the schedule's (``memharness.schedule.SAMPLERS``: it knows
# each sampler's ᾱ of the final state); a sampler is added in both places, which the check below keeps true.
_STEPS: dict[str, SamplerStep] = {"ddim": ddim_step, "ddpm": ddpm_step}
if tuple(_STEPS) != SAMPLERS:
    raise ImportError(f"memharness.sampling: steps for {tuple(_STEPS)}, the schedule knows {SAMPLERS}")


def sampler_step(name: str) -> SamplerStep:
    step = _STEPS.get(name)
    if step is None:
        raise FieldError("sampler", f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return step
