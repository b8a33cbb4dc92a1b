"""The numbers of an organism's dose response, from its fixture (``scripts/dose_response.py``).

For a fixture whose prompts carry a duplication count (manifest field ``duplicates``, e.g. the
``digits-graded`` organism), :func:`dose_numbers` computes what the organism's model card and
docs/models.md quote, so that each number is reproduced by one command:

- the memorization score per prompt and per count at every DDIM guidance scale;
- Spearman's ρ of score against log count (prompts with a count), per g, with a bootstrap CI
  over prompts;
- the prompts labelled memorized at g = 7.5 (score ≥ 0.75), how many of them score < 0.75 at
  g = 1, and their paired rise g = 1 → 7.5 with a bootstrap CI (and a one-sided Wilcoxon p);
- the first-step k = ‖x̂0(T)‖/‖x‖ per count;
- per mitigation method, the memorized prompts' mean latent score before → after, with a
  bootstrap CI of the drop;
- Pearson's r of the score with Σ(E[w0] − √ᾱ_t) over every state and over states 1–10 only.
  The latent score's train term is cos(x_0, x), and at the last states w0 ≈ cos(x_t, x)·‖x_t‖/‖x‖,
  so the full sum correlates with the score partly by construction; the early window (states
  1–10, t ≈ 961 … 781 of SD's 50 steps) does not contain x_0.

Bootstraps resample prompts with replacement (10,000 draws, ``numpy.random.default_rng(0)``),
percentile intervals at 95 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memharness.errors import MemharnessError
from memharness.trace.store import Fixture

THRESHOLD = 0.75
DRAWS = 10_000
EARLY_STATES = (1, 10)  # states x_t after 1 … 10 steps (state 0 is x_T)


def _bootstrap(values: tuple[np.ndarray, ...], stat, *, draws: int = DRAWS, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(values[0])
    out = []
    for _ in range(draws):
        idx = rng.integers(0, n, n)
        v = stat(*(a[idx] for a in values))
        if np.isfinite(v):
            out.append(v)
    if not out:
        return float("nan"), float("nan")
    low, high = np.percentile(out, [2.5, 97.5])
    return float(low), float(high)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _scores(fixture: Fixture, sampler: str, g: float) -> np.ndarray:
    values = fixture.scores_for(sampler, g)
    if values is None:
        raise MemharnessError(f"{fixture.root}: no memorization scores for {sampler} g={g:g}")
    return np.array([values[p["id"]]["score"] for p in fixture.prompts], dtype=float)


def _w0_deviation(fixture: Fixture, sampler: str, g: float) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, Σ_t (E[w0] − √ᾱ_t) on x over states 0 … S−1 and over the early states."""
    from memharness.analysis.decomposition import decomposition_weights
    from memharness.schedule import NoiseSchedule

    group = fixture.group(sampler, g)
    w0, _ = decomposition_weights(
        group.inner_states("x_t", "x"),
        group.inner_states("x_t", "x_T"),
        group.inner_final("x", "x")[..., None],
        group.inner_final("x", "x_T")[..., None],
        group.inner_final("x_T", "x_T")[..., None],
    )
    sqrt_ab, _ = NoiseSchedule.from_config(fixture.model["scheduler"]).theoretical_weights(
        np.append(group.timesteps, -1), sampler=sampler)
    dev = w0.mean(1) - sqrt_ab[None]  # (P, S+1)
    first, last = EARLY_STATES
    return dev[:, :-1].sum(1), dev[:, first:last + 1].sum(1)


