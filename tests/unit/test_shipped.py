"""Where fixtures are read and written (issue 16, item 1): ./fixtures/<model> first, else the shipped
package data, which no command writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from memharness.cli import main
from memharness.cli.runtime import default_fixture_dir
from memharness.shipped import claims_folder, is_shipped, shipped_fixture, shipped_fixtures

SHIPPED_MODELS = ("analytic", "digits", "digits-control", "digits-graded")


def test_claims_and_fixtures_are_package_data():
    assert claims_folder().parent.name == "claims" and len(list(claims_folder().glob("*.yaml"))) >= 19
    for model in SHIPPED_MODELS:
        assert (shipped_fixture(model) / "manifest.json").is_file()
        assert is_shipped(shipped_fixture(model)) and is_shipped(shipped_fixture(model) / "ddim")
    assert not is_shipped(shipped_fixtures().parent) and not is_shipped(Path("fixtures") / "analytic")


def test_reading_prefers_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_fixture_dir("analytic") == shipped_fixture("analytic")
    assert default_fixture_dir("sd14") == Path("fixtures/sd14")  # none ships: where `trace` records it
    (tmp_path / "fixtures" / "analytic").mkdir(parents=True)
    assert default_fixture_dir("analytic") == Path("fixtures/analytic")


@pytest.mark.parametrize("argv", [
    ["score", "--model", "analytic"],
    ["mitigate", "--model", "analytic"],
    ["score", "--fixtures", str(shipped_fixture("analytic"))],
    ["mitigate", "--model", "analytic", "--fixtures", str(shipped_fixture("analytic"))],
    ["trace", "--model", "analytic", "--out", str(shipped_fixture("analytic")), "--limit", "1"],
])
def test_writers_never_touch_the_shipped_fixtures(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in shipped_fixture("analytic").rglob("*")}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    option = "--out" if argv[0] == "trace" else "--fixtures"  # the option that named the folder, as given
    assert "\n" not in err and "read-only" in err and f"error: {option}" in err, err
    assert {p: p.stat().st_mtime_ns for p in shipped_fixture("analytic").rglob("*")} == before


def test_score_updates_the_working_directory_copy(tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(shipped_fixture("analytic"), tmp_path / "fixtures" / "analytic")
    assert main(["score", "--model", "analytic"]) == 0
    assert "scored fixtures/analytic" in capsys.readouterr().err
