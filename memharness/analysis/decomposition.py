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
