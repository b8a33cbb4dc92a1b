"""One model's check results, what every reporter renders, and its JSON form (also the baseline format).

The JSON is one object whatever the number of models: ``{"memharness_version", "schema_version",
"models": [...]}``, described by report.schema.json beside this file (docs/outputs.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memharness import __version__
from memharness.claims.regression import Change
from memharness.claims.verdict import Outcome, Verdict

# 1: a bare object for one model, a list for several. 2: always the envelope; drift and
# toward-paper changes (claims/regression.py).
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class ModelReport:
    model: str
    verdicts: tuple[Verdict, ...]
    fixtures: dict[str, Any]
    changes: tuple[Change, ...] | None = None  # None: not compared with a baseline
    baseline: str | None = None  # the baseline file as named on the command line
    harness_version: str = __version__
    fail_on_drift: bool = False  # check --fail-on-drift: drift away from the paper fails like a regression

    @property
    def regressions(self) -> tuple[Change, ...]:
        """The changes against the baseline that fail the run."""
        return tuple(c for c in self.changes or () if c.fails(fail_on_drift=self.fail_on_drift))

    def failed(self, *, strict: bool = False) -> bool:
        """Without a baseline: a FAIL. Against a baseline: a regression, or drift with fail_on_drift (a FAIL
        the baseline already had is a known finding, not a new failure). With strict, also any verdict
        that is not PASS."""
        if strict and any(v.verdict is not Outcome.PASS for v in self.verdicts):
            return True
        if self.changes is not None:
            return bool(self.regressions)
        return any(v.verdict is Outcome.FAIL for v in self.verdicts)

    def to_dict(self, *, with_baseline: bool = True, relative_to: Path | None = None) -> dict[str, Any]:
        """``relative_to``: a folder the fixture path is written relative to (a baseline's own folder)."""
        fixtures = self.fixtures
        if relative_to is not None and fixtures.get("path"):
            fixtures = {**fixtures, "path": _relative_path(fixtures["path"], relative_to)}
        data: dict[str, Any] = {
            "model": self.model,
            "harness_version": self.harness_version,
            "fixtures": fixtures,
            "claims": [v.to_dict() for v in self.verdicts],
        }
        if with_baseline and self.changes is not None:
            data["regressions"] = [c.to_dict() for c in self.regressions]
            data["baseline"] = {
                "file": self.baseline,
                "changes": [c.to_dict() for c in self.changes if not c.fails(fail_on_drift=self.fail_on_drift)],
            }
        return data


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in a verdict's details, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _relative_path(path: str, folder: Path) -> str | None:
    """``path`` (as the report names it: relative to the working folder, or absolute) relative to
    ``folder``, in / form; None where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()
    except ValueError:
        return None


def json_report(reports: Sequence[ModelReport], *, with_baseline: bool = True,
                relative_to: Path | None = None) -> str:
    """The envelope, one entry per model in ``models``; ``relative_to`` as in ModelReport.to_dict."""
    payload = {
        "memharness_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "models": [r.to_dict(with_baseline=with_baseline, relative_to=relative_to) for r in reports],
    }
    return json.dumps(payload, indent=2, default=_plain) + "\n"
