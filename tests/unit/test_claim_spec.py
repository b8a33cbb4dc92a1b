"""Claim files: the shipped ones load; a broken one fails naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memharness.claims.engine import validate_specs
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
    (lambda d: d.pop("scope"), "missing key 'scope'"),
    (lambda d: d.update(scope="sometimes"), "key 'scope' must be one of"),
    (lambda d: d.pop("floor"), "missing key 'floor'"),
    (lambda d: d.update(paper_number=0.9), "key 'paper_number'"),
    (lambda d: d.update(paper_number={"value": 1.0}), "key 'paper_number'"),
    (lambda d: d.update(alternatives={"step": 1}), "key 'alternatives'"),
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


@pytest.mark.parametrize(("parameters", "needle"), [
    ({"slope_tolerence": 0.0001}, "parameters.slope_tolerence: unknown parameter"),
    ({"slope_tolerance": "abc"}, "parameters.slope_tolerance: 'abc' is not a float"),
    ({"slope_tolerance": -1}, "parameters.slope_tolerance: -1 is not a float in"),
    ({"step": 10**6}, "parameters.step: 1000000 is not an int in"),
    ({"step": 1.5}, "parameters.step"),
    ({"sampler": "euler"}, "parameters.sampler: 'euler' is not one of ddim, ddpm"),
    ({"min_group": True}, "parameters.min_group"),
    ({"threshold": None}, "parameters.threshold"),
])
def test_bad_parameter_names_file_and_key(tmp_path, parameters, needle):
    path = _write(tmp_path, lambda d: d["parameters"].update(parameters))
    with pytest.raises(MemharnessError, match=needle) as info:
        validate_specs([load_spec(path)])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_bad_alternative_names_file_and_key(tmp_path):
    path = _write(tmp_path, lambda d: d.update(alternatives={"slope_tolerance": ["wide"]}))
    with pytest.raises(MemharnessError, match="alternatives: parameters.slope_tolerance"):
        validate_specs([load_spec(path)])


def test_check_exits_2_on_a_mistyped_parameter(tmp_path, monkeypatch, capsys):
    from memharness import cli
    from memharness.claims import spec as spec_module

    folder = tmp_path / "claims"
    folder.mkdir()
    for path in claims_dir().glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    broken = folder / "linear-in-guidance.yaml"
    broken.write_text(broken.read_text().replace("slope_tolerance:", "slope_tolerence:"))
    monkeypatch.setattr(spec_module, "claims_dir", lambda: folder)
    assert cli.main(["check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(broken) in err and "parameters.slope_tolerence" in err
