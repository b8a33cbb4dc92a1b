"""The decision rules on synthetic arrays: each outcome is reachable and means what it says.

The rule: PASS when the CI lies beyond the floor, FAIL when it lies short of it, INCONCLUSIVE
astride; significance alone never PASSes (the small-effect-at-large-n cases below).
"""

from __future__ import annotations

import numpy as np
import pytest

from memharness.claims.statistics import (
    Decision,
    against_bound,
    combine,
    compare_groups,
    correlation,
    mean_difference,
    paired_increase,
    within_band,
)
from memharness.claims.verdict import Outcome

rng = np.random.default_rng(0)


@pytest.mark.parametrize(("shift", "n", "expected"), [
    (2.0, 16, Outcome.PASS),        # clearly separated
    (0.0, 40, Outcome.FAIL),        # no difference, enough prompts to rule out AUC ≥ 0.75
    (-2.0, 16, Outcome.FAIL),       # reversed
    (2.0, 3, Outcome.INCONCLUSIVE),  # too few memorized prompts
])
def test_compare_groups(shift, n, expected):
    r = np.random.default_rng(1)
    mem, norm = r.normal(shift, 1, n), r.normal(0, 1, 40)
    decision = compare_groups(mem, norm, alternative="greater", what="v")
    assert decision.outcome is expected, decision.reason
    if expected is not Outcome.INCONCLUSIVE or n >= 5:
        assert 0 <= decision.measured <= 1 and decision.ci[0] <= decision.measured <= decision.ci[1]


def test_compare_groups_small_shift_few_prompts_is_inconclusive():
    mem, norm = np.linspace(-0.8, 1.2, 8), np.linspace(-1, 1, 40)
    decision = compare_groups(mem, norm, alternative="greater", what="v")
    assert decision.outcome is Outcome.INCONCLUSIVE, decision.reason


def test_compare_groups_less_is_the_mirror():
    mem, norm = rng.normal(-2, 1, 16), rng.normal(0, 1, 16)
    assert compare_groups(mem, norm, alternative="less", what="v").outcome is Outcome.PASS
    assert compare_groups(mem, norm, alternative="greater", what="v").outcome is Outcome.FAIL


@pytest.mark.parametrize(("mean", "expected"), [(1.5, Outcome.PASS), (0.5, Outcome.FAIL), (1.0, Outcome.INCONCLUSIVE)])
def test_against_bound(mean, expected):
    values = mean + np.random.default_rng(2).normal(0, 0.2, 20)
    values += mean - values.mean()  # exact mean, so the straddle case straddles
    assert against_bound(values, bound=1.0, direction=">", what="k").outcome is expected


@pytest.mark.parametrize(("mean", "expected"), [(1.0, Outcome.PASS), (0.7, Outcome.FAIL), (0.9, Outcome.INCONCLUSIVE)])
def test_within_band(mean, expected):
    values = mean + np.random.default_rng(3).normal(0, 0.05, 20)
    values += mean - values.mean()
    assert within_band(values, lower=0.9, upper=1.1, what="slope").outcome is expected


def test_paired_increase():
    before = rng.uniform(0.3, 0.6, 20)
    rise = paired_increase(before + 0.2, before, min_increase=0.1, what="s")
    assert rise.outcome is Outcome.PASS and rise.floor == "mean change > 0.1"
    assert paired_increase(before, before, min_increase=0.1, what="s").outcome is Outcome.FAIL
    assert paired_increase(before - 0.2, before, min_increase=0.1, what="s").outcome is Outcome.FAIL
    assert paired_increase(before[:3] + 0.2, before[:3], min_increase=0.1, what="s").outcome is Outcome.INCONCLUSIVE


@pytest.mark.parametrize(("shift", "expected"),
                         [(0.5, Outcome.PASS), (0.0, Outcome.FAIL), (0.12, Outcome.INCONCLUSIVE)])
def test_mean_difference(shift, expected):
    r = np.random.default_rng(6)
    first, second = r.normal(shift, 0.1, 30), r.normal(0.0, 0.1, 30)
    first += shift - first.mean()
    second -= second.mean()
    assert mean_difference(first, second, min_difference=0.1, what="d").outcome is expected


