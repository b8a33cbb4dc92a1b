"""Bad input: one line on stderr ("memharness: error: ..."), exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.trace.store import Fixture
from tests.helpers import edit_manifest, rewrite_arrays

PROMPT_FILE = "ddim/mem-02.safetensors"
PREFIX = "memharness: error: "


# --------------------------------------------------------------------------- helpers
def run_cli(argv: list[str]) -> int:
    """main(argv) with argparse's SystemExit turned into its exit code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def assert_one_line_error(rc: int, err: str, *needles: str) -> str:
    """The contract for rc-2 errors; returns the message without the prefix."""
    assert rc == 2, err
    line = err.strip()
    assert line, "nothing on stderr"
    assert "\n" not in line, f"more than one line on stderr:\n{err}"
    assert line.startswith(PREFIX), line
    assert "Traceback" not in err
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line[len(PREFIX):]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes (to prove nothing was written)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tmp_leftovers(root: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".tmp")]


# --------------------------------------------------------------------------- damaged fixtures
def _truncate(root: Path) -> tuple[Path, tuple[str, ...]]:
    path = root / PROMPT_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path, ("checksum", "memharness trace")


def _flip_byte(root: Path) -> tuple[Path, tuple[str, ...]]:
    path = root / PROMPT_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path, ("checksum", "memharness trace")


def _no_manifest(root: Path) -> tuple[Path, tuple[str, ...]]:
    (root / "manifest.json").unlink()
    return root, ("manifest.json", "memharness trace")


def _schema_version(root: Path) -> tuple[Path, tuple[str, ...]]:
    path = edit_manifest(root, lambda m: m.update(schema_version=999))
    return path, ("999", "schema", "memharness trace")


def _garbage_manifest(root: Path) -> tuple[Path, tuple[str, ...]]:
    path = root / "manifest.json"
    path.write_bytes(b"\x00\xff\xfe{{ not json \x81")
    return path, ("JSON",)


def _manifest_not_object(root: Path) -> tuple[Path, tuple[str, ...]]:
    path = root / "manifest.json"
    path.write_text("[1, 2, 3]\n")
    return path, ("manifest",)


def _nan_in_array(root: Path) -> tuple[Path, tuple[str, ...]]:
    def inject(arrays: dict[str, np.ndarray]) -> None:
        arrays["g7.5/gram"].flat[7] = np.nan

    return rewrite_arrays(root, PROMPT_FILE, inject), ("NaN", "g7.5/gram")


def _wrong_shape(root: Path) -> tuple[Path, tuple[str, ...]]:
    def reshape(arrays: dict[str, np.ndarray]) -> None:
        arrays["g2/trace_cov"] = np.ones(3, dtype=np.float32)

    return rewrite_arrays(root, PROMPT_FILE, reshape), ("g2/trace_cov", "shape")


def _not_safetensors(root: Path) -> tuple[Path, tuple[str, ...]]:
    def replace(manifest: dict) -> None:
        manifest["runs"]["ddim"]["files"]["mem-02"]["sha256"] = hashlib.sha256(b"garbage").hexdigest()

    path = root / PROMPT_FILE
    path.write_bytes(b"garbage")
    edit_manifest(root, replace)
    return path, ("safetensors",)


def _prompt_file_deleted(root: Path) -> tuple[Path, tuple[str, ...]]:
    path = root / PROMPT_FILE
    path.unlink()
    return path, ("missing", "memharness trace")


def _prompt_missing_from_run(root: Path) -> tuple[Path, tuple[str, ...]]:
    edit_manifest(root, lambda m: m["runs"]["ddim"]["files"].pop("mem-02"))
    return root, ("mem-02", "memharness trace", "again")


DAMAGE = {
    "no-manifest": _no_manifest,
    "truncated-prompt-file": _truncate,
    "wrong-checksum": _flip_byte,
    "wrong-schema-version": _schema_version,
    "manifest-not-json": _garbage_manifest,
    "manifest-not-object": _manifest_not_object,
    "nan-in-array": _nan_in_array,
    "wrong-array-shape": _wrong_shape,
    "not-safetensors": _not_safetensors,
    "prompt-file-deleted": _prompt_file_deleted,
    "prompt-missing-from-run": _prompt_missing_from_run,
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_fixture(small_fixture, damage, capsys):
    named, needles = damage(small_fixture)
    before = snapshot(small_fixture)

    rc = run_cli(["check", "--fixtures", str(small_fixture)])
    out, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(named), *needles)
    assert snapshot(small_fixture) == before, "check changed the fixture"

    with pytest.raises(MemharnessError) as info:
        Fixture(small_fixture).verify()
    assert str(named) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_fixture_folder(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "folder"
    rc = run_cli(["check", "--fixtures", str(missing)])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(missing), "memharness trace")
    assert not missing.exists()
    with pytest.raises(MemharnessError, match="memharness trace"):
        Fixture(missing)


def test_empty_fixture_folder(tmp_path, capsys):
    rc = run_cli(["check", "--fixtures", str(tmp_path)])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(tmp_path), "manifest.json", "memharness trace")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- damaged manifest structure (bugs)
def _entry_without_sha(manifest: dict) -> None:
    del manifest["runs"]["ddim"]["files"]["mem-02"]["sha256"]


def _runs_not_object(manifest: dict) -> None:
    manifest["runs"] = []


