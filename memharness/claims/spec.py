"""Claim files (``memharness/claims/definitions/*.yaml``, package data): loading and validation.

Every key of a claim file is read by something (``CONSUMERS`` names it; tests/unit/test_claim_spec.py
checks that the named function reads the key), and a folder of claim files must match the registered
checks one to one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memharness.claims import needs as needs_module
from memharness.errors import MemharnessError
from memharness.shipped import claims_folder

_REQUIRED = {
    "id": str,
    "title": str,
    "reference": str,
    "statement": str,
    "needs": dict,  # the recorded data the check reads: memharness.claims.needs
    "metric": str,  # the dotted path of the function that computes the measured quantity
    "test": dict,  # how the measured quantity is decided, in words: kind, and optionally measured/effect_size/contrast
    "paper_value": str,
    "parameters": dict,
    # "memorization-specific": decided by a memorized-versus-normal contrast (or a correlation with
    # the score), so that random labels cannot PASS it; "general": true of any denoiser.
    "scope": str,
    # The effect-size floor the CI must clear, and where it comes from (the paper's number, or a
    # documented "meaningful effect").
    "floor": str,
}
SCOPES = ("memorization-specific", "general")
TEST_KEYS = ("kind", "measured", "effect_size", "contrast")
# Optional keys and their defaults.
_OPTIONAL = {
    # Where the claim sorts in listings and reports (the paper's argument); claims without one sort last, by id.
    "order": None,
    # A measured value further than this from the baseline's is a regression (absolute, in the
    # measured value's unit); None compares verdicts only.
    "regression_tolerance": None,
    # The paper's number for the measured quantity: {value, tolerance}; the verdict says whether the
    # measured CI matches it (overlaps value ± tolerance), or is weaker or stronger.
    "paper_number": None,
    # Other readings of what the paper leaves open: {parameter: [value, ...]}; the claim is re-run
    # under each and the verdict says whether it is robust to them.
    "alternatives": None,
}
# Which function reads each key (tests/unit/test_claim_spec.py checks its source does).
CONSUMERS = {
    "id": "memharness.claims.checks.common.run_check",
    "title": "memharness.claims.checks.common.Context.verdict",
    "reference": "memharness.claims.checks.common.Context.verdict",
    "statement": "memharness.claims.describe.describe",
    "needs": "memharness.claims.checks.common.Context.unmet_needs",
    "metric": "memharness.claims.describe.describe",
    "test": "memharness.claims.describe.describe",
    "paper_value": "memharness.claims.checks.common.Context.verdict",
    "parameters": "memharness.claims.checks.common.Context.__init__",
    "scope": "memharness.claims.checks.common.Context.verdict",
    "floor": "memharness.claims.describe.describe",
    "order": "memharness.claims.spec.read_specs",
    "regression_tolerance": "memharness.pytest_plugin",  # and the CLI's check --baseline
    "paper_number": "memharness.claims.engine.run_claims",
    "alternatives": "memharness.claims.engine._robustness",
}


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    title: str
    reference: str
    statement: str
    needs: dict[str, Any]
    metric: str
    test: dict[str, str]
    paper_value: str
    parameters: dict[str, Any] = field(default_factory=dict)
    scope: str = "memorization-specific"
    floor: str = ""
    order: int | None = None
    regression_tolerance: float | None = None
    paper_number: dict[str, float] | None = None
    alternatives: dict[str, list[Any]] | None = None
    source: str = ""


def claims_dir() -> Path:
    """The shipped claim files (package data, read-only)."""
    return claims_folder()


def metric_function(dotted: str) -> Callable[..., Any]:
    """The function a claim's ``metric`` names (module path, then attributes); ValueError if there is none."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                target = getattr(target, name)
        except AttributeError:
            raise ValueError(dotted) from None
        if callable(target):
            return target
        raise ValueError(dotted)
    raise ValueError(dotted)


def load_spec(path: Path) -> ClaimSpec:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MemharnessError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise MemharnessError(f"{path}: a claim file must be a mapping")
    for key, kind in _REQUIRED.items():
        if key not in data:
            raise MemharnessError(f"{path}: missing key {key!r}")
        if not isinstance(data[key], kind):
            raise MemharnessError(f"{path}: key {key!r} must be a {kind.__name__}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise MemharnessError(f"{path}: unknown key {unknown[0]!r}")
    _check_optional(path, data)
    if data["scope"] not in SCOPES:
        raise MemharnessError(f"{path}: key 'scope' must be one of {', '.join(SCOPES)}")
    needs_module.parse(path, data["needs"])
    _check_test(path, data["test"])
    try:
        metric_function(data["metric"])
    except ValueError:
        raise MemharnessError(f"{path}: key 'metric': {data['metric']!r} is not an importable function "
                              "(give its dotted path, e.g. memharness.analysis.x0_hat_norm2)") from None
    if data["id"] != path.stem:
        raise MemharnessError(f"{path}: id {data['id']!r} must match the file name {path.stem!r}")
    return ClaimSpec(**data, source=str(path))


def _check_optional(path: Path, data: dict[str, Any]) -> None:
    tolerance = data.get("regression_tolerance")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or tolerance < 0):
        raise MemharnessError(f"{path}: key 'regression_tolerance' must be a number ≥ 0")
    order = data.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise MemharnessError(f"{path}: key 'order' must be an int")
    _check_paper_number(path, data.get("paper_number"))
    alternatives = data.get("alternatives")
    if alternatives is not None and (not isinstance(alternatives, dict) or not all(
            isinstance(v, list) and v for v in alternatives.values())):
        raise MemharnessError(f"{path}: key 'alternatives' must map parameter names to non-empty lists of values")


def _check_test(path: Path, test: dict[str, Any]) -> None:
    for key, value in test.items():
        if key not in TEST_KEYS:
            hint = "; the CI level is parameters.alpha" if key == "alpha" else ""
            raise MemharnessError(f"{path}: test.{key}: unknown key (test takes {', '.join(TEST_KEYS)}){hint}")
        if not isinstance(value, str):
            raise MemharnessError(f"{path}: test.{key} must be a str")
    if "kind" not in test:
        raise MemharnessError(f"{path}: missing key 'test.kind'")


def _check_paper_number(path: Path, entry: Any) -> None:
    if entry is None:
        return
    def number(key: str) -> bool:
        value = entry.get(key)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if (not isinstance(entry, dict) or set(entry) != {"value", "tolerance"} or not number("value")
            or not number("tolerance") or entry["tolerance"] < 0):
        raise MemharnessError(f"{path}: key 'paper_number' must be {{value: number, tolerance: number ≥ 0}}")


def read_specs(directory: Path | None = None) -> list[ClaimSpec]:
    """Every claim file of ``directory`` (the shipped ones by default), in their ``order``, then by id, unmatched
    with checks (``memharness.claims.load_specs`` matches them)."""
    directory = Path(directory) if directory is not None else claims_dir()
    if not directory.is_dir():
        raise MemharnessError(f"{directory}: claims folder not found; give a folder of claim .yaml files")
    specs = [load_spec(path) for path in directory.glob("*.yaml")]
    return sorted(specs, key=lambda s: (s.order is None, s.order or 0, s.id))