def dose_numbers(root: str | Path, *, sampler: str = "ddim", low: float = 1.0, high: float = 7.5) -> dict[str, Any]:
    """Every number of the dose response of the fixture at ``root`` (see the module docstring)."""
    fixture = Fixture(Path(root))
    prompts = fixture.prompts
    counts = np.array([np.nan if p.get("duplicates") is None else float(p["duplicates"]) for p in prompts])
    has = np.isfinite(counts)
    if not has.any():
        raise MemharnessError(f"{root}: its prompts carry no duplication count (manifest field duplicates)")
    ids = [p["id"] for p in prompts]
    scales = [float(g) for g in fixture.guidance_scales(sampler)]
    scores = {g: _scores(fixture, sampler, g) for g in scales}
    from memharness.claims.checks.common import overestimation

    k = {g: overestimation(fixture.group(sampler, g))[..., 0].mean(1) for g in scales}
    levels = sorted({int(c) for c in counts[has]})
    log_n = np.log(counts[has])

    duplicates = [int(c) if h else None for c, h in zip(counts, has, strict=True)]
    out: dict[str, Any] = {"root": str(root), "sampler": sampler, "scales": scales, "counts": levels,
                           "prompts": ids, "duplicates": duplicates}
    out["per_prompt"] = {g: dict(zip(ids, scores[g].round(4).tolist(), strict=True)) for g in scales}
    out["per_count"] = {g: {n: float(scores[g][has & (counts == n)].mean()) for n in levels} for g in scales}
    out["class_prompts"] = {g: float(scores[g][~has].mean()) if (~has).any() else None for g in scales}
    out["k_per_count"] = {g: {n: float(k[g][has & (counts == n)].mean()) for n in levels} for g in scales}
    out["spearman"] = {}
    for g in scales:
        s = scores[g][has]
        out["spearman"][g] = {"rho": _spearman(s, log_n), "ci": _bootstrap((s, log_n), _spearman), "n": int(has.sum())}

    memorized = scores[high] >= THRESHOLD
    out["memorized"] = _memorized_numbers(ids, has, scores[low], scores[high], memorized)
    out["mitigation"] = _mitigation_numbers(fixture, ids, scores, memorized)
    out["w0_correlation"] = _w0_correlation(fixture, sampler, high, scores[high])
    return out


def _memorized_numbers(ids: list[str], has: np.ndarray, low: np.ndarray, high: np.ndarray,
                       memorized: np.ndarray) -> dict[str, Any]:
    """The prompts memorized at the high g, those of them below the threshold at the low g, and their
    paired score rise low → high with a bootstrap CI and a one-sided Wilcoxon p."""
    from scipy.stats import wilcoxon

    below = memorized & (low < THRESHOLD)
    rise = high[memorized] - low[memorized]
    return {
        "ids": [i for i, m in zip(ids, memorized, strict=True) if m],
        "n": int(memorized.sum()),
        "class_prompts_memorized": [i for i, m, h in zip(ids, memorized, has, strict=True) if m and not h],
        "below_at_low": [i for i, b in zip(ids, below, strict=True) if b],
        "fraction_below_at_low": float(below.sum() / memorized.sum()) if memorized.any() else float("nan"),
        "rise_mean": float(rise.mean()) if rise.size else float("nan"),
        "rise_ci": _bootstrap((rise,), np.mean) if rise.size > 1 else (float("nan"), float("nan")),
        "rise_wilcoxon_p": float(wilcoxon(rise, alternative="greater").pvalue) if rise.size > 1 else float("nan"),
    }


def _mitigation_numbers(fixture: Fixture, ids: list[str], scores: dict[float, np.ndarray],
                        memorized: np.ndarray) -> dict[str, Any]:
    """Per recorded mitigation method (App H), the memorized prompts' mean latent score (Eq 9) before →
    after with a bootstrap CI of the drop, the normal prompts' before → after, and how often it switched."""
    section = fixture.mitigation
    numbers: dict[str, Any] = {}
    if section is None or not memorized.any():
        return numbers
    before = scores[float(section["settings"]["guidance"])]
    for method in section["settings"]["methods"]:
        after = np.array([float(fixture.mitigation_arrays(pid)[f"{method}/latent_score"][2]) for pid in ids])
        drop = before[memorized] - after[memorized]
        switch = np.stack([fixture.mitigation_arrays(pid)[f"{method}/switch_step"] for pid in ids])
        numbers[method] = {
            "before": float(before[memorized].mean()), "after": float(after[memorized].mean()),
            "drop": float(drop.mean()), "drop_ci": _bootstrap((drop,), np.mean),
            "normal_before": float(before[~memorized].mean()) if (~memorized).any() else None,
            "normal_after": float(after[~memorized].mean()) if (~memorized).any() else None,
            "switched": float((switch[memorized] >= 0).mean()),
        }
    return numbers


