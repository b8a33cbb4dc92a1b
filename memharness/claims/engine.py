"""The claim engine: every claim file checked against one fixture, with the paper agreement, the
robustness to the paper's ambiguities and (on request) a label-permutation null."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from memharness.claims.checks import CHECKS
from memharness.claims.checks.common import run_check
from memharness.claims.params import resolve
from memharness.claims.spec import ClaimSpec
from memharness.claims.verdict import Agreement, Outcome, Verdict
from memharness.errors import FieldError, MemharnessError
from memharness.trace.store import Fixture

# (done, total) permutations of the null
NullProgress = Callable[[int, int], None]


def validate_specs(specs: Sequence[ClaimSpec]) -> None:
    """Every claim file has a check, and its parameters and alternatives fit the check's declaration."""
    for spec in specs:
        check = CHECKS.get(spec.id)
        if check is None:
            raise MemharnessError(f"{spec.source or spec.id}: no check is implemented for claim {spec.id!r}")
        resolve(check.params, spec.parameters, source=spec.source or spec.id)
        for name, values in (spec.alternatives or {}).items():
            for value in values:
                resolve(check.params, {**spec.parameters, name: value}, source=f"{spec.source} alternatives")


def _selected(specs: Sequence[ClaimSpec], only: Sequence[str]) -> list[ClaimSpec]:
    known = {spec.id for spec in specs}
    for claim_id in only:
        if claim_id not in known:
            raise FieldError("claim", f"unknown claim {claim_id!r}; `memharness claims` lists them")
    return [spec for spec in specs if not only or spec.id in only]


def agreement(verdict: Verdict, paper_number: dict[str, float] | None) -> Agreement | None:
    """matches / weaker / stronger: the measured CI against the paper's value ± tolerance."""
    if paper_number is None or verdict.ci is None or verdict.verdict is Outcome.SKIP:
        return None
    lo, hi = verdict.ci
    low, high = paper_number["value"] - paper_number["tolerance"], paper_number["value"] + paper_number["tolerance"]
    if hi >= low and lo <= high:
        return Agreement.MATCHES
    above = lo > high
    return Agreement.STRONGER if above == verdict.higher_is_stronger else Agreement.WEAKER


def _robustness(fixture: Fixture, spec: ClaimSpec) -> dict[str, str]:
    """The outcome under each documented alternative reading of the paper."""
    out = {}
    for name, values in (spec.alternatives or {}).items():
        for value in values:
            alternative = dataclasses.replace(spec, parameters={**spec.parameters, name: value})
            out[f"{name}={value}"] = run_check(fixture, alternative).verdict.value
    return out


def _with_robustness(verdict: Verdict, robustness: dict[str, str]) -> Verdict:
    if not robustness:
        return verdict
    verdict = dataclasses.replace(verdict, robustness=robustness)
    others = ", ".join(f"{k} {v}" for k, v in robustness.items())
    return dataclasses.replace(verdict, reason=f"{verdict.reason}; {verdict.robust} ({others})")


def run_claims(fixture: Fixture, specs: Sequence[ClaimSpec], *, only: Sequence[str] = (),
               alternatives: bool = True) -> list[Verdict]:
    specs = _selected(specs, only)
    validate_specs(specs)
    verdicts = []
    for spec in specs:
        start = time.perf_counter()
        verdict = run_check(fixture, spec)
        verdict = dataclasses.replace(verdict, agreement=agreement(verdict, spec.paper_number),
                                      paper_number=(spec.paper_number or {}).get("value"))
        if alternatives and verdict.verdict is not Outcome.SKIP:
            verdict = _with_robustness(verdict, _robustness(fixture, spec))
        verdicts.append(dataclasses.replace(verdict, seconds=time.perf_counter() - start))
    return verdicts


class PermutedScores:
    """A fixture whose memorization scores are moved among prompts by one permutation, the same for
    every sampler, guidance scale and mitigation method; the trajectories stay where they are."""

    def __init__(self, fixture: Fixture, permutation: np.ndarray):
        self._fixture = fixture
        ids = [p["id"] for p in fixture.prompts]
        moved = {ids[i]: ids[int(j)] for i, j in enumerate(permutation)}  # prompt i gets prompt j's scores

        def permute(by_prompt: dict) -> dict:
            return {pid: by_prompt[moved[pid]] for pid in ids if moved[pid] in by_prompt}

        self.scores = copy.deepcopy(fixture.scores)
        if self.scores:
            for by_scale in self.scores.get("values", {}).values():
                for key in by_scale:
                    by_scale[key] = permute(by_scale[key])
        self.mitigation = copy.deepcopy(fixture.mitigation)
        if self.mitigation and self.mitigation.get("scores"):
            values = self.mitigation["scores"].get("values") or {}
            for method in values:
                values[method] = permute(values[method])

    scores_for = Fixture.scores_for  # reads the permuted self.scores, not the fixture's

    def __getattr__(self, name: str):
        return getattr(self._fixture, name)


def null_pass_rates(fixture: Fixture, specs: Sequence[ClaimSpec], *, permutations: int, seed: int = 0,
                    only: Sequence[str] = (), progress: NullProgress | None = None) -> dict[str, float | None]:
    """Per claim, the share of ``permutations`` random permutations of the scores under which it PASSes;
    None for a check that a permutation cannot change."""
    specs = _selected(specs, only)
    validate_specs(specs)
    rng = np.random.default_rng(seed)
    n_prompts = len(fixture.prompts)
    applies = [spec for spec in specs if CHECKS[spec.id].null_not_applicable is None]
    passes = {spec.id: 0 for spec in applies}
    for k in range(permutations):
        permuted = PermutedScores(fixture, rng.permutation(n_prompts))
        for spec in applies:
            if run_check(permuted, spec).verdict is Outcome.PASS:
                passes[spec.id] += 1
        if progress is not None:
            progress(k + 1, permutations)
    return {spec.id: (passes[spec.id] / permutations if spec.id in passes else None) for spec in specs}


def with_null(verdicts: Sequence[Verdict], rates: dict[str, float | None]) -> list[Verdict]:
    out = []
    for v in verdicts:
        if v.id not in rates:
            out.append(v)
            continue
        note = CHECKS[v.id].null_not_applicable if rates[v.id] is None else None
        out.append(dataclasses.replace(v, null_pass_rate=rates[v.id], null_note=note))
    return out
