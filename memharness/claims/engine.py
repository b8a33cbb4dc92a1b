"""The claim engine: every claim file checked against one fixture."""

from __future__ import annotations

from collections.abc import Sequence

from memharness.claims.checks import CHECKS, Context
from memharness.claims.spec import ClaimSpec
from memharness.claims.verdict import Outcome, Verdict
from memharness.errors import MemharnessError
from memharness.trace.store import Fixture


def run_claims(fixture: Fixture, specs: Sequence[ClaimSpec], *, only: Sequence[str] = ()) -> list[Verdict]:
    known = {spec.id for spec in specs}
    for claim_id in only:
        if claim_id not in known:
            raise MemharnessError(f"--claim: unknown claim {claim_id!r}; `memharness claims` lists them")
    verdicts = []
    for spec in specs:
        if only and spec.id not in only:
            continue
        check = CHECKS.get(spec.id)
        if check is None:
            verdicts.append(Verdict(
                id=spec.id, title=spec.title, reference=spec.reference, verdict=Outcome.SKIP,
                paper=spec.paper_value, reason=f"no check is implemented for claim {spec.id!r}",
            ))
            continue
        verdicts.append(check(Context(fixture, spec)))
    return verdicts
