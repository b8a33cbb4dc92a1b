"""Claim files: the shipped ones load; a broken one fails naming the file and the key."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from memharness.claims import load_specs
from memharness.claims.engine import validate_specs
from memharness.claims.spec import claims_dir, load_spec
from memharness.errors import MemharnessError

SHIPPED = claims_dir() / "linear-in-guidance.yaml"


def test_shipped_claims_load_in_their_order():
    specs = load_specs()
    assert len(specs) == len(list(claims_dir().glob("*.yaml")))
    orders = [s.order for s in specs]
    assert None not in orders and orders == sorted(set(orders))  # every shipped claim placed, no ties
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
    (lambda d: d.update(order="first"), "key 'order' must be an int"),
    (lambda d: d.update(metric="memharness.analysis.no_such_function"), "key 'metric'"),
    (lambda d: d.update(metric="category counts"), "key 'metric'"),
    (lambda d: d["test"].update(alpha=0.05), "test.alpha: unknown key .*parameters.alpha"),
    (lambda d: d["test"].pop("kind"), "missing key 'test.kind'"),
    (lambda d: d["needs"].update(sampler="ddim"), "needs.sampler: unknown key"),
    (lambda d: d["needs"].update(fields=["gram x·x_T"]), "needs.fields: 'gram x·x_T'"),
    (lambda d: d["needs"].update(fields=["scores at both scales"]), "needs.fields"),
    (lambda d: d["needs"].pop("fields"), "needs.fields must be a list"),
    (lambda d: d["needs"].update(distinct_guidance_scales=0), "needs.distinct_guidance_scales"),
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


def _consumer(dotted: str):
    """The module, class or function a dotted path names."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise AssertionError(dotted)


def test_every_key_of_every_claim_file_is_read():
    """Each key (and sub-key of needs and test) of every shipped claim file has a consumer whose code reads it."""
    from memharness.claims.spec import CONSUMERS

    sub_consumers = {"needs": "memharness.claims.needs.unmet", "test": "memharness.claims.describe.describe"}
    for path in claims_dir().glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for key, value in data.items():
            assert key in CONSUMERS, f"{path.name}: key {key!r} is read by nothing"
            if key in sub_consumers:
                source = inspect.getsource(_consumer(sub_consumers[key]))
                for sub in value:
                    assert f'"{sub}"' in source or f"'{sub}'" in source, f"{path.name}: {key}.{sub} is read by nothing"
    for key, where in CONSUMERS.items():
        source = inspect.getsource(_consumer(where))
        assert f".{key}" in source, f"{where} does not read the claim files' {key!r}"


def _copy_shipped(tmp_path: Path, skip: str = "") -> Path:
    folder = tmp_path / "claims"
    folder.mkdir()
    for path in claims_dir().glob("*.yaml"):
        if path.stem != skip:
            (folder / path.name).write_text(path.read_text())
    return folder


def test_a_claim_file_without_a_check_is_an_error(tmp_path):
    folder = _copy_shipped(tmp_path)
    lonely = folder / "unchecked-claim.yaml"
    lonely.write_text(SHIPPED.read_text().replace("id: linear-in-guidance", "id: unchecked-claim"))
    with pytest.raises(MemharnessError, match="no check is registered for claim 'unchecked-claim'") as info:
        load_specs(folder)
    assert str(lonely) in str(info.value) and "\n" not in str(info.value)


def test_a_check_without_a_claim_file_is_an_error(tmp_path):
    folder = _copy_shipped(tmp_path, skip="overestimation")
    with pytest.raises(MemharnessError, match="overestimation.py: registers a check for 'overestimation', but") as info:
        load_specs(folder)
    assert "overestimation.yaml" in str(info.value) and "\n" not in str(info.value)


def test_old_guidance_names_are_unknown_parameters(tmp_path):
    shipped = claims_dir() / "guidance-drives-memorization.yaml"
    path = tmp_path / shipped.name
    path.write_text(shipped.read_text().replace("baseline_guidance:", "without_guidance:"))
    with pytest.raises(MemharnessError, match="parameters.without_guidance: unknown parameter .*baseline_guidance"):
        validate_specs([load_spec(path)])
