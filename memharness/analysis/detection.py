"""Detecting memorization while sampling (App H) and the baselines it explains (§5).

δ(t) = (w0(t) − √ᾱ_t) − (wT(t) − √(1−ᾱ_t))   (App H)

with (w0, wT) the least-squares decomposition x_t ≈ w0·r + wT·x_T (Eq 14) against a
reference r. App H does not say which r runs in real time, where neither x nor x_0 is known.
The references, by name:

- ``train``  r = x, the paired training latent (offline; Fig 10a,b,e,f);
- ``final``  r = x_0, the final latent of the same seed (offline; Fig 10c,d,g,h);
- ``online`` r = ρ · x̂0(t)/‖x̂0(t)‖: the current guided estimate (Eq 5 with Eq 8) rescaled to
  ρ, the norm of a data latent (√d for unit-variance latents such as SD's scaled ones).
  Why rescaled: x_t = √ᾱ_t x̂0(t) + √(1−ᾱ_t) ε̃ holds exactly (Eq 5), so with r = x̂0(t)
  itself w0 ≈ √ᾱ_t by construction and δ ≈ 0 for every prompt. At the data norm
  w0 ≈ √ᾱ_t·‖x̂0(t)‖/ρ = √ᾱ_t·k (Eq 13's k with ρ standing in for ‖x‖), so the
  overestimation k ≈ g of memorized prompts shows up in δ.

At the first state x_t = x_T the fit is exact with w0 = 0, wT = 1 for any r, so
δ(T) = −√ᾱ_T − (1 − √(1−ᾱ_T)) for every prompt (−0.079 for SD's schedule): the first state
says nothing and detection starts at the state after the first step (``first_state=1``).

All functions are pure numpy; the last axis of a per-state array is the state index.
"""

from __future__ import annotations

import numpy as np

from memharness.analysis.decomposition import decomposition_weights


def delta(
    w0: np.ndarray, wT: np.ndarray, sqrt_alpha_bar: np.ndarray, sqrt_one_minus_alpha_bar: np.ndarray
) -> np.ndarray:
    """δ(t) = (w0 − √ᾱ_t) − (wT − √(1−ᾱ_t)) (App H), elementwise."""
    return (w0 - sqrt_alpha_bar) - (wT - sqrt_one_minus_alpha_bar)


def online_weights(
    xt_r: np.ndarray, xt_T: np.ndarray, r_r: np.ndarray, r_T: np.ndarray, T_T: np.ndarray, rho2: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(w0, wT) of x_t against (ρ·r/‖r‖, x_T), from inner products with the unscaled r = x̂0(t).

    xt_r = ⟨x_t, r⟩, xt_T = ⟨x_t, x_T⟩, r_r = ‖r‖², r_T = ⟨r, x_T⟩, T_T = ‖x_T‖², rho2 = ρ².
    """
    scale = np.sqrt(rho2 / np.maximum(r_r, np.finfo(np.float64).tiny))  # r → s·r with ‖s·r‖ = ρ
    return decomposition_weights(xt_r * scale, xt_T, np.broadcast_to(rho2, np.shape(r_r)), r_T * scale, T_T)


def detection_step(delta_per_state: np.ndarray, *, gamma: float, first_state: int = 1) -> np.ndarray:
    """The first state index ≥ first_state where δ > −γ (App H's flag), −1 where it never fires."""
    fired = delta_per_state[..., first_state:] > -gamma
    if fired.shape[-1] == 0:  # no state at or after first_state: nothing can fire
        return np.full(fired.shape[:-1], -1)
    any_fired = fired.any(axis=-1)
    return np.where(any_fired, fired.argmax(axis=-1) + first_state, -1)


def wen_score(magnitude: np.ndarray, *, start: int = 0, end: int = 1, generations: int = 4) -> np.ndarray:
    """Wen et al.'s detection score: ‖ε_c − ε_u‖ averaged over steps [start, end) and the first
    ``generations`` seeds. magnitude: (..., N seeds, S steps) → (...)."""
    return magnitude[..., :generations, start:end].mean(axis=(-2, -1))


def first_local_minimum(magnitude: np.ndarray) -> np.ndarray:
    """Jain et al.'s dynamic transition: the first step k with m[k] < m[k+1] (the first local
    minimum of ‖ε_c − ε_u‖ over steps, last axis); the last step where the sequence never rises."""
    rises = np.diff(magnitude, axis=-1) > 0
    return np.where(rises.any(axis=-1), rises.argmax(axis=-1), magnitude.shape[-1] - 1)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + ½ P(tie)."""
    pos, neg = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def tpr_at_fpr(positive: np.ndarray, negative: np.ndarray, *, fpr: float = 0.01) -> tuple[float, float]:
    """(TPR, threshold) of the rule score > threshold, with the threshold the smallest value that
    flags at most ⌊fpr·n⌋ negatives (with few negatives that is the largest negative score)."""
    pos, neg = np.asarray(positive, np.float64).ravel(), np.sort(np.asarray(negative, np.float64).ravel())
    allowed = int(np.floor(fpr * neg.size))
    threshold = float(neg[neg.size - 1 - allowed])
    return float((pos > threshold).mean()), threshold
