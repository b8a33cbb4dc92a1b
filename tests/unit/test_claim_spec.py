"""Claim files: the shipped ones load; a broken one fails naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memharness.claims.spec import CLAIM_ORDER, claims_dir, load_spec, load_specs
from memharness.errors import MemharnessError

SHIPPED = claims_dir() / "linear-in-guidance.yaml"


def test_shipped_claims_load_in_the_papers_order():
    specs = load_specs()
    assert [s.id for s in specs] == list(CLAIM_ORDER)
    for spec in specs:
        assert spec.reference and spec.statement and spec.paper_value
        assert Path(spec.source).name == f"{spec.id}.yaml"


def _write(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    edit(data)
    path = tmp_path / "linear-in-guidance.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: d.pop("test"), "missing key 'test'"),
    (lambda d: d.update(parameters=[1, 2]), "key 'parameters' must be a dict"),
    (lambda d: d.update(paper_value=None), "key 'paper_value' must be a str"),
    (lambda d: d.update(extra=1), "unknown key 'extra'"),
    (lambda d: d.update(id="other"), "must match the file name"),
    (lambda d: d.update(regression_tolerance=-1), "regression_tolerance"),
])
def test_broken_claim_file_names_file_and_key(tmp_path, edit, needle):
    path = _write(tmp_path, edit)
    with pytest.raises(MemharnessError, match=needle) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_not_yaml_or_not_a_mapping(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("id: [unclosed\n")
    with pytest.raises(MemharnessError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(MemharnessError, match="must be a mapping"):
        load_spec(bad)
    with pytest.raises(MemharnessError, match="claims folder not found"):
        load_specs(tmp_path / "missing")
