"""Overestimation of the training latent: k = ‖x̂0(t)‖ / ‖x‖ (App B.1, Fig 12) and k ≈ g (Eq 13)."""

from __future__ import annotations

import numpy as np


def x0_hat_norm2(err_norm2: np.ndarray, err_dot_x: np.ndarray, x_norm2: np.ndarray) -> np.ndarray:
    """‖x̂0‖² from the residual e = x̂0 − x: ‖e + x‖² = ‖e‖² + 2⟨e, x⟩ + ‖x‖²."""
    return np.maximum(err_norm2 + 2.0 * err_dot_x + x_norm2, 0.0)


def overestimation_factor(x0_norm2: np.ndarray, x_norm2: np.ndarray) -> np.ndarray:
    """k = ‖x̂0(t)‖₂ / ‖x‖₂ (App B.1); k > 1 is overestimation, Eq 13 predicts k ≈ g at t = T."""
    return np.sqrt(x0_norm2 / x_norm2)


def guidance_slope(guidance: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Least-squares slope of k against g, per row of k (…, G); Eq 13 predicts 1.

    guidance: (G,) scales; k: (..., G) first-step overestimation factors.
    """
    g = np.asarray(guidance, dtype=np.float64)
    if g.size < 2 or np.ptp(g) == 0:
        raise ValueError("a slope needs at least two distinct guidance scales")
    gc = g - g.mean()
    kc = k - k.mean(axis=-1, keepdims=True)
    return (kc * gc).sum(axis=-1) / (gc * gc).sum()
