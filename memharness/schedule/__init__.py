"""Noise schedule of a diffusers scheduler config, in float64 numpy.

Mirrors what diffusers' ``DDIMScheduler`` / ``DDPMScheduler`` compute from the
same config (betas, ᾱ, timesteps, ᾱ_prev, DDPM variance), so that traces
recorded through diffusers can be compared with the paper's analytic schedules
without importing torch: this module sits on the fast ``check`` path.

Notation (variable name -> symbol in the paper, Section 2 and Appendices D-E):

- ``betas``            -> β_t, the forward-process variance (Eq 1)
- ``alphas``           -> α_t = 1 - β_t
- ``alphas_cumprod``   -> ᾱ_t = ∏_{r≤t} α_r (Eq 2-3)
- ``alpha_bar_prev``   -> ᾱ_{t-1}, where "t-1" is the previous *visited* timestep
                          of the strided sampler (Eq 7, 22)
- ``output``           -> ε_θ(x_t) for prediction_type "epsilon" (Eq 5-6)
- ``x0``               -> x̂_0^{(t)} (Eq 5)
- ``t_start``          -> T, the first visited timestep, where x_T is drawn

Indexing follows diffusers: timesteps are 0-based (``alphas_cumprod[0]`` is
ᾱ after one forward step, the paper's ᾱ_1) and the "state after the last
step" is the clean sample x_0. Its ᾱ is not ``alphas_cumprod[anything]``:
DDIM uses ``final_alpha_cumprod`` and DDPM uses 1.0 (see ``alpha_bar_of_state``).

Reading a scheduler config is :mod:`memharness.schedule.config`; turning a model
output into ε or x̂0 (Eq 5) is :mod:`memharness.schedule.prediction`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memharness.errors import MemharnessError
from memharness.schedule.config import (
    BETA_SCHEDULES,
    PREDICTION_TYPES,
    SAMPLERS,
    TIMESTEP_SPACINGS,
    as_int,
    schedule_fields,
)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """The variance schedule β_t (Eq 1), ᾱ_t (Eq 2) and the sampler's timestep grid.

    Build it with :meth:`from_config`. Arrays are float64 and read-only.
    ``eq=False``: two schedules compare by identity (ndarray fields have no
    single truth value).
    """

    num_train_timesteps: int
    betas: np.ndarray  # float64, shape (num_train_timesteps,), β_t (Eq 1)
    alphas_cumprod: np.ndarray  # float64, ᾱ_t = ∏ (1-β_r) (Eq 2)
    final_alpha_cumprod: float  # ᾱ_prev of DDIM's last step: 1.0 if set_alpha_to_one else ᾱ_0
    steps_offset: int
    timestep_spacing: str  # "leading" | "trailing" | "linspace"
    prediction_type: str

    def __post_init__(self) -> None:
        n = as_int(self.num_train_timesteps, "num_train_timesteps")
        betas = np.array(self.betas, dtype=np.float64)
        alphas_cumprod = np.array(self.alphas_cumprod, dtype=np.float64)
        if betas.shape != (n,) or alphas_cumprod.shape != (n,):
            raise MemharnessError(
                f"betas and alphas_cumprod must have shape ({n},) for num_train_timesteps={n}; "
                f"got {betas.shape} and {alphas_cumprod.shape}"
            )
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise MemharnessError(
                f"timestep_spacing {self.timestep_spacing!r} is not supported; use one of {TIMESTEP_SPACINGS}"
            )
        if self.prediction_type not in PREDICTION_TYPES:
            raise MemharnessError(
                f"prediction_type {self.prediction_type!r} is not supported; use one of {PREDICTION_TYPES}"
            )
        betas.flags.writeable = False
        alphas_cumprod.flags.writeable = False
        object.__setattr__(self, "num_train_timesteps", n)
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas_cumprod", alphas_cumprod)
        object.__setattr__(self, "final_alpha_cumprod", float(self.final_alpha_cumprod))
        object.__setattr__(self, "steps_offset", as_int(self.steps_offset, "steps_offset"))

    # ------------------------------------------------------------------ config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NoiseSchedule:
        """Build from a diffusers scheduler config (e.g. SD's ``scheduler_config.json``).

        Keys that change the numbers are required rather than defaulted, because
        diffusers' defaults differ between scheduler classes (DDIM defaults to
        ``clip_sample=True, set_alpha_to_one=True``; SD ships ``False``); the
        reading and its refusals are :func:`memharness.schedule.config.schedule_fields`.
        """
        return cls(**schedule_fields(config))

    # --------------------------------------------------------------- timesteps

    def _check_num_inference_steps(self, num_inference_steps: Any) -> int:
        k = as_int(num_inference_steps, "num_inference_steps")
        if not 1 <= k <= self.num_train_timesteps:
            raise MemharnessError(
                f"num_inference_steps={k} must be in [1, {self.num_train_timesteps}] (num_train_timesteps)"
            )
        return k

    def timesteps(self, num_inference_steps: int) -> np.ndarray:
        """Visited timesteps, descending, int64: what diffusers' ``set_timesteps`` gives.

        DDIM and DDPM share this grid. Raises where diffusers would produce a
        timestep with no ᾱ: "leading" with steps_offset ≥ 1 and
        num_inference_steps = num_train_timesteps yields t = num_train_timesteps,
        and "trailing" for some step counts (e.g. 61 of 1000) yields an extra
        t = -1 from float ``arange``; diffusers would fail or misindex in ``step``.
        """
        k = self._check_num_inference_steps(num_inference_steps)
        n = self.num_train_timesteps
        # "linspace", "leading", "trailing": Table 2 of arXiv:2305.08891, as in diffusers.
        if self.timestep_spacing == "linspace":
            ts = np.linspace(0, n - 1, k).round()[::-1].copy().astype(np.int64)
        elif self.timestep_spacing == "leading":
            step_ratio = n // k
            ts = (np.arange(0, k) * step_ratio).round()[::-1].copy().astype(np.int64)
            ts += self.steps_offset
        else:  # trailing
            step_ratio = n / k
            ts = np.round(np.arange(n, 0, -step_ratio)).astype(np.int64)
            ts -= 1
        if ts.shape != (k,) or ts.min() < 0 or ts.max() >= n:
            raise MemharnessError(
                f"timestep_spacing={self.timestep_spacing!r}, steps_offset={self.steps_offset} and "
                f"num_inference_steps={k} give timesteps outside [0, {n}) (diffusers: {ts[:3].tolist()}..."
                f"{ts[-3:].tolist()}, {ts.size} steps); choose another num_inference_steps"
            )
        return ts

    def previous_timestep(self, t: int, num_inference_steps: int, *, sampler: str = "ddim") -> int:
        """Timestep the sampler steps to from ``t``; negative means "the clean state x_0".

        ``sampler="ddim"``: t - num_train_timesteps // num_inference_steps, as
        ``DDIMScheduler.step`` (may be < -1). ``sampler="ddpm"``: the next entry of
        :meth:`timesteps`, or -1 after the last, as ``DDPMScheduler.previous_timestep``.
        The two agree for "leading" and for "trailing" when num_inference_steps
        divides num_train_timesteps. Otherwise (e.g. "linspace") DDIM steps to a
        noise level that is not the next visited timestep, so the next model call
        sees x at ᾱ[prev] labelled with a different t: diffusers' behaviour, kept.
        """
        _check_sampler(sampler)
        t = as_int(t, "t")
        k = self._check_num_inference_steps(num_inference_steps)
        if sampler == "ddim":
            return t - self.num_train_timesteps // k
        ts = self.timesteps(k)
        (where,) = np.nonzero(ts == t)
        if where.size == 0:
            raise MemharnessError(
                f"t={t} is not one of the {k} DDPM timesteps of this schedule; use a value from timesteps({k})"
            )
        i = int(where[0])
        return int(ts[i + 1]) if i + 1 < k else -1

    # ---------------------------------------------------------------------- ᾱ

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t (Eq 2) for 0 ≤ t < num_train_timesteps (no negative wrap-around)."""
        t = as_int(t, "t")
        if not 0 <= t < self.num_train_timesteps:
            raise MemharnessError(
                f"timestep t={t} is outside [0, {self.num_train_timesteps}); "
                "use alpha_bar_of_state for the final clean state"
            )
        return float(self.alphas_cumprod[t])

    def alpha_bar_prev(self, t: int, num_inference_steps: int, *, sampler: str) -> float:
        """ᾱ_{t-1} of the strided step from ``t`` (Eq 7 for DDIM, Eq 22-23 for DDPM).

        DDIM: ᾱ[prev] if prev ≥ 0 else ``final_alpha_cumprod`` (``DDIMScheduler.step``).
        DDPM: ᾱ[prev] if prev ≥ 0 else 1.0 (``DDPMScheduler.step`` uses ``self.one``).
        """
        prev = self.previous_timestep(t, num_inference_steps, sampler=sampler)
        self.alpha_bar(t)  # validates t
        return alpha_bar_of_state(self, prev, sampler=sampler)

    def ddpm_variance(self, t: int, num_inference_steps: int) -> float:
        """σ_t² = β̃_t = (1-ᾱ_prev)/(1-ᾱ_t) · β_t (Eq 23), as ``DDPMScheduler._get_variance``.

        β_t here is the *strided* β_t = 1 - ᾱ_t/ᾱ_prev, which equals Eq 1's β_t
        only when every timestep is visited. "fixed_small" variance, clamped at
        1e-20 like diffusers (which takes its log elsewhere).
        """
        alpha_prod_t = self.alpha_bar(t)
        alpha_prod_t_prev = self.alpha_bar_prev(t, num_inference_steps, sampler="ddpm")
        current_beta_t = 1 - alpha_prod_t / alpha_prod_t_prev
        variance = (1 - alpha_prod_t_prev) / (1 - alpha_prod_t) * current_beta_t
        return max(variance, 1e-20)

    # ---------------------------------------------------------- decompositions

    def _state_alpha_bars(self, timesteps: Any, sampler: str) -> np.ndarray:
        ts = np.asarray(timesteps)
        if ts.size and not np.issubdtype(ts.dtype, np.integer):
            raise MemharnessError(f"timesteps must be integers, got dtype {ts.dtype}; pass an int array")
        ts = ts.astype(np.int64)
        out = np.empty(ts.shape, dtype=np.float64)
        for idx, t in np.ndenumerate(ts):
            out[idx] = alpha_bar_of_state(self, int(t), sampler=sampler)
        return out

    def theoretical_weights(self, timesteps: Any, *, sampler: str = "ddim") -> tuple[np.ndarray, np.ndarray]:
        """(√ᾱ_t, √(1-ᾱ_t)): the schedule of Eq 14/21 that w0 and wT are compared with (Fig 10).

        Any t < 0 stands for the state after the last step (x_0). Its ᾱ is the
        ᾱ_prev that the last step used: ``final_alpha_cumprod`` for DDIM (so for
        SD, with set_alpha_to_one=False, √(1-ᾱ) ≈ 0.029, not 0) and 1.0 for DDPM.
        """
        ab = self._state_alpha_bars(timesteps, sampler)
        return np.sqrt(ab), np.sqrt(1.0 - ab)

    def eq20_weights(self, timesteps: Any, *, t_start: int, sampler: str = "ddim") -> tuple[np.ndarray, np.ndarray]:
        """Exact zero-loss decomposition x_t = a_t·x + b_t·x_T (Appendix D.2, Eq 20), as (a_t, b_t).

        With ε = (x_T - √ᾱ_T x)/√(1-ᾱ_T) (Eq 19) substituted into Eq 3,

            a_t = √ᾱ_t - √(1-ᾱ_t)·√ᾱ_T/√(1-ᾱ_T),   b_t = √(1-ᾱ_t)/√(1-ᾱ_T),

        with T = ``t_start`` (the first visited timestep, where x_T is drawn).
        The paper's printed Eq 20 has a_t = √ᾱ_t - √ᾱ_T/√(1-ᾱ_T), without the
        √(1-ᾱ_t) factor: a typo (at t = T it would give a_T ≠ 0 although x_T
        contains x only through ε). Both reduce to Eq 21 as ᾱ_T → 0.
        Negative t means the final clean state, as in :meth:`theoretical_weights`.
        """
        ab_T = self.alpha_bar(t_start)
        ab = self._state_alpha_bars(timesteps, sampler)
        s = math.sqrt(ab_T) / math.sqrt(1.0 - ab_T)
        sqrt_one_minus = np.sqrt(1.0 - ab)
        return np.sqrt(ab) - sqrt_one_minus * s, sqrt_one_minus / math.sqrt(1.0 - ab_T)


def _check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise MemharnessError(f"sampler {sampler!r} is not supported; use one of {SAMPLERS}")


def alpha_bar_of_state(schedule: NoiseSchedule, t: int, *, sampler: str = "ddim") -> float:
    """ᾱ of the latent labelled ``t``; t < 0 is the clean state after the last step.

    For that final state DDIM uses ``final_alpha_cumprod`` and DDPM uses 1.0,
    mirroring the ᾱ_prev of each scheduler's last ``step``.
    """
    _check_sampler(sampler)
    t = as_int(t, "t")
    if t < 0:
        return schedule.final_alpha_cumprod if sampler == "ddim" else 1.0
    return schedule.alpha_bar(t)


__all__ = [
    "BETA_SCHEDULES", "PREDICTION_TYPES", "SAMPLERS", "TIMESTEP_SPACINGS",
    "NoiseSchedule", "alpha_bar_of_state",
]
