"""Regression against a baseline: which claims got worse since the baseline report was written.

A baseline is the JSON report of ``memharness check --format json`` (one model's object, or a
list of them). A claim regressed when its verdict dropped from PASS (to FAIL, INCONCLUSIVE or
SKIP) or from INCONCLUSIVE to FAIL, or when its measured value moved further from the baseline's than the claim file's
``regression_tolerance``. New claims, claims missing now and other verdict changes are reported
but are not regressions. Pure functions, plus a loader that turns a bad file into one error line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memharness.claims.verdict import Outcome, Verdict
from memharness.errors import MemharnessError
from memharness.trace.validate import MAX_MAGNITUDE

REGRESSION = "regression"  # fails the run
NEW = "new"  # checked now, absent from the baseline
MISSING = "missing"  # in the baseline, not checked now
CHANGED = "changed"  # another verdict change (e.g. FAIL → PASS): worth a new baseline, not a failure

_VERDICTS = {o.value for o in Outcome}


@dataclass(frozen=True)
class Change:
    """One claim's difference from the baseline."""

    claim: str
    kind: str
    baseline: str | None  # the baseline's verdict; None for a new claim
    now: str | None  # the verdict now; None for a missing claim
    baseline_measured: float | None
    measured: float | None
    reason: str

    @property
    def is_regression(self) -> bool:
        return self.kind == REGRESSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- loading
def _write_hint(path: Path, model: str = "M") -> str:
    return f"write one with `memharness check --model {model} --write-baseline {path}`"


def _validate_report(report: Any, path: Path, where: str) -> None:
    def bad(what: str) -> MemharnessError:
        return MemharnessError(f"--baseline {path}: {where}{what}; expected a `memharness check --format json` "
                               f"report, {_write_hint(path)}")

    if not isinstance(report, dict):
        raise bad("is not a JSON object")
    if not isinstance(report.get("model"), str):
        raise bad("lacks a string 'model'")
    claims = report.get("claims")
    if not isinstance(claims, list):
        raise bad("lacks a list 'claims'")
    for i, claim in enumerate(claims):
        if not (isinstance(claim, dict) and isinstance(claim.get("id"), str)):
            raise bad(f"claims[{i}] lacks a string 'id'")
        if claim.get("verdict") not in _VERDICTS:
            raise bad(f"claims[{i}] ({claim['id']}) has verdict {claim.get('verdict')!r}, not one of "
                      f"{', '.join(sorted(_VERDICTS))}")
        measured = claim.get("measured")
        if measured is not None and (isinstance(measured, bool) or not isinstance(measured, (int, float))
                                     or not abs(measured) <= MAX_MAGNITUDE):
            raise bad(f"claims[{i}] ({claim['id']}) has a 'measured' that is not a finite number")


def parse_baseline(data: Any, path: Path) -> dict[str, dict[str, Any]]:
    """A decoded baseline (one report or a list) as {model: report}, validated."""
    reports = data if isinstance(data, list) else [data]
    if not reports:
        raise MemharnessError(f"--baseline {path}: an empty list holds no report; {_write_hint(path)}")
    by_model: dict[str, dict[str, Any]] = {}
    for i, report in enumerate(reports):
        _validate_report(report, path, f"item {i} " if isinstance(data, list) else "")
        if report["model"] in by_model:
            raise MemharnessError(f"--baseline {path}: model {report['model']!r} appears twice; "
                                  "keep one report per model")
        by_model[report["model"]] = report
    return by_model


