"""Claims: specs from ``claims/definitions/*.yaml``, checks, verdicts."""

from memharness.claims.engine import run_claims
from memharness.claims.spec import ClaimSpec, load_specs
from memharness.claims.verdict import Outcome, Verdict

__all__ = ["ClaimSpec", "Outcome", "Verdict", "load_specs", "run_claims"]
