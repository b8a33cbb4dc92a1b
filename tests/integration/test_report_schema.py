"""The JSON report's published schema (memharness/report/report.schema.json) holds for what check writes."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from memharness.cli import main
from memharness.report.model_report import SCHEMA_VERSION

jsonschema = pytest.importorskip("jsonschema")
BASELINE = str(Path(__file__).resolve().parents[2] / "reports" / "baselines" / "digits.json")
SCHEMA = json.loads(resources.files("memharness.report").joinpath("report.schema.json").read_text())


def _report(capsys, *argv: str):
    main(["check", "--format", "json", *argv])
    return json.loads(capsys.readouterr().out)


def test_the_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


@pytest.mark.parametrize("argv", [
    (),
    ("--null", "2"),
    ("--model", "analytic", "--model", "digits"),
    ("--model", "digits", "--baseline", BASELINE),
])
def test_check_json_validates(capsys, argv):
    report = _report(capsys, *argv)
    jsonschema.validate(report, SCHEMA)
    assert len(report["models"]) == max(argv.count("--model"), 1)  # one shape, one entry per model


def test_a_baseline_validates(tmp_path, capsys):
    path = tmp_path / "baseline.json"
    main(["check", "--claim", "linear-in-guidance", "--write-baseline", str(path)])
    capsys.readouterr()
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)


def test_the_schema_rejects_what_it_should(capsys):
    report = _report(capsys, "--claim", "linear-in-guidance")
    report["models"][0]["claims"][0]["verdict"] = "MAYBE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, SCHEMA)
    for old_shape in (report["models"][0], report["models"]):  # schema 1's object or list
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(old_shape, SCHEMA)
