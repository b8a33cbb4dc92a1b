"""The detection math of App H and §4 (memharness.analysis.detection), on explicit vectors and random arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from memharness.analysis import (
    decomposition_weights,
    delta,
    detection_step,
    first_local_minimum,
    online_weights,
    roc_auc,
    tpr_at_fpr,
    wen_score,
)

fast = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


def _inner(a, b):
    return float(np.dot(a, b))


def _vectors(seed: int, dim: int, k: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(dim) for _ in range(k)]


def test_delta_is_zero_on_the_schedule():
    sa, s1 = np.array([0.07, 0.5, 0.99]), np.array([0.997, 0.866, 0.141])
    np.testing.assert_allclose(delta(sa, s1, sa, s1), 0.0)
    assert delta(np.array(0.3), np.array(0.5), np.array(0.1), np.array(0.9)) == pytest.approx(0.2 + 0.4)


def test_first_state_is_vacuous_for_any_reference():
    """x_t = x_T is fitted exactly by w0 = 0, wT = 1, so δ(T) = −√ᾱ_T − (1 − √(1−ᾱ_T)) (App H)."""
    x_T, r1, r2 = _vectors(0, 32, 3)
    ab_T = 0.0047
    for r in (r1, 5.0 * r2):
        w0, wT = decomposition_weights(_inner(x_T, r), _inner(x_T, x_T), _inner(r, r), _inner(r, x_T),
                                       _inner(x_T, x_T))
        assert (w0, wT) == (pytest.approx(0.0, abs=1e-12), pytest.approx(1.0))
        got = delta(w0, wT, math.sqrt(ab_T), math.sqrt(1 - ab_T))
        assert got == pytest.approx(-math.sqrt(ab_T) - (1 - math.sqrt(1 - ab_T)))


@fast
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(3, 64), rho2=st.floats(0.1, 1e4), scale=st.floats(1e-3, 1e3))
def test_online_weights_equal_the_decomposition_on_the_rescaled_reference(seed, dim, rho2, scale):
    x_t, x_T, r = _vectors(seed, dim, 3)
    r = scale * r
    rescaled = math.sqrt(rho2) * r / np.linalg.norm(r)
    want = decomposition_weights(_inner(x_t, rescaled), _inner(x_t, x_T), _inner(rescaled, rescaled),
                                 _inner(rescaled, x_T), _inner(x_T, x_T))
    got = online_weights(_inner(x_t, r), _inner(x_t, x_T), _inner(r, r), _inner(r, x_T), _inner(x_T, x_T), rho2)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    # w0 scales as 1/ρ and does not depend on ‖r‖; wT depends on neither
    half = online_weights(_inner(x_t, r), _inner(x_t, x_T), _inner(r, r), _inner(r, x_T), _inner(x_T, x_T), 4 * rho2)
    np.testing.assert_allclose(half, (want[0] / 2, want[1]), rtol=1e-7, atol=1e-9)


def test_online_reference_at_its_own_norm_has_w0_sqrt_alpha_bar():
    """Eq 5: x_t = √ᾱ x̂0 + √(1−ᾱ) ε̃. With ε̃ = x_T and ρ = ‖x̂0‖ the fit returns (√ᾱ, √(1−ᾱ)), δ = 0."""
    x0_hat, x_T = _vectors(1, 16, 2)
    ab = 0.3
    x_t = math.sqrt(ab) * x0_hat + math.sqrt(1 - ab) * x_T
    w0, wT = online_weights(_inner(x_t, x0_hat), _inner(x_t, x_T), _inner(x0_hat, x0_hat), _inner(x0_hat, x_T),
                            _inner(x_T, x_T), _inner(x0_hat, x0_hat))
    assert (w0, wT) == (pytest.approx(math.sqrt(ab)), pytest.approx(math.sqrt(1 - ab)))
    # at ρ = ‖x̂0‖/k the weight on x reads k·√ᾱ (Eq 13's overestimation)
    w0_k, _ = online_weights(_inner(x_t, x0_hat), _inner(x_t, x_T), _inner(x0_hat, x0_hat), _inner(x0_hat, x_T),
                             _inner(x_T, x_T), _inner(x0_hat, x0_hat) / 7.5**2)
    assert w0_k == pytest.approx(7.5 * math.sqrt(ab))


@fast
@given(d=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)), elements=finite),
       gamma=st.floats(0.0, 2.0), first_state=st.integers(0, 3))
def test_detection_step_is_the_first_state_over_the_margin(d, gamma, first_state):
    steps = detection_step(d, gamma=gamma, first_state=first_state)
    assert steps.shape == d.shape[:-1]
    for row, step in zip(d, steps, strict=True):
        later = row[first_state:]
        if step == -1:
            assert np.all(later <= -gamma)
        else:
            assert step >= first_state and row[step] > -gamma
            assert np.all(row[first_state:step] <= -gamma)


def test_detection_step_examples():
    d = np.array([[-0.08, -0.3, -0.1, 0.2], [-0.08, -0.5, -0.4, -0.3], [0.5, -0.5, -0.5, -0.5]])
    np.testing.assert_array_equal(detection_step(d, gamma=0.2), [2, -1, -1])  # state 0 is never looked at
    np.testing.assert_array_equal(detection_step(d, gamma=0.05, first_state=0), [3, -1, 0])


@fast
@given(pos=arrays(np.float64, st.integers(1, 30), elements=finite),
       neg=arrays(np.float64, st.integers(1, 300), elements=finite), fpr=st.floats(0.0, 0.5))
def test_tpr_at_fpr_flags_at_most_the_allowed_negatives(pos, neg, fpr):
    tpr, threshold = tpr_at_fpr(pos, neg, fpr=fpr)
    assert (neg > threshold).sum() <= math.floor(fpr * neg.size)
    assert tpr == pytest.approx((pos > threshold).mean())
    assert threshold in neg  # the smallest such threshold is a negative's score


def test_tpr_at_fpr_with_few_negatives_uses_the_largest():
    assert tpr_at_fpr([3.0, 2.0, 0.5], [0.1, 1.0], fpr=0.01) == (pytest.approx(2 / 3), 1.0)


@fast
@given(pos=arrays(np.float64, st.integers(1, 20), elements=finite),
       neg=arrays(np.float64, st.integers(1, 20), elements=finite))
def test_roc_auc_is_a_probability_and_antisymmetric(pos, neg):
    auc = roc_auc(pos, neg)
    assert 0.0 <= auc <= 1.0
    assert auc + roc_auc(neg, pos) == pytest.approx(1.0)


def test_roc_auc_examples():
    assert roc_auc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert roc_auc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert roc_auc([1.0, 1.0], [1.0]) == 0.5


def test_wen_score_averages_the_chosen_steps_and_seeds():
    m = np.arange(2 * 6 * 5, dtype=np.float64).reshape(2, 6, 5)  # (P, N seeds, S steps)
    np.testing.assert_allclose(wen_score(m), m[:, :4, 0].mean(1))
    np.testing.assert_allclose(wen_score(m, start=1, end=3, generations=2), m[:, :2, 1:3].mean((1, 2)))


def test_first_local_minimum():
    np.testing.assert_array_equal(first_local_minimum(np.array([[3.0, 2.0, 1.0, 2.0], [3.0, 2.0, 1.0, 0.5]])),
                                  [2, 3])
