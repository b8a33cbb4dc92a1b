"""The paper's quantities as pure functions of fixture arrays (no I/O, no torch)."""

from memharness.analysis.decomposition import decomposition_weights, schedule_deviation, severity_sums
from memharness.analysis.geometry import (
    cosine,
    eq11_scale,
    guidance_magnitude,
    noise_cosine_with_xT,
    residual_cosine_with_neg_x,
    x0_hat_cosine,
)
from memharness.analysis.overestimation import guidance_slope, overestimation_factor, x0_hat_norm2

__all__ = [
    "cosine",
    "decomposition_weights",
    "eq11_scale",
    "guidance_magnitude",
    "guidance_slope",
    "noise_cosine_with_xT",
    "overestimation_factor",
    "residual_cosine_with_neg_x",
    "schedule_deviation",
    "severity_sums",
    "x0_hat_cosine",
    "x0_hat_norm2",
]
