"""A claim's verdict: what was measured, against what, and the outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    PASS = "PASS"  # the CI lies beyond the claim's floor, in the paper's direction
    FAIL = "FAIL"  # the CI lies short of the floor (or the effect is reversed)
    INCONCLUSIVE = "INCONCLUSIVE"  # too few prompts, or the CI straddles the floor
    SKIP = "SKIP"  # the fixture lacks what the claim needs


class Agreement(str, Enum):
    """The measured CI against the paper's number ± the claim's tolerance."""

    MATCHES = "matches"  # the CI overlaps the paper's value ± tolerance
    WEAKER = "weaker"  # the CI lies wholly on the weaker side of it
    STRONGER = "stronger"  # the CI lies wholly on the stronger side


# What each word means, as every report states it.
VERDICT_RULE = (
    ("PASS", "the 95 % CI of the effect lies entirely beyond the claim's floor (its smallest meaningful effect), "
             "in the paper's direction; significance alone never passes"),
    ("FAIL", "the CI lies entirely short of the floor (an effect reversed included)"),
    ("INCONCLUSIVE", "the CI straddles the floor, or a group has fewer than 5 prompts"),
    ("SKIP", "the fixture lacks the data the claim needs"),
)
AGREEMENT_RULE = ("vs paper: matches when the CI overlaps the paper's number ± the claim's tolerance; weaker or "
                  "stronger when it lies wholly on one side; — where the paper gives no number.")


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
    scope: str | None = None  # "memorization-specific" or "general" (the claim file's)
    floor: str | None = None  # what the CI was held against, e.g. "AUC > 0.75"
    higher_is_stronger: bool = True
    paper_number: float | None = None  # the paper's value of the measured quantity, where it gives one
    agreement: Agreement | None = None
    robustness: dict[str, str] = field(default_factory=dict)  # "param=value" → outcome under that reading
    null_pass_rate: float | None = None  # share of label permutations that PASSed (check --null)
    null_note: str | None = None  # why there is no null pass rate
    # Wall time of the check (robustness readings included), for JUnit's time; left out of the JSON so
    # that a report, and a baseline, is the same on every run.
    seconds: float | None = field(default=None, compare=False)

    @property
    def robust(self) -> str | None:
        """'robust', 'depends on <parameter>', or None when the claim has no alternative readings."""
        if not self.robustness:
            return None
        differ = sorted({key.split("=")[0] for key, outcome in self.robustness.items()
                         if outcome != self.verdict.value})
        return "robust" if not differ else "depends on " + ", ".join(differ)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["ci"] = list(self.ci) if self.ci is not None else None
        data["agreement"] = self.agreement.value if self.agreement is not None else None
        data["robust"] = self.robust
        data.pop("higher_is_stronger")
        data.pop("seconds")
        return data
