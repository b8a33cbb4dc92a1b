"""Claim id → check: the function, its declared parameters, and what a label permutation does to it."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from memharness.claims.params import SAMPLERS, Param
from memharness.claims.statistics import DEFAULT_ALPHA
from memharness.claims.verdict import Verdict
from memharness.scoring.labels import THRESHOLD

# Parameters every claim takes; a check declares its own beside them (``register(params=...)``).
COMMON_PARAMS: dict[str, Param] = {
    # Memorization labels come from the scores of the paper's setting: DDIM, g = 7.5 (§3.1).
    "label_sampler": Param(str, "ddim", choices=SAMPLERS, doc="the sampler of the scores the labels come from"),
    "label_guidance": Param(float, 7.5, low=0.0, high=100.0, doc="the g of the scores the labels come from"),
    "threshold": Param(float, THRESHOLD, low=0.0, high=1.0, doc="a score at or above it is memorized (§3.1)"),
    "min_group": Param(int, 5, low=2, high=100_000, doc="fewer prompts than this in a group: INCONCLUSIVE"),
    "alpha": Param(float, DEFAULT_ALPHA, low=1e-6, high=0.5, doc="CIs are two-sided at 1 − α"),
}

# A check: the claim's Context (``memharness.claims.checks.common``) → its Verdict.
CheckFn = Callable[[Any], Verdict]


@dataclass(frozen=True)
class Check:
    id: str
    fn: CheckFn
    params: Mapping[str, Param] = field(default_factory=dict)  # COMMON_PARAMS included
    # Why a permutation of the scores among prompts cannot change this check's verdict (it reads
    # only the scores, or none): its null pass rate is "n/a". None: the null applies.
    null_not_applicable: str | None = None

    def __call__(self, ctx: Any) -> Verdict:
        return self.fn(ctx)


CHECKS: dict[str, Check] = {}
# Modules of a checks package that hold no checks.
_SHARED = ("common", "registry")


def register(claim_id: str, *, params: Mapping[str, Param] | None = None,
             null_not_applicable: str | None = None) -> Callable[[CheckFn], CheckFn]:
    def wrap(fn: CheckFn) -> CheckFn:
        CHECKS[claim_id] = Check(claim_id, fn, {**COMMON_PARAMS, **(params or {})}, null_not_applicable)
        return fn

    return wrap


def import_checks(package: str) -> list[str]:
    """Import every module of ``package`` (its checks register on import) except the shared ones; their names."""
    found = importlib.import_module(package)
    names = sorted(info.name for info in pkgutil.iter_modules(found.__path__) if info.name not in _SHARED)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
