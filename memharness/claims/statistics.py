"""Decision rules shared by the claim checks: one verdict rule, with an effect-size floor.

Every rule measures an effect with a two-sided (1 − α) confidence interval and compares the
interval with the claim's floor, the smallest effect the claim calls meaningful:

- PASS: the CI lies entirely beyond the floor, in the paper's direction;
- FAIL: the CI lies entirely short of the floor (an effect significantly reversed is short of
  every floor on the paper's side);
- INCONCLUSIVE: the CI straddles the floor, or a group has fewer than ``min_group`` prompts.

Significance alone never PASSes: p-values are reported beside the CI, not used to decide.

``scipy.stats`` costs about a second to import, so it is imported inside the functions that use it:
commands that decide nothing (``list``, ``trace``, ``--help``) do not pay for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from memharness.claims.verdict import Outcome

DEFAULT_ALPHA = 0.05
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
    floor: str | None = None  # the floor the CI was held against, e.g. "AUC > 0.75"
    higher_is_stronger: bool = True  # which side of the floor is the paper's


def against_floor(ci: tuple[float, float], floor: float, *, higher: bool) -> Outcome:
    """The rule itself: PASS beyond the floor, FAIL short of it, INCONCLUSIVE astride."""
    lo, hi = ci
    beyond, short = (lo > floor, hi < floor) if higher else (hi < floor, lo > floor)
    return Outcome.PASS if beyond else Outcome.FAIL if short else Outcome.INCONCLUSIVE


def _confidence(alpha: float) -> float:
    return 1.0 - alpha


def bootstrap_ci(values: np.ndarray, *, statistic: Callable = np.mean, alpha: float = DEFAULT_ALPHA,
                 seed: int = 0) -> tuple[float, float]:
    """Two-sided (1 − α) BCa bootstrap CI of a statistic (scipy.stats.bootstrap), deterministic for a seed."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.ptp(values) == 0:
        centre = float(statistic(values))
        return centre, centre
    from scipy import stats

    for method in ("BCa", "percentile"):  # BCa degenerates on near-constant data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the degenerate case is handled by the fallback
            res = stats.bootstrap((values,), statistic, confidence_level=_confidence(alpha),
                                  n_resamples=_N_RESAMPLES, method=method, rng=np.random.default_rng(seed))
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


