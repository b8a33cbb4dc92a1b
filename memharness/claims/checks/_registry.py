"""Claim id → check: the function, its declared parameters, and what a label permutation does to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from memharness.claims.checks._common import COMMON_PARAMS, CheckFn, Context
from memharness.claims.params import Param
from memharness.claims.verdict import Verdict


@dataclass(frozen=True)
class Check:
    id: str
    fn: CheckFn
    params: Mapping[str, Param] = field(default_factory=dict)  # COMMON_PARAMS included
    # Why a permutation of the scores among prompts cannot change this check's verdict (it reads
    # only the scores, or none): its null pass rate is "n/a". None: the null applies.
    null_not_applicable: str | None = None

    def __call__(self, ctx: Context) -> Verdict:
        return self.fn(ctx)


CHECKS: dict[str, Check] = {}


def register(claim_id: str, *, params: Mapping[str, Param] | None = None,
             null_not_applicable: str | None = None) -> Callable[[CheckFn], CheckFn]:
    def wrap(fn: CheckFn) -> CheckFn:
        CHECKS[claim_id] = Check(claim_id, fn, {**COMMON_PARAMS, **(params or {})}, null_not_applicable)
        return fn

    return wrap
