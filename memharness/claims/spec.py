"""Claim files (``claims/*.yaml``): loading and validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memharness.errors import MemharnessError

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
}
# Optional keys and their defaults.
_OPTIONAL = {
    # A measured value further than this from the baseline's is a regression (absolute, in the
    # measured value's unit); None compares verdicts only.
    "regression_tolerance": None,
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
    regression_tolerance: float | None = None
    source: str = ""


def claims_dir() -> Path:
    """The repository's ``claims/`` folder (the package is installed editable from it)."""
    return Path(__file__).resolve().parents[2] / "claims"


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
    if data["id"] != path.stem:
        raise MemharnessError(f"{path}: id {data['id']!r} must match the file name {path.stem!r}")
    return ClaimSpec(**data, source=str(path))


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
        raise MemharnessError(f"{directory}: claims folder not found; run memharness from its source checkout")
    specs = [load_spec(path) for path in directory.glob("*.yaml")]
    rank = {claim_id: i for i, claim_id in enumerate(CLAIM_ORDER)}
    return sorted(specs, key=lambda s: (rank.get(s.id, len(rank)), s.id))
