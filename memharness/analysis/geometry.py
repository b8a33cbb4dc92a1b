"""Cosines and norms from recorded inner products (Fig 1, 5, 13)."""

from __future__ import annotations

import numpy as np


def cosine(dot: np.ndarray, norm2_a: np.ndarray, norm2_b: np.ndarray) -> np.ndarray:
    """cos(a, b) = ⟨a, b⟩ / (‖a‖‖b‖); 0 where a vector is zero."""
    denom = np.sqrt(norm2_a * norm2_b)
    return np.divide(dot, denom, out=np.zeros(np.broadcast(dot, denom).shape), where=denom > 0)


def x0_hat_cosine(err_norm2, err_dot_x, x_norm2) -> np.ndarray:
    """cos(x̂0(t), x) (Fig 1, y-axis) from the residual e = x̂0 − x: ⟨e + x, x⟩ / (‖e + x‖‖x‖)."""
    x0_norm2 = np.maximum(err_norm2 + 2.0 * err_dot_x + x_norm2, 0.0)
    return cosine(err_dot_x + x_norm2, x0_norm2, x_norm2)


def noise_cosine_with_xT(res_norm2, res_dot_xT, xT_norm2) -> np.ndarray:
    """cos(ε, x_T) (Fig 5a,b) from the residual r = ε − x_T: ⟨r + x_T, x_T⟩ / (‖r + x_T‖‖x_T‖)."""
    eps_norm2 = np.maximum(res_norm2 + 2.0 * res_dot_xT + xT_norm2, 0.0)
    return cosine(res_dot_xT + xT_norm2, eps_norm2, xT_norm2)


def residual_cosine_with_neg_x(res_dot_x, res_norm2, x_norm2) -> np.ndarray:
    """cos(ε − x_T, −x) (Fig 5c,d): how much of −x a noise prediction carries beyond x_T."""
    return cosine(-res_dot_x, res_norm2, x_norm2)


def guidance_magnitude(res_c_norm2, res_u_norm2, res_c_dot_res_u) -> np.ndarray:
    """‖ε_c − ε_u‖₂ (Wen et al.; §4) = ‖r_c − r_u‖ with r = ε − x_T."""
    return np.sqrt(np.maximum(res_c_norm2 - 2.0 * res_c_dot_res_u + res_u_norm2, 0.0))


def eq11_scale(alpha_bar_T: float) -> float:
    """s = √ᾱ_T / √(1−ᾱ_T): under memorization ε_c(x_T) ≈ x_T − s·x (Eq 11)."""
    return float(np.sqrt(alpha_bar_T) / np.sqrt(1.0 - alpha_bar_T))
