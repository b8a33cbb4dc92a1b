"""The CI bands of the report's mean curves (memharness.report.figures.bands.mean_ci)."""

from __future__ import annotations

import numpy as np
import pytest

from memharness.report.figures.bands import mean_ci


def test_mean_ci_on_known_data():
    # Column 0: 1, 2, 3, 4: mean 2.5, s = √(5/3), t(0.975, 3) = 3.182446305284263.
    # Column 1: constant: a zero-width band.
    values = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])
    mean, low, high = mean_ci(values)
    half = 3.182446305284263 * np.sqrt(5.0 / 3.0) / 2.0
    np.testing.assert_allclose(mean, [2.5, 5.0])
    np.testing.assert_allclose(low, [2.5 - half, 5.0])
    np.testing.assert_allclose(high, [2.5 + half, 5.0])
    assert half == pytest.approx(2.0542603, abs=1e-7)


def test_mean_ci_level_and_single_row():
    values = np.array([[1.0], [3.0]])  # mean 2, s = √2, n = 2: t(0.75, 1) = 1 → half = 1 at level 0.5
    mean, low, high = mean_ci(values, level=0.5)
    np.testing.assert_allclose([mean[0], low[0], high[0]], [2.0, 1.0, 3.0])
    mean, low, high = mean_ci(np.array([[7.0, 8.0]]))
    np.testing.assert_allclose(mean, [7.0, 8.0])
    assert np.isnan(low).all() and np.isnan(high).all()  # no spread to estimate: no band, not a certain one
    with pytest.raises(ValueError, match="at least one row"):
        mean_ci(np.empty((0, 3)))
    with pytest.raises(ValueError, match="level"):
        mean_ci(values, level=1.0)


def test_mean_ci_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    samples = rng.normal(loc=3.0, scale=2.0, size=(5, 20_000))  # 20 000 independent samples of n = 5
    _, low, high = mean_ci(samples)
    coverage = float(np.mean((low <= 3.0) & (3.0 <= high)))
    assert 0.94 <= coverage <= 0.96, coverage
