"""The paper's quantities as pure functions of fixture arrays (no I/O, no torch)."""

from memharness.analysis.decomposition import decomposition_weights, schedule_deviation, severity_sums
from memharness.analysis.detection import (
    delta,
    detection_step,
    first_local_minimum,
    online_weights,
    roc_auc,
    tpr_at_fpr,
    wen_score,
)
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
    "delta",
    "detection_step",
    "eq11_scale",
    "first_local_minimum",
    "guidance_magnitude",
    "guidance_slope",
    "noise_cosine_with_xT",
    "online_weights",
    "overestimation_factor",
    "residual_cosine_with_neg_x",
    "roc_auc",
    "schedule_deviation",
    "severity_sums",
    "tpr_at_fpr",
    "wen_score",
    "x0_hat_cosine",
    "x0_hat_norm2",
]
