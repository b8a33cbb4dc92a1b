"""Statistics shared by claim checks: bootstrap CIs and interval-against-bound decisions."""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def bootstrap_mean_ci(values: np.ndarray, *, seed: int = 0, n_resamples: int = 2000) -> tuple[float, float]:
    """95 % BCa bootstrap CI of the mean (scipy.stats.bootstrap), deterministic for a seed."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    res = stats.bootstrap(
        (values,), np.mean, confidence_level=CONFIDENCE, n_resamples=n_resamples,
        method="BCa", rng=np.random.default_rng(seed),
    )
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa degenerates on near-constant data
        res = stats.bootstrap(
            (values,), np.mean, confidence_level=CONFIDENCE, n_resamples=n_resamples,
            method="percentile", rng=np.random.default_rng(seed),
        )
        lo, hi = res.confidence_interval
    return float(lo), float(hi)


def interval_vs_band(ci: tuple[float, float], lower: float, upper: float) -> str:
    """'inside' the band [lower, upper], 'outside' it (disjoint), or 'straddles' an edge."""
    lo, hi = ci
    if lower <= lo and hi <= upper:
        return "inside"
    if hi < lower or lo > upper:
        return "outside"
    return "straddles"
