"""A claim's verdict: what was measured, against what, and the outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    PASS = "PASS"  # the effect is there, significant, in the paper's direction
    FAIL = "FAIL"  # tested and absent or reversed
    INCONCLUSIVE = "INCONCLUSIVE"  # too few prompts, or the CI straddles the bound
    SKIP = "SKIP"  # the fixture lacks what the claim needs


@dataclass(frozen=True)
class Verdict:
    id: str
    title: str
    reference: str
    verdict: Outcome
    paper: str
    reason: str
    measured: float | None = None
    ci: tuple[float, float] | None = None
    n: dict[str, int] = field(default_factory=dict)
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["ci"] = list(self.ci) if self.ci is not None else None
        return data
