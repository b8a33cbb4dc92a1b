"""The command line end to end: check's table and JSON, models, and resumable, atomic tracing."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from memharness.claims import load_specs
from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.trace import store
from memharness.trace.store import Fixture
from tests.helpers import small_card

CLAIM = "linear-in-guidance"
CLAIM_KEYS = {"id", "verdict", "measured", "ci", "paper", "n", "test", "p_value", "reason", "floor", "agreement"}
# Exit 1: two claims FAIL on the analytic model, findings whose reasons tests/unit/test_claim_verdicts.py pins.
ANALYTIC_RC = 1


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tmp_leftovers(root: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".tmp")]


# --------------------------------------------------------------------------- check
def test_check_table(small_fixture_master, capsys):
    rc = main(["check", "--fixtures", str(small_fixture_master)])
    out, err = capsys.readouterr()
    assert rc == ANALYTIC_RC, out + err
    assert CLAIM in out
    assert "PASS" in out
    summary = [line for line in out.splitlines() if "claims:" in line]
    assert len(summary) == 1, out
    n_claims = len(load_specs())
    assert summary[0].startswith(f"{n_claims} claims: ")
    assert " 2 FAIL" in summary[0]
    assert "\x1b[" not in out  # captured stdout is not a terminal: plain text


def test_check_no_color(small_fixture_master, monkeypatch, capsys):
    monkeypatch.setenv("NO_COLOR", "1")
    rc = main(["check", "--fixtures", str(small_fixture_master)])
    out, _ = capsys.readouterr()
    assert rc == ANALYTIC_RC
    assert CLAIM in out
    assert "\x1b[" not in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_check_no_color_on_a_terminal(small_fixture_master, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    rc = main(["check", "--fixtures", str(small_fixture_master)])
    out = terminal.getvalue()
    assert rc == ANALYTIC_RC
    assert CLAIM in out
    assert "\x1b[" not in out, repr(out[:200])


def test_check_json(small_fixture_master, capsys):
    rc = main(["check", "--fixtures", str(small_fixture_master), "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == ANALYTIC_RC, err
    envelope = json.loads(out)
    assert set(envelope) == {"memharness_version", "schema_version", "models"}
    [report] = envelope["models"]
    assert {"model", "harness_version", "fixtures", "claims"} <= set(report)
    assert report["model"] == "analytic"
    assert report["fixtures"]["path"] == str(small_fixture_master)
    assert set(report["fixtures"]["runs"]) == {"ddim", "ddpm"}
    assert [c["id"] for c in report["claims"]] == [spec.id for spec in load_specs()]
    for claim in report["claims"]:
        assert CLAIM_KEYS <= set(claim), CLAIM_KEYS - set(claim)
        assert claim["reason"]
        assert claim["verdict"] in ("PASS", "INCONCLUSIVE", "FAIL", "SKIP")
        if claim["verdict"] == "SKIP":
            continue
        assert isinstance(claim["measured"], float)
        assert isinstance(claim["ci"], list) and len(claim["ci"]) == 2
        assert claim["ci"][0] <= claim["ci"][1]
        assert claim["n"] == {"memorized": 6, "normal": 6}
        assert isinstance(claim["test"], str)
        assert claim["p_value"] is None or 0.0 <= claim["p_value"] <= 1.0


def test_check_json_output_file(small_fixture_master, tmp_path, capsys):
    target = tmp_path / "report.json"
    rc = main(["check", "--fixtures", str(small_fixture_master), "--format", "json", "--output", str(target)])
    out, err = capsys.readouterr()
    assert rc == ANALYTIC_RC, err
    assert out == ""
    [report] = json.loads(target.read_text())["models"]
    assert [c["id"] for c in report["claims"]] == [spec.id for spec in load_specs()]
    assert not tmp_leftovers(tmp_path)


def test_check_table_output_file(small_fixture_master, tmp_path, capsys):
    target = tmp_path / "report.txt"
    rc = main(["check", "--fixtures", str(small_fixture_master), "--output", str(target)])
    out, _ = capsys.readouterr()
    assert rc == ANALYTIC_RC
    assert out == ""
    text = target.read_text()
    assert CLAIM in text and "claims:" in text and "\x1b[" not in text


def test_check_only_one_claim(small_fixture_master, capsys):
    rc = main(["check", "--fixtures", str(small_fixture_master), "--claim", CLAIM, "--format", "json"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert [c["id"] for c in json.loads(out)["models"][0]["claims"]] == [CLAIM]


def test_check_unknown_claim(small_fixture_master, capsys):
    rc = run_cli(["check", "--fixtures", str(small_fixture_master), "--claim", "nope"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    assert err.strip().startswith("memharness: error: ") and "\n" not in err.strip()
    assert "'nope'" in err


def test_claims_lists_every_claim_and_shows_one(capsys):
    assert main(["claims"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [spec.id for spec in load_specs()]
    assert main(["claims", "show", CLAIM]) == 0
    out = capsys.readouterr().out
    spec = next(s for s in load_specs() if s.id == CLAIM)
    # Every key of the claim file that a reader needs, and the parameters the check declares.
    for text in (spec.title, spec.reference, spec.metric, spec.scope, "| `alpha` |", "| `min_auc` |"):
        assert text in out
    assert out.rstrip().endswith(f"Claim file: {spec.source}")


def test_claims_show_unknown_claim_is_one_line(capsys):
    assert run_cli(["claims", "show", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'nope'" in err and "memharness claims" in err and "\n" not in err


def test_models(capsys):
    assert main(["models"]) == 0
    out, _ = capsys.readouterr()
    assert "analytic" in out.split()


def test_version(capsys):
    assert run_cli(["--version"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("memharness ")


# --------------------------------------------------------------------------- resumable, atomic tracing
SETTINGS = {"sampler": "ddim", "num_inference_steps": 5, "guidance": (1.0, 7.5), "seeds": (0, 1)}


def _trace(out: Path, progress=None):
    from memharness.models import load_denoiser
    from memharness.trace.tracer import TraceSettings, trace

    return trace(load_denoiser(small_card()), out, TraceSettings(**SETTINGS), prompt_set="small", progress=progress)


@pytest.fixture(scope="module")
def reference_trace(tmp_path_factory) -> Path:
    """An uninterrupted trace with SETTINGS."""
    out = tmp_path_factory.mktemp("reference") / "small"
    _trace(out)
    return out


def test_resume_after_interrupt(reference_trace, tmp_path):
    out = tmp_path / "small"

    def interrupt(done: int, total: int, prompt_id: str, skipped: bool) -> None:
        if done == 3 and not skipped:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trace(out, progress=interrupt)
    assert not tmp_leftovers(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["runs"]["ddim"]["files"]) == 3
    Fixture(out)  # the interrupted fixture is whole: it opens

    calls: list[tuple[int, int, str, bool]] = []
    writer = _trace(out, progress=lambda *args: calls.append(args))
    n = len(writer.manifest["prompts"])
    assert n == 12
    assert [c[0] for c in calls] == list(range(1, n + 1))
    assert [c[3] for c in calls] == [True] * 3 + [False] * (n - 3)
    first_three = [p["id"] for p in manifest["prompts"][:3]]
    assert [c[2] for c in calls[:3]] == first_three
    assert set(manifest["runs"]["ddim"]["files"]) == set(first_three)

    assert not tmp_leftovers(out)
    assert snapshot(out) == snapshot(reference_trace)
    Fixture(out).verify()


def test_second_trace_skips_everything(reference_trace, tmp_path):
    out = tmp_path / "small"
    _trace(out)
    before = snapshot(out)
    calls: list[tuple[int, int, str, bool]] = []
    _trace(out, progress=lambda *args: calls.append(args))
    assert calls and all(c[3] for c in calls)
    assert snapshot(out) == before


class _FailOnce:
    """os.replace that raises OSError once, on the replace of the ``nth`` file named like ``suffix``."""

    def __init__(self, suffix: str, nth: int):
        self.suffix, self.nth, self.seen, self.fired = suffix, nth, 0, False
        self.real = os.replace

    def __call__(self, src, dst, *args, **kwargs):
        if not self.fired and str(dst).endswith(self.suffix):
            self.seen += 1
            if self.seen == self.nth:
                self.fired = True
                raise OSError(28, "No space left on device (simulated)")
        return self.real(src, dst, *args, **kwargs)


@pytest.mark.parametrize(
    ("suffix", "nth", "files_listed"),
    [
        (".safetensors", 3, 2),  # the 3rd prompt file never lands
        ("manifest.json", 3, 2),  # 2 prompts saved (the run enters with the 1st); the 3rd's manifest update fails
    ],
    ids=["prompt-file-write-fails", "manifest-write-fails"],
)
def test_failed_write_leaves_a_whole_fixture(reference_trace, tmp_path, monkeypatch, suffix, nth, files_listed):
    out = tmp_path / "small"
    fail = _FailOnce(suffix, nth)
    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises((OSError, MemharnessError)):
        _trace(out)
    monkeypatch.undo()
    assert fail.fired

    assert not tmp_leftovers(out)
    manifest = json.loads((out / "manifest.json").read_text())  # still valid JSON
    assert len(manifest["runs"]["ddim"]["files"]) == files_listed
    fixture = Fixture(out)
    for prompt_id, entry in fixture.runs["ddim"]["files"].items():
        assert (out / entry["file"]).is_file(), prompt_id

    _trace(out)  # resuming finishes the fixture as if nothing had happened
    assert not tmp_leftovers(out)
    assert snapshot(out) == snapshot(reference_trace)
