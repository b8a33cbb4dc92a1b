"""Claim id → check function."""

from __future__ import annotations

from collections.abc import Callable

from memharness.claims.checks._common import CheckFn

CHECKS: dict[str, CheckFn] = {}


def register(claim_id: str) -> Callable[[CheckFn], CheckFn]:
    def wrap(fn: CheckFn) -> CheckFn:
        CHECKS[claim_id] = fn
        return fn

    return wrap
