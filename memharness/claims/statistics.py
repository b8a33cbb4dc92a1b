"""Decision rules shared by the claim checks.

Every rule returns a Decision whose outcome follows one policy:

- INCONCLUSIVE when a group is smaller than ``min_group``;
- PASS when the effect is significant at α, or the CI clears the bound, in the paper's direction;
- FAIL when the data rule the effect out: reversed, or the CI lies wholly on the wrong side
  of the bound (for group comparisons and correlations: the CI excludes an effect of the
  size the claim calls meaningful, ``min_auc`` / ``min_r``);
- INCONCLUSIVE otherwise (neither shown nor ruled out: the CI straddles the bound).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from memharness.claims.verdict import Outcome

CONFIDENCE = 0.95
_N_RESAMPLES = 2000


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    measured: float | None = None
    ci: tuple[float, float] | None = None
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None


def bootstrap_mean_ci(values: np.ndarray, *, seed: int = 0) -> tuple[float, float]:
    """95 % BCa bootstrap CI of the mean (scipy.stats.bootstrap), deterministic for a seed."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.ptp(values) == 0:
        return float(values.mean()), float(values.mean())
    for method in ("BCa", "percentile"):  # BCa degenerates on near-constant data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the degenerate case is handled by the fallback
            res = stats.bootstrap((values,), np.mean, confidence_level=CONFIDENCE, n_resamples=_N_RESAMPLES,
                                  method=method, rng=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            break
    return float(lo), float(hi)


def interval_vs_band(ci: tuple[float, float], lower: float, upper: float) -> str:
    """'inside' the band [lower, upper], 'outside' it (disjoint), or 'straddles' an edge."""
    lo, hi = ci
    if lower <= lo and hi <= upper:
        return "inside"
    if hi < lower or lo > upper:
        return "outside"
    return "straddles"


def _too_few(what: str, sizes: dict[str, int], min_group: int) -> Decision | None:
    small = {k: v for k, v in sizes.items() if v < min_group}
    if not small:
        return None
    name, size = next(iter(small.items()))
    return Decision(Outcome.INCONCLUSIVE, f"{what}: {size} {name} prompts, fewer than {min_group}")


def _auc(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(first > second) + ½ P(tie): the Mann-Whitney U over n1·n2, from ranks (vectorised for the
    bootstrap; pairwise differences would cost n1·n2 memory per resample)."""
    n1, n2 = first.shape[-1], second.shape[-1]
    lead = np.broadcast_shapes(first.shape[:-1], second.shape[:-1])
    pooled = np.concatenate([np.broadcast_to(first, lead + (n1,)),
                             np.broadcast_to(second, lead + (n2,))], axis=-1)
    ranks = stats.rankdata(pooled, axis=-1)
    return (ranks[..., :n1].sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n2)


def compare_groups(
    memorized: np.ndarray, normal: np.ndarray, *, alternative: str, what: str,
    alpha: float = 0.05, min_group: int = 5, min_auc: float = 0.75, seed: int = 0,
) -> Decision:
    """Memorized against normal prompts, one-sided Mann-Whitney U; the measured value is the AUC.

    alternative 'greater': the paper says memorized values are larger; 'less': smaller.
    AUC = P(memorized beats normal in that direction), 0.5 = no difference.
    """
    mem, norm = np.asarray(memorized, np.float64), np.asarray(normal, np.float64)
    early = _too_few(what, {"memorized": mem.size, "normal": norm.size}, min_group)
    if early:
        return early
    sign = 1.0 if alternative == "greater" else -1.0
    auc = float(_auc(sign * mem, sign * norm))
    test = stats.mannwhitneyu(mem, norm, alternative=alternative)
    res = stats.bootstrap((sign * mem, sign * norm), lambda a, b, axis=-1: _auc(a, b), paired=False,
                          vectorized=True, confidence_level=CONFIDENCE, n_resamples=_N_RESAMPLES,
                          method="percentile", rng=np.random.default_rng(seed))
    ci = (float(res.confidence_interval.low), float(res.confidence_interval.high))
    base = dict(measured=auc, ci=ci, test=f"Mann-Whitney U (memorized {alternative} than normal)",
                statistic=float(test.statistic), p_value=float(test.pvalue))
    word = "larger" if alternative == "greater" else "smaller"
    if test.pvalue < alpha and auc > 0.5:
        return Decision(Outcome.PASS, f"{what} {word} for memorized prompts (AUC {auc:.2f}, p={test.pvalue:.2g})",
                        **base)
    if ci[1] < min_auc:
        return Decision(Outcome.FAIL, f"{what} not {word} for memorized prompts: AUC {auc:.2f}, "
                                      f"CI below {min_auc:g}", **base)
    return Decision(Outcome.INCONCLUSIVE, f"{what}: AUC {auc:.2f}, p={test.pvalue:.2g}, neither shown nor ruled out",
                    **base)


def _mean_with_ci(values, *, what: str, group: str, min_group: int, seed: int):
    """(early INCONCLUSIVE or None, mean, bootstrap CI) of per-prompt values."""
    values = np.asarray(values, np.float64)
    early = _too_few(what, {group: values.size}, min_group)
    if early:
        return early, None, None
    return None, float(values.mean()), bootstrap_mean_ci(values, seed=seed)


def against_bound(
    values: np.ndarray, *, bound: float, direction: str, what: str, min_group: int = 5, seed: int = 0,
    group: str = "memorized",
) -> Decision:
    """The mean of per-prompt values against a one-sided bound ('>' or '<'), by its bootstrap CI."""
    early, mean, ci = _mean_with_ci(values, what=what, group=group, min_group=min_group, seed=seed)
    if early:
        return early
    base = dict(measured=mean, ci=ci, test=f"bootstrap CI of the mean against {direction} {bound:g}")
    above = direction == ">"
    if (ci[0] > bound) if above else (ci[1] < bound):
        return Decision(Outcome.PASS, f"{what} = {mean:.3g} {direction} {bound:g}", **base)
    if (ci[1] <= bound) if above else (ci[0] >= bound):
        return Decision(Outcome.FAIL, f"{what} = {mean:.3g}, not {direction} {bound:g}", **base)
    return Decision(Outcome.INCONCLUSIVE, f"{what} = {mean:.3g}: CI straddles {bound:g}", **base)


def within_band(
    values: np.ndarray, *, lower: float, upper: float, what: str, min_group: int = 5, seed: int = 0,
    group: str = "memorized",
) -> Decision:
    """The mean of per-prompt values inside [lower, upper], by its bootstrap CI."""
    early, mean, ci = _mean_with_ci(values, what=what, group=group, min_group=min_group, seed=seed)
    if early:
        return early
    base = dict(measured=mean, ci=ci, test=f"bootstrap CI of the mean within [{lower:g}, {upper:g}]")
    position = interval_vs_band(ci, lower, upper)
    band = f"[{lower:g}, {upper:g}]"
    if position == "inside":
        return Decision(Outcome.PASS, f"{what} = {mean:.3g}, within {band}", **base)
    if position == "outside":
        return Decision(Outcome.FAIL, f"{what} = {mean:.3g}, outside {band}", **base)
    return Decision(Outcome.INCONCLUSIVE, f"{what} = {mean:.3g}: CI straddles the edge of {band}", **base)


def paired_increase(
    after: np.ndarray, before: np.ndarray, *, what: str, alpha: float = 0.05, min_group: int = 5,
    min_increase: float = 0.0, seed: int = 0,
) -> Decision:
    """after > before per prompt: one-sided Wilcoxon signed-rank; measured = mean increase."""
    after, before = np.asarray(after, np.float64), np.asarray(before, np.float64)
    early = _too_few(what, {"paired": after.size}, min_group)
    if early:
        return early
    diff = after - before
    mean = float(diff.mean())
    ci = bootstrap_mean_ci(diff, seed=seed)
    if np.all(diff == 0):
        return Decision(Outcome.FAIL, f"{what}: no prompt changed", measured=0.0, ci=(0.0, 0.0),
                        test="Wilcoxon signed-rank (one-sided)")
    test = stats.wilcoxon(after, before, alternative="greater", zero_method="wilcox")
    base = dict(measured=mean, ci=ci, test="Wilcoxon signed-rank (paired, one-sided)",
                statistic=float(test.statistic), p_value=float(test.pvalue))
    if test.pvalue < alpha and mean > 0:
        return Decision(Outcome.PASS, f"{what} rises by {mean:.3g} on average (p={test.pvalue:.2g})", **base)
    if ci[1] <= min_increase:
        return Decision(Outcome.FAIL, f"{what} does not rise: mean change {mean:.3g}", **base)
    return Decision(Outcome.INCONCLUSIVE, f"{what}: mean change {mean:.3g}, p={test.pvalue:.2g}", **base)


def correlation(
    x: np.ndarray, y: np.ndarray, *, sign: int, what: str, alpha: float = 0.05, min_group: int = 5,
    min_r: float = 0.5,
) -> Decision:
    """Pearson r with its Fisher-z CI (scipy); the paper's sign expected, |r| ≥ min_r meaningful."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    early = _too_few(what, {"all": x.size}, max(min_group, 4))
    if early:
        return early
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return Decision(Outcome.FAIL, f"{what}: one variable is constant, no correlation", measured=0.0,
                        test="Pearson r")
    res = stats.pearsonr(x, y, alternative="greater" if sign > 0 else "less")
    two_sided = stats.pearsonr(x, y).confidence_interval(confidence_level=CONFIDENCE)
    r, ci = float(res.statistic), (float(two_sided.low), float(two_sided.high))
    base = dict(measured=r, ci=ci, test="Pearson r, Fisher-z CI", statistic=r, p_value=float(res.pvalue))
    if res.pvalue < alpha and sign * r > 0:
        return Decision(Outcome.PASS, f"{what}: r = {r:.3f} (p={res.pvalue:.2g})", **base)
    if (ci[1] < min_r) if sign > 0 else (ci[0] > -min_r):
        return Decision(Outcome.FAIL, f"{what}: r = {r:.3f}, CI excludes {'' if sign > 0 else '-'}{min_r:g}", **base)
    return Decision(Outcome.INCONCLUSIVE, f"{what}: r = {r:.3f}, p={res.pvalue:.2g}", **base)


def combine(decisions: Sequence[Decision], *, primary: int = 0) -> Decision:
    """All parts must PASS: any FAIL fails, else any INCONCLUSIVE is inconclusive.

    The measured value, CI and test are the ``primary`` part's; the reason lists every part.
    """
    outcomes = [d.outcome for d in decisions]
    if Outcome.FAIL in outcomes:
        outcome = Outcome.FAIL
    elif Outcome.INCONCLUSIVE in outcomes:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS
    reason = "; ".join(f"{d.outcome.value.lower()}: {d.reason}" if len(decisions) > 1 else d.reason
                       for d in decisions)
    return replace(decisions[primary], outcome=outcome, reason=reason)
