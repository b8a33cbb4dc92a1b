"""The JSON report's published schema (memharness/report/report.schema.json) holds for what check writes."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from memharness.cli import main

jsonschema = pytest.importorskip("jsonschema")
BASELINE = str(Path(__file__).resolve().parents[2] / "reports" / "baselines" / "digits.json")
SCHEMA = json.loads(resources.files("memharness.report").joinpath("report.schema.json").read_text())


def _report(capsys, *argv: str):
    main(["check", "--format", "json", *argv])
    return json.loads(capsys.readouterr().out)


def test_the_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("argv", [
    (),
    ("--null", "2"),
    ("--model", "analytic", "--model", "digits"),
    ("--model", "digits", "--baseline", BASELINE),
])
def test_check_json_validates(capsys, argv):
    jsonschema.validate(_report(capsys, *argv), SCHEMA)


def test_the_schema_rejects_what_it_should(capsys):
    report = _report(capsys, "--claim", "linear-in-guidance")
    report["claims"][0]["verdict"] = "MAYBE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, SCHEMA)
