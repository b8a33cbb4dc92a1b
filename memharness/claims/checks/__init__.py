"""Claim checks, one module per theme; each registers the claim ids it checks."""

from memharness.claims.checks import (  # noqa: F401  (importing registers the checks)
    decomposition,
    detection,
    diversity,
    mitigation,
    noise,
    overestimation,
    overfitting,
    pending,
    sampler,
)
from memharness.claims.checks.common import Context
from memharness.claims.checks.registry import CHECKS

__all__ = ["CHECKS", "Context"]
