"""Regression against a baseline: which claims got worse since the baseline report was written.

A baseline is the JSON report of ``memharness check --format json`` (the ``{"models": [...]}``
envelope of schema 2, or the older bare object or list of per-model objects). Per claim:

* **regression** (fails the run): the verdict got worse, PASS → INCONCLUSIVE → FAIL (SKIP counts as
  worse than PASS), or the paper agreement got worse (matches → weaker or stronger);
* **drift** (reported; fails only with ``check --fail-on-drift``): the measured value moved further
  from the baseline's than the claim file's ``regression_tolerance``, away from the paper's value
  (or where the paper gives none);
* **toward-paper** (reported, never a failure): such a move that brought the value closer to the paper's.

New claims, claims missing now and other verdict changes are notes. Pure functions, plus a loader that
turns a bad file into one error line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memharness.claims.verdict import Outcome, Verdict
from memharness.errors import FieldError
from memharness.trace.validate import MAX_MAGNITUDE

REGRESSION = "regression"  # the verdict or the paper agreement got worse: fails the run
DRIFT = "drift"  # measured moved beyond the tolerance, not toward the paper: fails with --fail-on-drift
TOWARD_PAPER = "toward-paper"  # measured moved beyond the tolerance, closer to the paper's value: told only
NEW = "new"  # checked now, absent from the baseline
MISSING = "missing"  # in the baseline, not checked now
CHANGED = "changed"  # another verdict change (e.g. FAIL → PASS): worth a new baseline, not a failure
KINDS = (REGRESSION, DRIFT, TOWARD_PAPER, NEW, MISSING, CHANGED)

_VERDICTS = {o.value for o in Outcome}
# How far a verdict is from the claim holding: a move to a higher rank is a regression.
_VERDICT_RANK = {Outcome.PASS.value: 0, Outcome.INCONCLUSIVE.value: 1, Outcome.FAIL.value: 2}
# matches the paper, or lies wholly to one side of it: leaving "matches" is a regression.
_AGREEMENT_RANK = {"matches": 0, "weaker": 1, "stronger": 1}


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

    @property
    def is_drift(self) -> bool:
        """Moved beyond the tolerance, not toward the paper (a failure only with --fail-on-drift)."""
        return self.kind == DRIFT

    def fails(self, *, fail_on_drift: bool = False) -> bool:
        return self.is_regression or (fail_on_drift and self.is_drift)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- loading
def _write_hint(path: Path, model: str = "M") -> str:
    return f"write one with `memharness check --model {model} --write-baseline {path}`"


def _validate_report(report: Any, path: Path, where: str) -> None:
    def bad(what: str) -> FieldError:
        return FieldError("baseline", f"{where}{what}; expected a `memharness check --format json` "
                                      f"report, {_write_hint(path)}", value=path)

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
    """A decoded baseline as {model: report}, validated: the schema-2 envelope ``{"models": [...]}``, or
    (written before it) one model's object or a list of them."""
    if isinstance(data, dict) and "models" in data and "model" not in data:
        data = data["models"]
        if not isinstance(data, list):
            raise FieldError("baseline", f"'models' is not a list; {_write_hint(path)}", value=path)
    reports = data if isinstance(data, list) else [data]
    if not reports:
        raise FieldError("baseline", f"an empty list holds no report; {_write_hint(path)}", value=path)
    by_model: dict[str, dict[str, Any]] = {}
    for i, report in enumerate(reports):
        _validate_report(report, path, f"item {i} " if isinstance(data, list) else "")
        if report["model"] in by_model:
            raise FieldError("baseline", f"model {report['model']!r} appears twice; keep one report per model",
                             value=path)
        by_model[report["model"]] = report
    return by_model


def load_baseline(path: Path) -> dict[str, dict[str, Any]]:
    """Read and validate a baseline file: {model: report}."""
    path = Path(path)
    if not path.is_file():
        raise FieldError("baseline", f"file not found; {_write_hint(path)}", value=path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise FieldError("baseline", f"not valid JSON{where}; {_write_hint(path)}", value=path) from None
    except OSError as exc:
        raise FieldError("baseline", f"cannot read it ({exc.strerror})", value=path) from None
    except RecursionError:
        raise FieldError("baseline", f"nested too deeply to be a report; {_write_hint(path)}", value=path) from None
    return parse_baseline(data, path)


def baseline_for(baselines: Mapping[str, dict[str, Any]], model: str, path: Path) -> dict[str, Any]:
    """The baseline report of ``model``; comparing against another model's numbers would be meaningless."""
    if model not in baselines:
        held = ", ".join(repr(m) for m in baselines)
        raise FieldError("baseline", f"holds model {held}, not {model!r}; "
                                     f"{_write_hint(path, model)} or pass that model's baseline", value=path)
    return baselines[model]


# --------------------------------------------------------------------------- comparison
def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _moved(before: float | None, now: float | None, tolerance: float | None,
           paper: float | None) -> tuple[str, str] | None:
    """(DRIFT or TOWARD_PAPER, why) when the measured value moved beyond the tolerance, else None
    (no tolerance, a value missing, or within it)."""
    if tolerance is None or before is None or now is None:
        return None
    if not math.isfinite(now):
        return (DRIFT, f"measured {_fmt(before)} → {_fmt(now)} (not finite)") if math.isfinite(before) else None
    delta = abs(now - before)
    if delta <= tolerance:
        return None
    why = f"measured {_fmt(before)} → {_fmt(now)}, |Δ| = {delta:.3g} > tolerance {tolerance:g}"
    if paper is not None and abs(now - paper) < abs(before - paper):
        return TOWARD_PAPER, f"{why}, toward the paper's {paper:g}"
    return DRIFT, why + (f", away from the paper's {paper:g}" if paper is not None else "")


def _verdict_worse(before: str, now: str) -> str | None:
    """Why the verdict regressed (PASS → INCONCLUSIVE → FAIL; PASS → SKIP), or None."""
    if before == Outcome.PASS.value and now == Outcome.SKIP.value:
        return "verdict dropped PASS → SKIP (the fixture no longer has what the claim needs)"
    if _VERDICT_RANK.get(now, -1) > _VERDICT_RANK.get(before, 3):
        return f"verdict dropped {before} → {now}"
    return None


def _agreement_worse(before: Any, now: Verdict) -> str | None:
    """Why the paper agreement regressed (matches → weaker or stronger), or None."""
    after = now.agreement.value if now.agreement is not None else None
    if before in _AGREEMENT_RANK and after in _AGREEMENT_RANK and _AGREEMENT_RANK[after] > _AGREEMENT_RANK[before]:
        return f"paper agreement dropped {before} → {after}"
    return None


def compare_claim(base: Mapping[str, Any], verdict: Verdict, tolerance: float | None) -> Change | None:
    """One claim against its baseline entry; None when nothing worth telling changed."""
    before, now = base["verdict"], verdict.verdict.value
    before_m = base.get("measured")
    before_m = None if before_m is None else float(before_m)
    worse = [why for why in (_verdict_worse(before, now), _agreement_worse(base.get("agreement"), verdict)) if why]
    moved = _moved(before_m, verdict.measured, tolerance, verdict.paper_number)
    kw = dict(claim=verdict.id, baseline=before, now=now, baseline_measured=before_m, measured=verdict.measured)
    if worse:
        return Change(kind=REGRESSION, reason="; ".join(worse + ([moved[1]] if moved else [])), **kw)
    if moved:
        kind, why = moved
        if before != now:
            why = f"verdict {before} → {now}; {why}"
        return Change(kind=kind, reason=why + ("; not a regression" if kind == TOWARD_PAPER else ""), **kw)
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
