"""Every parameter a claim check declares says what it means: docs/claims.md's "meaning" column is never empty."""

from __future__ import annotations

import pytest

from memharness.claims.checks import CHECKS
from memharness.claims.describe import parameter_rows
from memharness.claims.spec import claims_dir, load_spec

MAX_DOC = 110  # one line of the docs/claims.md table


def test_every_claim_file_has_a_check_to_document():
    ids = sorted(path.stem for path in claims_dir().glob("*.yaml"))
    assert ids and sorted(CHECKS) == ids


@pytest.mark.parametrize("claim_id", sorted(CHECKS))
def test_every_declared_parameter_has_a_one_line_doc(claim_id):
    declared = CHECKS[claim_id].params
    assert declared
    for name, param in declared.items():
        doc = param.doc
        assert doc.strip(), f"{claim_id}: parameter {name!r} has no doc"
        assert "\n" not in doc and len(doc) <= MAX_DOC, f"{claim_id}: {name!r}'s doc is not one short line"
        # A '|' would split the markdown table row of docs/claims.md into an extra column.
        assert "|" not in doc, f"{claim_id}: {name!r}'s doc holds '|'"


@pytest.mark.parametrize("claim_id", sorted(CHECKS))
def test_the_meaning_column_shows_each_doc(claim_id):
    spec = load_spec(claims_dir() / f"{claim_id}.yaml")
    rows = parameter_rows(spec)[2:]  # after the header and the rule
    assert len(rows) == len(CHECKS[claim_id].params)
    for row, param in zip(rows, CHECKS[claim_id].params.values(), strict=True):
        cells = row.split("|")[1:-1]
        assert len(cells) == 5 and cells[-1].strip() == param.doc