def _score_missing(manifest: dict) -> None:
    del manifest["scores"]["values"]["ddim"]["g7.5"]["mem-02"]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_entry_without_sha, id="file-entry-without-sha256"),
        pytest.param(_runs_not_object, id="runs-not-an-object"),
        pytest.param(_score_missing, id="score-of-a-prompt-missing"),
    ],
)
def test_manifest_with_damaged_structure(small_fixture, edit, capsys):
    path = edit_manifest(small_fixture, edit)
    rc = run_cli(["check", "--fixtures", str(small_fixture)])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(path))


# --------------------------------------------------------------------------- models and arguments
def test_check_unknown_model(capsys):
    rc = run_cli(["check", "--model", "nope"])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "'nope'", "analytic", "--model")


def test_trace_unknown_model(tmp_path, capsys):
    out = tmp_path / "out"
    rc = run_cli(["trace", "--model", "nope", "--out", str(out)])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "'nope'", "analytic", "--model")
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["trace", "--seeds", "0"],
        ["trace", "--seeds", "two"],
        ["trace", "--steps", "0"],
        ["trace", "--sampler", "euler"],
        ["check", "--format", "yaml"],
        ["frobnicate"],
        [],
    ],
    ids=["seeds-0", "seeds-not-int", "steps-0", "sampler-euler", "format-yaml", "unknown-command", "no-command"],
)
def test_argparse_rejects(tmp_path, argv, capsys):
    if argv and argv[0] == "trace":
        argv = [*argv, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "usage:" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        pytest.param(["--guidance", "-1"], ("--guidance", "≥ 0"), id="guidance-negative"),
        pytest.param(["--guidance", "1", "1"], ("--guidance", "repeated"), id="guidance-repeated"),
        pytest.param(["--seeds", "1"], ("--seeds", "2"), id="seeds-1"),
        pytest.param(["--guidance", "nan"], ("--guidance",), id="guidance-nan"),
        pytest.param(["--guidance", "inf"], ("--guidance",), id="guidance-inf"),
    ],
)
def test_trace_bad_settings(tmp_path, argv, needles, capsys):
    out = tmp_path / "out"
    rc = run_cli(["trace", "--out", str(out), "--steps", "2", "--seeds", "2", *argv])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, *needles)
    assert not out.exists(), "a rejected trace left files behind"


def test_check_fixtures_with_two_models(small_fixture_master, capsys):
    rc = run_cli(["check", "--fixtures", str(small_fixture_master), "--model", "x", "--model", "y"])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "--fixtures", "x/, y/")


def test_check_unknown_claim(small_fixture_master, capsys):
    rc = run_cli(["check", "--fixtures", str(small_fixture_master), "--claim", "nope"])
    out, err = capsys.readouterr()
    assert_one_line_error(rc, err, "--claim", "'nope'")
    assert out == ""


def test_unknown_claim_advice_names_a_real_command(small_fixture_master, capsys):
    run_cli(["check", "--fixtures", str(small_fixture_master), "--claim", "nope"])
    _, err = capsys.readouterr()
    advised = err.split("`")[1].split()  # the command the message tells the user to run
    assert advised[0] == "memharness"
    rc = run_cli(advised[1:])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "linear-in-guidance" in out


# --------------------------------------------------------------------------- output and trace destinations
def test_trace_into_fixture_of_another_card(small_fixture, capsys):
    before = snapshot(small_fixture)
    rc = run_cli(["trace", "--out", str(small_fixture), "--steps", "2", "--seeds", "2"])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, f"--out {small_fixture}:", "choose another folder")
    assert snapshot(small_fixture) == before, "the other card's fixture was changed"
    assert not tmp_leftovers(small_fixture)


def test_trace_out_is_a_file(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("not a folder\n")
    rc = run_cli(["trace", "--out", str(out), "--steps", "2", "--seeds", "2"])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "--out", str(out))
    assert out.read_text() == "not a folder\n"


def test_table_output_into_missing_folder(small_fixture_master, tmp_path, capsys):
    target = tmp_path / "reports" / "check.txt"
    rc = run_cli(["check", "--fixtures", str(small_fixture_master), "--output", str(target)])
    _, err = capsys.readouterr()
    if rc in (0, 1):  # 1: a claim FAILs, a finding
        assert "claims:" in target.read_text()
    else:
        assert_one_line_error(rc, err, str(target))


@pytest.mark.parametrize(
    "fmt",
    [
        pytest.param("table"),
        pytest.param("json"),
    ],
)
def test_output_is_a_directory(small_fixture_master, tmp_path, fmt, capsys):
    rc = run_cli(["check", "--fixtures", str(small_fixture_master), "--format", fmt, "--output", str(tmp_path)])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(tmp_path))
    assert not tmp_leftovers(tmp_path)



def test_nan_memorization_score_is_rejected(small_fixture, capsys):
    def nan_score(manifest: dict) -> None:
        manifest["scores"]["values"]["ddim"]["g7.5"]["mem-02"]["score"] = float("nan")

    path = edit_manifest(small_fixture, nan_score)
    rc = run_cli(["check", "--fixtures", str(small_fixture)])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(path), "mem-02", "finite")


def test_model_name_must_match_the_fixture(small_fixture_master, capsys):
    rc = run_cli(["check", "--fixtures", str(small_fixture_master), "--model", "sd14"])
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "--model sd14", "'analytic'")