def load_baseline(path: Path) -> dict[str, dict[str, Any]]:
    """Read and validate a baseline file: {model: report}."""
    path = Path(path)
    if not path.is_file():
        raise MemharnessError(f"--baseline {path}: file not found; {_write_hint(path)}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise MemharnessError(f"--baseline {path}: not valid JSON{where}; {_write_hint(path)}") from None
    except OSError as exc:
        raise MemharnessError(f"--baseline {path}: cannot read it ({exc.strerror})") from None
    except RecursionError:
        raise MemharnessError(f"--baseline {path}: nested too deeply to be a report; {_write_hint(path)}") from None
    return parse_baseline(data, path)


def baseline_for(baselines: Mapping[str, dict[str, Any]], model: str, path: Path) -> dict[str, Any]:
    """The baseline report of ``model``; comparing against another model's numbers would be meaningless."""
    if model not in baselines:
        held = ", ".join(repr(m) for m in baselines)
        raise MemharnessError(f"--baseline {path}: holds model {held}, not {model!r}; "
                              f"{_write_hint(path, model)} or pass that model's baseline")
    return baselines[model]


# --------------------------------------------------------------------------- comparison
def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _measured_moved(before: float | None, now: float | None, tolerance: float | None) -> str | None:
    """Why the measured value regressed, or None (no tolerance, a value missing, or within it)."""
    if tolerance is None or before is None or now is None:
        return None
    if not math.isfinite(now) and math.isfinite(before):
        return f"measured {_fmt(before)} → {_fmt(now)} (not finite)"
    delta = abs(now - before)
    if delta > tolerance:
        return f"measured {_fmt(before)} → {_fmt(now)}, |Δ| = {delta:.3g} > tolerance {tolerance:g}"
    return None


def compare_claim(base: Mapping[str, Any], verdict: Verdict, tolerance: float | None) -> Change | None:
    """One claim against its baseline entry; None when nothing worth telling changed."""
    before, now = base["verdict"], verdict.verdict.value
    before_m = base.get("measured")
    before_m = None if before_m is None else float(before_m)
    reasons = []
    if before == Outcome.PASS.value and now != Outcome.PASS.value:
        why = f"verdict dropped PASS → {now}"
        if now == Outcome.SKIP.value:
            why += " (the fixture no longer has what the claim needs)"
        reasons.append(why)
    elif before == Outcome.INCONCLUSIVE.value and now == Outcome.FAIL.value:
        reasons.append("verdict dropped INCONCLUSIVE → FAIL")
    moved = _measured_moved(before_m, verdict.measured, tolerance)
    if moved:
        reasons.append(moved)
    kw = dict(claim=verdict.id, baseline=before, now=now, baseline_measured=before_m, measured=verdict.measured)
    if reasons:
        return Change(kind=REGRESSION, reason="; ".join(reasons), **kw)
    if before != now:
        return Change(kind=CHANGED, reason=f"verdict {before} → {now}; not a regression, refresh the baseline",
                      **kw)
    return None


def compare(
    baseline: Mapping[str, Any],
    verdicts: Sequence[Verdict],
    tolerances: Mapping[str, float | None],
    *,
    only: Collection[str] = (),
) -> list[Change]:
    """Every change of one model's verdicts against its baseline report, in the verdicts' order.

    ``tolerances`` maps claim id to the claim file's ``regression_tolerance``; ``only`` restricts
    the baseline to the claims that were selected (so ``--claim`` does not report the rest missing).
    """
    base = {c["id"]: c for c in baseline["claims"] if not only or c["id"] in only}
    changes = []
    for verdict in verdicts:
        entry = base.get(verdict.id)
        if entry is None:
            changes.append(Change(claim=verdict.id, kind=NEW, baseline=None, now=verdict.verdict.value,
                                  baseline_measured=None, measured=verdict.measured,
                                  reason="not in the baseline; refresh the baseline to track it"))
            continue
        change = compare_claim(entry, verdict, tolerances.get(verdict.id))
        if change is not None:
            changes.append(change)
    checked = {v.id for v in verdicts}
    for claim_id, entry in base.items():
        if claim_id not in checked:
            changes.append(Change(claim=claim_id, kind=MISSING, baseline=entry["verdict"], now=None,
                                  baseline_measured=entry.get("measured"), measured=None,
                                  reason="in the baseline but not checked now (claim file removed?)"))
    return changes
