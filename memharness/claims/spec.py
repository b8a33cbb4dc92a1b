"""Claim files (``memharness/claims/definitions/*.yaml``, package data): loading and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memharness.errors import MemharnessError
from memharness.shipped import claims_folder

_REQUIRED = {
    "id": str,
    "title": str,
    "reference": str,
    "statement": str,
    "needs": dict,
    "metric": str,
    "test": dict,
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
# Optional keys and their defaults.
_OPTIONAL = {
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


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    title: str
    reference: str
    statement: str
    needs: dict[str, Any]
    metric: str
    test: dict[str, Any]
    paper_value: str
    parameters: dict[str, Any] = field(default_factory=dict)
    scope: str = "memorization-specific"
    floor: str = ""
    regression_tolerance: float | None = None
    paper_number: dict[str, float] | None = None
    alternatives: dict[str, list[Any]] | None = None
    source: str = ""


def claims_dir() -> Path:
    """The shipped claim files (package data, read-only)."""
    return claims_folder()


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
    tolerance = data.get("regression_tolerance")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or tolerance < 0):
        raise MemharnessError(f"{path}: key 'regression_tolerance' must be a number ≥ 0")
    if data["scope"] not in SCOPES:
        raise MemharnessError(f"{path}: key 'scope' must be one of {', '.join(SCOPES)}")
    _check_paper_number(path, data.get("paper_number"))
    alternatives = data.get("alternatives")
    if alternatives is not None and (not isinstance(alternatives, dict) or not all(
            isinstance(v, list) and v for v in alternatives.values())):
        raise MemharnessError(f"{path}: key 'alternatives' must map parameter names to non-empty lists of values")
    if data["id"] != path.stem:
        raise MemharnessError(f"{path}: id {data['id']!r} must match the file name {path.stem!r}")
    return ClaimSpec(**data, source=str(path))


def _check_paper_number(path: Path, entry: Any) -> None:
    if entry is None:
        return
    def number(key: str) -> bool:
        value = entry.get(key)
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if (not isinstance(entry, dict) or set(entry) != {"value", "tolerance"} or not number("value")
            or not number("tolerance") or entry["tolerance"] < 0):
        raise MemharnessError(f"{path}: key 'paper_number' must be {{value: number, tolerance: number ≥ 0}}")


# The order of DESIGN.md, which follows the paper's argument; other claims follow by name.
CLAIM_ORDER = (
    "overfit-without-guidance", "loss-reversal-with-guidance", "guidance-drives-memorization",
    "direction-preserved", "overestimation", "linear-in-guidance", "predictions-follow-noise",
    "unconditional-blind", "conditional-injects-x", "diversity-collapse", "update-alignment",
    "decomposition-g1", "early-dominance", "deviation-predicts-severity", "sampler-agnostic",
    "realtime-detection", "mitigation", "magnitude-explained", "prompt-categories",
)


def load_specs(directory: Path | None = None) -> list[ClaimSpec]:
    directory = Path(directory) if directory is not None else claims_dir()
    if not directory.is_dir():
        raise MemharnessError(f"{directory}: claims folder not found; give a folder of claim .yaml files")
    specs = [load_spec(path) for path in directory.glob("*.yaml")]
    rank = {claim_id: i for i, claim_id in enumerate(CLAIM_ORDER)}
    return sorted(specs, key=lambda s: (rank.get(s.id, len(rank)), s.id))
