"""The claims: claim files matched one to one with the checks registered for them."""

from __future__ import annotations

import sys
from pathlib import Path

from memharness.claims.checks import CHECKS  # importing the package registers every check module
from memharness.claims.spec import ClaimSpec, claims_dir, read_specs
from memharness.errors import MemharnessError


def load_specs(directory: Path | None = None) -> list[ClaimSpec]:
    """Every claim file of ``directory`` (the shipped ones by default), in their ``order``, then by id; each must
    have a registered check and each check a claim file."""
    specs = read_specs(directory)
    _match_checks(Path(directory) if directory is not None else claims_dir(), specs)
    return specs


def _match_checks(directory: Path, specs: list[ClaimSpec]) -> None:
    """A claim file without a registered check, or a check without a claim file, is an error."""
    for spec in specs:
        if spec.id not in CHECKS:
            raise MemharnessError(f"{spec.source}: no check is registered for claim {spec.id!r}; add a module "
                                  "under memharness/claims/checks/ that calls register()")
    ids = {spec.id for spec in specs}
    for claim_id, check in CHECKS.items():
        if claim_id not in ids:
            module = sys.modules[check.fn.__module__]
            raise MemharnessError(f"{getattr(module, '__file__', check.fn.__module__)}: registers a check for "
                                  f"{claim_id!r}, but {directory} has no {claim_id}.yaml")
