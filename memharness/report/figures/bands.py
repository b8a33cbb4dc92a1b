"""Uncertainty bands of the curves that are means over prompts: a t-based 95 % CI of the mean.

The unit is the prompt (its seeds averaged first, as the claim checks do): seeds of one prompt
are not independent draws of the group's curve, prompts are.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.95
BAND_TEXT = "band: t-based 95 % CI of the mean over prompts (seeds averaged first)"


def mean_ci(values: np.ndarray, *, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``values`` along axis 0 (one row per prompt) and the two ends of its two-sided t CI.

    mean ± t_{(1+level)/2, n−1} · s / √n with s the sample standard deviation (ddof 1). Fewer than two
    rows give a NaN band (no spread to estimate), never a zero-width one that would look certain.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError("mean_ci: needs at least one row")
    if not 0.0 < level < 1.0:
        raise ValueError(f"mean_ci: level must be in (0, 1), got {level}")
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    half = stats.t.ppf(0.5 + level / 2.0, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def draw_mean_band(ax, x: np.ndarray, values: np.ndarray, *, color: str, label: str | None = None,
                   linestyle: str = "-") -> None:
    """The mean curve of ``values`` (prompts × points) with its 95 % CI band."""
    mean, low, high = mean_ci(values)
    ax.plot(x, mean, color=color, linestyle=linestyle, linewidth=1.8, label=label)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