def _ci_text(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def _auc(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(first > second) + ½ P(tie): the Mann-Whitney U over n1·n2, from ranks (vectorised for the
    bootstrap; pairwise differences would cost n1·n2 memory per resample)."""
    n1, n2 = first.shape[-1], second.shape[-1]
    lead = np.broadcast_shapes(first.shape[:-1], second.shape[:-1])
    pooled = np.concatenate([np.broadcast_to(first, lead + (n1,)),
                             np.broadcast_to(second, lead + (n2,))], axis=-1)
    from scipy import stats

    ranks = stats.rankdata(pooled, axis=-1)
    return (ranks[..., :n1].sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n2)


class _AucOfResamples:
    """The AUC of bootstrap resamples given as *indices* into the two samples, from counts.

    Sorting is done once: each value of ``first`` knows how many values of the sorted ``second`` lie
    below it (``left``) and not above it (``right``). A resample of ``second`` becomes counts per sorted
    position, their running sums give, for every drawn value of ``first``, the drawn values of ``second``
    below and equal to it; so 2U = Σ (below + not above), in exact integer arithmetic. The AUC is
    2U / (2·n1·n2): the same real number the ranks give (U − n1(n1+1)/2 of half-integer ranks is exact in
    float64), divided once, so the result is bit for bit the rank AUC's. Cost per resample: O(n1 + n2),
    no sort, no pooled copy.
    """

    def __init__(self, first: np.ndarray, second: np.ndarray):
        order = np.argsort(second, kind="stable")
        ordered = second[order]
        self.position = np.empty_like(order)
        self.position[order] = np.arange(order.size)  # original index of second → its sorted position
        self.left = np.searchsorted(ordered, first, side="left")
        self.right = np.searchsorted(ordered, first, side="right")
        self.n1, self.n2 = first.size, second.size

    def __call__(self, first_index: np.ndarray, second_index: np.ndarray, axis: int = -1) -> np.ndarray:
        i = np.asarray(first_index).astype(np.intp)
        j = self.position[np.asarray(second_index).astype(np.intp)]
        lead = np.broadcast_shapes(i.shape[:-1], j.shape[:-1])
        i, j = np.broadcast_to(i, lead + i.shape[-1:]), np.broadcast_to(j, lead + j.shape[-1:])
        rows = int(np.prod(lead, dtype=np.int64))
        flat = (j.reshape(rows, self.n2) + (np.arange(rows) * self.n2)[:, None]).ravel()
        counts = np.bincount(flat, minlength=rows * self.n2).reshape(rows, self.n2)
        below = np.zeros((rows, self.n2 + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=below[:, 1:])  # below[:, k]: drawn values at sorted positions < k
        i = i.reshape(rows, self.n1)
        twice_u = (np.take_along_axis(below, self.left[i], axis=1)
                   + np.take_along_axis(below, self.right[i], axis=1)).sum(axis=1)
        return (twice_u / (2 * self.n1 * self.n2)).reshape(lead)


def _two_sample_ci(first: np.ndarray, second: np.ndarray, statistic: Callable, *, alpha: float,
                   seed: int) -> tuple[float, float]:
    from scipy import stats

    res = stats.bootstrap((first, second), statistic, paired=False, vectorized=True,
                          confidence_level=_confidence(alpha), n_resamples=_N_RESAMPLES, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_groups(
    memorized: np.ndarray, normal: np.ndarray, *, alternative: str, what: str,
    alpha: float = DEFAULT_ALPHA, min_group: int = 5, min_auc: float = 0.75, seed: int = 0,
) -> Decision:
    """Memorized against normal prompts: the AUC with a two-sample bootstrap CI, floor ``min_auc``.

    alternative 'greater': the paper says memorized values are larger; 'less': smaller.
    AUC = P(memorized beats normal in that direction); 0.5 = no difference.
    """
    mem, norm = np.asarray(memorized, np.float64), np.asarray(normal, np.float64)
    early = _too_few(what, {"memorized": mem.size, "normal": norm.size}, min_group)
    if early:
        return early
    from scipy import stats

    sign = 1.0 if alternative == "greater" else -1.0
    auc = float(_auc(sign * mem, sign * norm))
    test = stats.mannwhitneyu(mem, norm, alternative=alternative)
    # The bootstrap resamples indices (scipy draws the same indices it would draw for the values), and the
    # AUC of each resample comes from counts (_AucOfResamples): the same CI as ranking every resample.
    ci = _two_sample_ci(np.arange(mem.size, dtype=np.float64), np.arange(norm.size, dtype=np.float64),
                        _AucOfResamples(sign * mem, sign * norm), alpha=alpha, seed=seed)
    word = "larger" if alternative == "greater" else "smaller"
    outcome = against_floor(ci, min_auc, higher=True)
    verb = {Outcome.PASS: f"{word} for memorized prompts", Outcome.FAIL: f"not clearly {word} for memorized prompts",
            Outcome.INCONCLUSIVE: f"{word} for memorized prompts?"}[outcome]
    return Decision(outcome, f"{what} {verb} (AUC {auc:.2f} {_ci_text(ci)}, floor {min_auc:g}, "
                             f"p={test.pvalue:.2g})",
                    measured=auc, ci=ci, test=f"AUC, memorized {alternative} than normal (Mann-Whitney U)",
                    statistic=float(test.statistic), p_value=float(test.pvalue), floor=f"AUC > {min_auc:g}")


def mean_difference(
    first: np.ndarray, second: np.ndarray, *, min_difference: float, what: str,
    alpha: float = DEFAULT_ALPHA, min_group: int = 5, seed: int = 0, names: tuple[str, str] = ("memorized", "normal"),
) -> Decision:
    """mean(first) − mean(second) with a two-sample bootstrap CI; PASS when it clears ``min_difference``."""
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    early = _too_few(what, {names[0]: a.size, names[1]: b.size}, min_group)
    if early:
        return early
    diff = float(a.mean() - b.mean())
    ci = _two_sample_ci(a, b, lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), alpha=alpha, seed=seed)
    outcome = against_floor(ci, min_difference, higher=True)
    return Decision(outcome, f"{what}: {names[0]} − {names[1]} = {diff:.3g} {_ci_text(ci)}, "
                             f"floor {min_difference:g}",
                    measured=diff, ci=ci, test=f"difference of means ({names[0]} − {names[1]}), bootstrap CI",
                    floor=f"difference > {min_difference:g}")


def against_bound(
    values: np.ndarray, *, bound: float, direction: str, what: str, alpha: float = DEFAULT_ALPHA,
    min_group: int = 5, seed: int = 0, group: str = "memorized", centre: str = "mean",
) -> Decision:
    """The mean (or median) of per-prompt values against a one-sided bound ('>' or '<'), by its CI."""
    values = np.asarray(values, np.float64)
    early = _too_few(what, {group: values.size}, min_group)
    if early:
        return early
    statistic = np.median if centre == "median" else np.mean
    value = float(statistic(values))
    ci = bootstrap_ci(values, statistic=statistic, alpha=alpha, seed=seed)
    outcome = against_floor(ci, bound, higher=direction == ">")
    relation = {Outcome.PASS: direction, Outcome.FAIL: f"not {direction}", Outcome.INCONCLUSIVE: f"{direction}?"}
    return Decision(outcome, f"{what} = {value:.3g} {_ci_text(ci)}, {relation[outcome]} {bound:g}",
                    measured=value, ci=ci, test=f"bootstrap CI of the {centre} against {direction} {bound:g}",
                    floor=f"{centre} {direction} {bound:g}", higher_is_stronger=direction == ">")


def within_band(
    values: np.ndarray, *, lower: float, upper: float, what: str, alpha: float = DEFAULT_ALPHA,
    min_group: int = 5, seed: int = 0, group: str = "memorized",
) -> Decision:
    """The mean of per-prompt values inside [lower, upper], by its bootstrap CI (the band is the floor)."""
    values = np.asarray(values, np.float64)
    early = _too_few(what, {group: values.size}, min_group)
    if early:
        return early
    mean, ci = float(values.mean()), bootstrap_ci(values, alpha=alpha, seed=seed)
    position = interval_vs_band(ci, lower, upper)
    band = f"[{lower:g}, {upper:g}]"
    outcome = {"inside": Outcome.PASS, "outside": Outcome.FAIL}.get(position, Outcome.INCONCLUSIVE)
    word = {"inside": "within", "outside": "outside", "straddles": "CI straddles the edge of"}[position]
    return Decision(outcome, f"{what} = {mean:.3g} {_ci_text(ci)}, {word} {band}", measured=mean, ci=ci,
                    test=f"bootstrap CI of the mean within {band}", floor=f"mean within {band}")


def paired_increase(
    after: np.ndarray, before: np.ndarray, *, min_increase: float, what: str, alpha: float = DEFAULT_ALPHA,
    min_group: int = 5, seed: int = 0,
) -> Decision:
    """after − before per prompt; measured = mean increase with its bootstrap CI, floor ``min_increase``."""
    after, before = np.asarray(after, np.float64), np.asarray(before, np.float64)
    early = _too_few(what, {"paired": after.size}, min_group)
    if early:
        return early
    diff = after - before
    mean, ci = float(diff.mean()), bootstrap_ci(diff, alpha=alpha, seed=seed)
    p_value = statistic = None
    if np.any(diff != 0):
        from scipy import stats

        test = stats.wilcoxon(after, before, alternative="greater", zero_method="wilcox")
        p_value, statistic = float(test.pvalue), float(test.statistic)
    outcome = against_floor(ci, min_increase, higher=True)
    p = f", p={p_value:.2g}" if p_value is not None else ""
    return Decision(outcome, f"{what}: mean change {mean:+.3g} {_ci_text(ci)}, floor {min_increase:+g}{p}",
                    measured=mean, ci=ci, test="paired mean change, bootstrap CI (Wilcoxon p reported)",
                    statistic=statistic, p_value=p_value, floor=f"mean change > {min_increase:g}")


def correlation(
    x: np.ndarray, y: np.ndarray, *, sign: int, what: str, alpha: float = DEFAULT_ALPHA, min_group: int = 5,
    min_r: float = 0.5,
) -> Decision:
    """Pearson r with its two-sided Fisher-z CI (scipy); PASS when the CI lies beyond sign·min_r."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    early = _too_few(what, {"all": x.size}, max(min_group, 4))
    if early:
        return early
    floor = f"r {'>' if sign > 0 else '<'} {sign * min_r:g}"
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return Decision(Outcome.FAIL, f"{what}: one variable is constant, no correlation", measured=0.0,
                        ci=(0.0, 0.0), test="Pearson r", floor=floor, higher_is_stronger=sign > 0)
    from scipy import stats

    res = stats.pearsonr(x, y)
    ci_res = res.confidence_interval(confidence_level=_confidence(alpha))
    r, ci = float(res.statistic), (float(ci_res.low), float(ci_res.high))
    outcome = against_floor(ci, sign * min_r, higher=sign > 0)
    return Decision(outcome, f"{what}: r = {r:.3f} {_ci_text(ci)}, floor {sign * min_r:g}", measured=r, ci=ci,
                    test="Pearson r, Fisher-z CI", statistic=r, p_value=float(res.pvalue), floor=floor,
                    higher_is_stronger=sign > 0)


def combine(decisions: Sequence[Decision], *, primary: int = 0) -> Decision:
    """All parts must PASS: any FAIL fails, else any INCONCLUSIVE is inconclusive.

    The measured value, CI and test are the ``primary`` part's; the reason and floor list every part.
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
    floors = [d.floor for d in decisions if d.floor]
    return replace(decisions[primary], outcome=outcome, reason=reason,
                   floor="; ".join(dict.fromkeys(floors)) or None)
