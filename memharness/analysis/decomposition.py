"""Decomposition of x_t into the clean latent and the initial noise (Eq 14, Fig 10).

x_t ≈ w0 · a + wT · x_T, solved by least squares, with a = x (the training latent,
Fig 10a,b,e,f) or a = x_0 (the final latent, Fig 10c,d,g,h). The normal equations
need only inner products, so the weights come exactly from the recorded Gram.
"""

from __future__ import annotations

import numpy as np


def decomposition_weights(
    xt_a: np.ndarray, xt_T: np.ndarray, a_a: np.ndarray, a_T: np.ndarray, T_T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(w0, wT) minimising ‖x_t − w0·a − wT·x_T‖², elementwise over broadcast arrays.

    xt_a = ⟨x_t, a⟩, xt_T = ⟨x_t, x_T⟩, a_a = ‖a‖², a_T = ⟨a, x_T⟩, T_T = ‖x_T‖².
    Normal equations [[a_a, a_T], [a_T, T_T]] · (w0, wT) = (xt_a, xt_T), solved by Cramer's rule.
    """
    det = a_a * T_T - a_T * a_T
    w0 = (xt_a * T_T - xt_T * a_T) / det
    wT = (xt_T * a_a - xt_a * a_T) / det
    return w0, wT


def schedule_deviation(
    w0: np.ndarray, wT: np.ndarray, sqrt_alpha_bar: np.ndarray, sqrt_one_minus_alpha_bar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(w0 − √ᾱ_t, wT − √(1−ᾱ_t)): the departure from the schedule of Eq 14/21 (Fig 10)."""
    return w0 - sqrt_alpha_bar, wT - sqrt_one_minus_alpha_bar


def severity_sums(
    mean_w0: np.ndarray, mean_wT: np.ndarray, sqrt_alpha_bar: np.ndarray, sqrt_one_minus_alpha_bar: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three quantities of Fig 11, summed over states (last axis), from seed-mean weights E[w]:

    excess of x        Σ_t (E[w0] − √ᾱ_t)
    noise suppression  −Σ_t (E[wT] − √(1−ᾱ_t))
    overall deviation  Σ_t ((E[w0] − √ᾱ_t) − (E[wT] − √(1−ᾱ_t)))   (the sum of δ(t), App H)
    """
    d0, dT = schedule_deviation(mean_w0, mean_wT, sqrt_alpha_bar, sqrt_one_minus_alpha_bar)
    return d0.sum(-1), -dT.sum(-1), (d0 - dT).sum(-1)
