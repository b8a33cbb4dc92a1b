"""Claim checks: every module of this package but common and registry is imported, and registers the
claim ids it checks (``registry.register``); a new module needs no edit here."""

from memharness.claims.checks.common import Context
from memharness.claims.checks.registry import CHECKS, import_checks

import_checks(__name__)

__all__ = ["CHECKS", "Context"]