# --- significance without size never PASSes (n = 436, the paper's prompt count) -------------------------
N_PAPER = 436


def test_small_auc_at_large_n_is_not_a_pass():
    r = np.random.default_rng(7)
    mem, norm = r.normal(0.4, 1, N_PAPER // 2), r.normal(0, 1, N_PAPER // 2)  # AUC ≈ 0.61, p ≪ 0.05
    decision = compare_groups(mem, norm, alternative="greater", what="v", min_auc=0.75)
    assert decision.p_value < 1e-3 and 0.55 < decision.measured < 0.68
    assert decision.outcome is Outcome.FAIL, decision.reason


def test_weak_correlation_at_large_n_is_not_a_pass():
    r = np.random.default_rng(8)
    x = r.normal(size=N_PAPER)
    y = 0.25 * x + r.normal(size=N_PAPER)  # r ≈ 0.24, p ≪ 0.05
    decision = correlation(x, y, sign=1, what="r", min_r=0.9)
    assert decision.p_value < 1e-3 and 0.15 < decision.measured < 0.35
    assert decision.outcome is Outcome.FAIL, decision.reason


def test_small_drop_at_large_n_is_not_a_pass():
    r = np.random.default_rng(9)
    before = r.uniform(0.5, 0.9, N_PAPER)
    after = before - 0.02 + r.normal(0, 0.02, N_PAPER)  # a drop of 0.02, p ≪ 0.05
    decision = paired_increase(before, after, min_increase=0.1, what="drop")
    assert decision.p_value < 1e-3
    assert decision.outcome is Outcome.FAIL, decision.reason


def test_ci_follows_alpha():
    values = np.random.default_rng(10).normal(1.0, 0.5, 30)
    wide = against_bound(values, bound=0.0, direction=">", what="k", alpha=0.01).ci
    narrow = against_bound(values, bound=0.0, direction=">", what="k", alpha=0.2).ci
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_correlation():
    x = np.linspace(0, 1, 40)
    noise = np.random.default_rng(4).normal(0, 0.1, 40)
    assert correlation(x, x + noise / 3, sign=1, what="r", min_r=0.9).outcome is Outcome.PASS
    assert correlation(x, -x + noise / 3, sign=-1, what="r", min_r=0.9).outcome is Outcome.PASS
    assert correlation(x, -x + noise, sign=1, what="r").outcome is Outcome.FAIL
    assert correlation(x, np.random.default_rng(5).normal(0, 1, 40), sign=1, what="r").outcome is Outcome.FAIL
    assert correlation(x, np.ones(40), sign=1, what="r").outcome is Outcome.FAIL
    moderate = x + np.random.default_rng(4).normal(0, 0.35, 40)  # r ≈ 0.6: significant, short of 0.9
    assert correlation(x, moderate, sign=1, what="r", min_r=0.9).outcome is not Outcome.PASS
    decision = correlation(x, x + noise, sign=1, what="r")
    assert decision.ci[0] < decision.measured < decision.ci[1]


def test_combine_takes_the_worst():
    ok, bad, unsure = (Decision(o, o.value) for o in (Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE))
    assert combine([ok, ok]).outcome is Outcome.PASS
    assert combine([ok, unsure]).outcome is Outcome.INCONCLUSIVE
    assert combine([unsure, bad, ok]).outcome is Outcome.FAIL


def test_rank_auc_matches_the_pairwise_definition():
    from memharness.claims.statistics import _auc

    r = np.random.default_rng(3)
    for _ in range(50):  # small integers: many ties, which count one half
        a = r.integers(0, 5, (4, r.integers(1, 9))).astype(float)
        b = r.integers(0, 5, (1, r.integers(1, 9))).astype(float)
        diff = a[..., :, None] - b[..., None, :]
        pairwise = (diff > 0).mean(axis=(-2, -1)) + 0.5 * (diff == 0).mean(axis=(-2, -1))
        np.testing.assert_allclose(_auc(a, b), pairwise)
