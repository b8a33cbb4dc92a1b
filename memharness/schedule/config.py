"""Read a diffusers scheduler config into the numbers of a noise schedule, refusing what we cannot mirror.

Keys that change the numbers are required rather than defaulted, because diffusers' defaults
differ between scheduler classes (DDIM defaults to ``clip_sample=True, set_alpha_to_one=True``;
SD ships ``False``). The schedule math itself lives in :mod:`memharness.schedule`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np

from memharness.errors import MemharnessError

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SAMPLERS = ("ddim", "ddpm")


def as_int(value: Any, what: str) -> int:
    """``value`` as an int, or a MemharnessError naming ``what``."""
    # operator.index takes python/numpy ints and integer 0-d torch tensors but
    # refuses floats, so 999.5 cannot silently become a timestep.
    if isinstance(value, bool):
        raise MemharnessError(f"{what} must be an integer, got {value!r}; pass an int")
    try:
        return operator.index(value)
    except TypeError:
        raise MemharnessError(f"{what} must be an integer, got {value!r}; pass an int") from None


def _cosine_betas(num_train_timesteps: int, max_beta: float = 0.999) -> np.ndarray:
    """diffusers' ``betas_for_alpha_bar`` with the GLIDE cosine ᾱ(t), kept in float64."""

    def alpha_bar_fn(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    n = num_train_timesteps
    return np.array(
        [min(1 - alpha_bar_fn((i + 1) / n) / alpha_bar_fn(i / n), max_beta) for i in range(n)],
        dtype=np.float64,
    )


def _require(config: Mapping[str, Any], key: str, why: str) -> Any:
    if key not in config or config[key] is None:
        raise MemharnessError(
            f"scheduler config is missing {key!r} ({why}); copy it from the model's scheduler_config.json"
        )
    return config[key]


def _num_train_timesteps(config: Mapping[str, Any]) -> int:
    """The length of the β schedule (Eq 1), at least 1."""
    n = as_int(
        _require(config, "num_train_timesteps", "it sets the length of the β schedule"),
        "num_train_timesteps",
    )
    if n < 1:
        raise MemharnessError(f"num_train_timesteps must be ≥ 1, got {n}; fix the scheduler config")
    return n


def _refuse_x0_rescaling(config: Mapping[str, Any]) -> None:
    """Clipping/thresholding x̂0 would hide exactly the quantity the paper measures."""
    if config.get("clip_sample"):
        raise MemharnessError(
            "clip_sample=True clips x̂0 to [-1, 1] and destroys the overestimation factor k; set clip_sample: false"
        )
    if config.get("thresholding"):
        raise MemharnessError(
            "thresholding=True rescales x̂0 and destroys the overestimation factor k; set thresholding: false"
        )
    if config.get("rescale_betas_zero_snr"):
        raise MemharnessError(
            "rescale_betas_zero_snr=True (ᾱ_T = 0) is not supported: Eq 5 divides by √ᾱ_T; "
            "set rescale_betas_zero_snr: false"
        )


def _named_betas(config: Mapping[str, Any], n: int) -> np.ndarray:
    """β_t (Eq 1) of a named ``beta_schedule``: linear, linear in √β (latent diffusion) or cosine."""
    schedule = _require(config, "beta_schedule", "or give trained_betas")
    if schedule == "squaredcos_cap_v2":
        return _cosine_betas(n)
    if schedule not in ("linear", "scaled_linear"):
        raise MemharnessError(
            f"beta_schedule {schedule!r} is not supported; use one of {BETA_SCHEDULES} or trained_betas"
        )
    beta_start = float(_require(config, "beta_start", f"beta_schedule {schedule!r} needs it"))
    beta_end = float(_require(config, "beta_end", f"beta_schedule {schedule!r} needs it"))
    if schedule == "linear":
        return np.linspace(beta_start, beta_end, n, dtype=np.float64)
    # Latent-diffusion schedule: linear in √β.
    return np.linspace(beta_start**0.5, beta_end**0.5, n, dtype=np.float64) ** 2


def _betas(config: Mapping[str, Any], n: int) -> np.ndarray:
    """β_t (Eq 1), float64, each in (0, 1): ``trained_betas`` if given, else the named schedule."""
    trained_betas = config.get("trained_betas")
    if trained_betas is not None:
        # diffusers gives trained_betas precedence over beta_schedule.
        betas = np.asarray(trained_betas, dtype=np.float64).reshape(-1)
        if betas.shape != (n,):
            raise MemharnessError(
                f"trained_betas has {betas.size} values but num_train_timesteps is {n}; make them agree"
            )
    else:
        betas = _named_betas(config, n)
    if not (np.all(np.isfinite(betas)) and np.all(betas > 0) and np.all(betas < 1)):
        raise MemharnessError("betas must all lie in (0, 1) (Eq 1); fix beta_start/beta_end or trained_betas")
    return betas


def _sampler_settings(config: Mapping[str, Any]) -> tuple[bool, int, str, str]:
    """(set_alpha_to_one, steps_offset, prediction_type, timestep_spacing), each checked."""
    set_alpha_to_one = _require(config, "set_alpha_to_one", "it sets ᾱ_prev of DDIM's last step")
    if not isinstance(set_alpha_to_one, bool):
        raise MemharnessError(f"set_alpha_to_one must be true or false, got {set_alpha_to_one!r}")
    steps_offset = as_int(_require(config, "steps_offset", "it shifts 'leading' timesteps"), "steps_offset")
    if steps_offset < 0:
        raise MemharnessError(f"steps_offset must be ≥ 0, got {steps_offset}; fix the scheduler config")

    prediction_type = config.get("prediction_type") or "epsilon"
    if prediction_type not in PREDICTION_TYPES:
        raise MemharnessError(
            f"prediction_type {prediction_type!r} is not supported; use one of {PREDICTION_TYPES}"
        )
    timestep_spacing = config.get("timestep_spacing") or "leading"
    if timestep_spacing not in TIMESTEP_SPACINGS:
        raise MemharnessError(
            f"timestep_spacing {timestep_spacing!r} is not supported; use one of {TIMESTEP_SPACINGS}"
        )
    return set_alpha_to_one, steps_offset, prediction_type, timestep_spacing


def schedule_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a :class:`memharness.schedule.NoiseSchedule` from a diffusers scheduler config.

    β_t (Eq 1), ᾱ_t = ∏_{r≤t} (1-β_r) (Eq 2) and the ᾱ_prev of DDIM's last step
    (1.0 if ``set_alpha_to_one`` else ᾱ_0), plus the sampler's grid settings.
    """
    if not isinstance(config, Mapping):
        raise MemharnessError(f"scheduler config must be a mapping, got {type(config).__name__}")
    n = _num_train_timesteps(config)
    _refuse_x0_rescaling(config)
    betas = _betas(config, n)
    set_alpha_to_one, steps_offset, prediction_type, timestep_spacing = _sampler_settings(config)

    alphas_cumprod = np.cumprod(1.0 - betas)  # ᾱ_t (Eq 2)
    final_alpha_cumprod = 1.0 if set_alpha_to_one else float(alphas_cumprod[0])
    return {
        "num_train_timesteps": n,
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "final_alpha_cumprod": final_alpha_cumprod,
        "steps_offset": steps_offset,
        "timestep_spacing": timestep_spacing,
        "prediction_type": prediction_type,
    }
