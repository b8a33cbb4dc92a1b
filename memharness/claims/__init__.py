"""Claims: specs from ``claims/definitions/*.yaml``, checks, verdicts."""

from memharness.claims.catalogue import load_specs
from memharness.claims.engine import run_claims
from memharness.claims.spec import ClaimSpec
from memharness.claims.verdict import Outcome, Verdict

__all__ = ["ClaimSpec", "Outcome", "Verdict", "load_specs", "run_claims"]
