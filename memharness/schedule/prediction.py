"""A model output (ε, v or x̂0, by ``prediction_type``) turned into ε_θ(x_t) or x̂_0^{(t)} (Eq 5).

Duck-typed: numpy arrays, torch tensors, python floats. The operation order
is copied from DDIMScheduler.step (beta_prod_t = 1 - alpha_prod_t, then
** 0.5) so results are bit-identical when fed the same dtypes, including a
0-d torch tensor ᾱ taken from scheduler.alphas_cumprod[t].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memharness.errors import MemharnessError
from memharness.schedule.config import PREDICTION_TYPES


def _scalar(alpha_bar: Any) -> Any:
    # numpy scalars would turn `np.float64 * tensor` into numpy's business.
    if isinstance(alpha_bar, (int, float, np.integer, np.floating)):
        return float(alpha_bar)
    return alpha_bar


def _check_prediction_type(prediction_type: str) -> None:
    if prediction_type not in PREDICTION_TYPES:
        raise MemharnessError(f"prediction_type {prediction_type!r} is not supported; use one of {PREDICTION_TYPES}")


def epsilon_from_output(output: Any, x_t: Any, alpha_bar: Any, prediction_type: str) -> Any:
    """ε_θ(x_t) from a model output (Eq 5 solved for ε; v: ε = √ᾱ v + √(1-ᾱ) x_t)."""
    _check_prediction_type(prediction_type)
    alpha_prod_t = _scalar(alpha_bar)
    beta_prod_t = 1 - alpha_prod_t
    if prediction_type == "epsilon":
        return output
    if prediction_type == "sample":
        return (x_t - alpha_prod_t ** (0.5) * output) / beta_prod_t ** (0.5)
    return (alpha_prod_t**0.5) * output + (beta_prod_t**0.5) * x_t


def x0_from_output(output: Any, x_t: Any, alpha_bar: Any, prediction_type: str) -> Any:
    """x̂_0^{(t)} from a model output (Eq 5: x̂0 = (x_t - √(1-ᾱ_t) ε_θ)/√ᾱ_t; v: √ᾱ x_t - √(1-ᾱ) v)."""
    _check_prediction_type(prediction_type)
    alpha_prod_t = _scalar(alpha_bar)
    beta_prod_t = 1 - alpha_prod_t
    if prediction_type == "epsilon":
        return (x_t - beta_prod_t ** (0.5) * output) / alpha_prod_t ** (0.5)
    if prediction_type == "sample":
        return output
    return (alpha_prod_t**0.5) * x_t - (beta_prod_t**0.5) * output
