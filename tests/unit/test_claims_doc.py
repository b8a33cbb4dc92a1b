"""docs/claims.md is what scripts/claims_doc.py writes from the claim files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "claims_doc.py"


def _script():
    spec = importlib.util.spec_from_file_location("claims_doc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_claims_doc_is_current():
    script = _script()
    assert script.DOC.is_file(), "docs/claims.md is missing: run python scripts/claims_doc.py"
    assert script.DOC.read_text(encoding="utf-8") == script.render(), \
        "docs/claims.md is stale: run python scripts/claims_doc.py"


def test_claims_doc_has_a_section_per_claim():
    from memharness.claims import load_specs

    text = _script().render()
    for spec in load_specs():
        assert f"## `{spec.id}`: {spec.title}" in text and spec.floor in text and spec.metric in text