def _w0_correlation(fixture: Fixture, sampler: str, g: float, s: np.ndarray) -> dict[str, Any]:
    """Pearson's r of the score with Σ(E[w0] − √ᾱ_t) (w0 against Eq 14, Fig 10), over every state and
    over the early ones."""
    full, early = _w0_deviation(fixture, sampler, g)
    return {
        "full": {"r": _pearson(s, full), "ci": _bootstrap((s, full), _pearson)},
        "early": {"r": _pearson(s, early), "ci": _bootstrap((s, early), _pearson), "states": list(EARLY_STATES)},
    }


def format_numbers(d: dict[str, Any]) -> list[str]:
    """The numbers as the model card quotes them."""
    scales, levels = d["scales"], d["counts"]
    lines = [f"dose response of {d['root']} ({d['sampler']}; score: latent Eq 9, memorized ≥ {THRESHOLD})", ""]
    head = "count | " + " | ".join(f"score g={g:g}" for g in scales) + " | " + \
        " | ".join(f"k(T) g={g:g}" for g in scales)
    lines += [head]
    for n in levels:
        lines.append(f"{n:5d} | " + " | ".join(f"{d['per_count'][g][n]:.3f}" for g in scales) + " | "
                     + " | ".join(f"{d['k_per_count'][g][n]:.2f}" for g in scales))
    if any(v is not None for v in d["class_prompts"].values()):
        lines.append("class | " + " | ".join(f"{d['class_prompts'][g]:.3f}" for g in scales))
    lines.append("")
    for g in scales:
        sp = d["spearman"][g]
        lines.append(f"Spearman(score, log count) at g={g:g}: {sp['rho']:.3f} [{sp['ci'][0]:.3f}, {sp['ci'][1]:.3f}] "
                     f"(n = {sp['n']})")
    m = d["memorized"]
    lines += ["", f"memorized at g=7.5: {m['n']} ({', '.join(m['ids'])}); class prompts among them: "
                  f"{len(m['class_prompts_memorized'])}",
              f"  of them < {THRESHOLD} at g=1: {len(m['below_at_low'])} ({m['fraction_below_at_low']:.2f}): "
              f"{', '.join(m['below_at_low'])}",
              f"  paired rise g=1 → 7.5: {m['rise_mean']:+.3f} [{m['rise_ci'][0]:+.3f}, {m['rise_ci'][1]:+.3f}], "
              f"one-sided Wilcoxon p = {m['rise_wilcoxon_p']:.2g}"]
    if d["mitigation"]:
        lines += ["", "mitigation (memorized prompts' mean latent score, unmitigated g=7.5 → mitigated):"]
        for method, v in d["mitigation"].items():
            lines.append(f"  {method:<17} {v['before']:.3f} → {v['after']:.3f}: drop {v['drop']:.3f} "
                         f"[{v['drop_ci'][0]:.3f}, {v['drop_ci'][1]:.3f}]; normal {v['normal_before']:.3f} → "
                         f"{v['normal_after']:.3f}; switched {v['switched']:.0%} of memorized seeds")
    w = d["w0_correlation"]
    lines += ["", f"Pearson(score at g=7.5, Σ(E[w0] − √ᾱ_t)) over all states: {w['full']['r']:.3f} "
                  f"[{w['full']['ci'][0]:.3f}, {w['full']['ci'][1]:.3f}]; over states "
                  f"{w['early']['states'][0]}–{w['early']['states'][1]} only: {w['early']['r']:.3f} "
                  f"[{w['early']['ci'][0]:.3f}, {w['early']['ci'][1]:.3f}]"]
    return lines
