"""One model's check results, what every reporter renders, and its JSON form (also the baseline format)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memharness import __version__
from memharness.claims.regression import Change
from memharness.claims.verdict import Outcome, Verdict


@dataclass(frozen=True)
class ModelReport:
    model: str
    verdicts: tuple[Verdict, ...]
    fixtures: dict[str, Any]
    changes: tuple[Change, ...] | None = None  # None: not compared with a baseline
    baseline: str | None = None  # the baseline file as named on the command line
    harness_version: str = __version__

    @property
    def regressions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes or () if c.is_regression)

    def failed(self, *, strict: bool = False) -> bool:
        """Without a baseline: a FAIL. Against a baseline: a regression (a FAIL the baseline already had is
        a known finding, not a new failure). With strict, also any verdict that is not PASS."""
        if strict and any(v.verdict is not Outcome.PASS for v in self.verdicts):
            return True
        if self.changes is not None:
            return bool(self.regressions)
        return any(v.verdict is Outcome.FAIL for v in self.verdicts)

    def to_dict(self, *, with_baseline: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "harness_version": self.harness_version,
            "fixtures": self.fixtures,
            "claims": [v.to_dict() for v in self.verdicts],
        }
        if with_baseline and self.changes is not None:
            data["regressions"] = [c.to_dict() for c in self.regressions]
            data["baseline"] = {
                "file": self.baseline,
                "changes": [c.to_dict() for c in self.changes if not c.is_regression],
            }
        return data


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in a verdict's details, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_report(reports: Sequence[ModelReport], *, with_baseline: bool = True) -> str:
    """One model's object, or a list of them with several models."""
    payload = [r.to_dict(with_baseline=with_baseline) for r in reports]
    return json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=_plain) + "\n"
