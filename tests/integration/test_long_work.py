"""Long work that talks (issue 16): progress lines outside a terminal, --limit, --threads, provenance."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memharness.cli import main
from memharness.progress import LongWork, duration
from memharness.runtime import default_threads, physical_cores, set_threads
from memharness.shipped import shipped_fixture

SHIPPED = shipped_fixture("analytic")
QUICK = ["--seeds", "2", "--steps", "5", "--threads", "1"]


def _memharness(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "memharness", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def test_trace_without_a_terminal_prints_progress_lines_and_limit_traces_two_prompts(tmp_path):
    out = tmp_path / "fx"
    done = _memharness("trace", "--model", "analytic", "--out", str(out), "--limit", "2", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("trace analytic ddim")]
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines] == ["1/2 prompts (50 %)", "2/2 prompts (100 %)"]
    assert "ETA" in lines[0] and "prompts/s" in lines[0] and "UNet evals/s" in lines[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["id"] for p in manifest["prompts"]] == ["mem-00", "mem-01"]
    assert set(manifest["runs"]["ddim"]["files"]) == {"mem-00", "mem-01"}
    assert main(["check", "--fixtures", str(out), "--format", "json"]) in (0, 1)  # a whole, checkable fixture


def test_plain_lines_come_once_per_tenth_with_rate_and_eta():
    stream = io.StringIO()
    with LongWork("trace", "model", unit="prompts", stream=stream, plain=True) as work:
        for i in range(1, 101):
            work.update(i, 100, skipped=i <= 20)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("trace model: 10/100 prompts (10 %), 10 done before")  # skipped: no rate yet
    assert "prompts/s" in lines[3] or "s per prompt" in lines[3]
    assert "ETA" in lines[3] and "ETA" not in lines[-1]
    assert lines[-1].startswith("trace model: 100/100 prompts (100 %), 20 done before")


def test_a_few_items_give_a_line_each_and_no_total_gives_none():
    stream = io.StringIO()
    with LongWork("fetch", "set", unit="images", stream=stream, plain=True) as work:
        for i in range(1, 4):
            work.update(i, 3, note=f"{i} ok")
    assert [line.split(": ")[1].split(",")[0] for line in stream.getvalue().splitlines()] == \
        ["1/3 images (33 %)", "2/3 images (66 %)", "3/3 images (100 %)"]
    assert stream.getvalue().splitlines()[-1].endswith("3 ok")
    silent = io.StringIO()
    with LongWork("x", "y", stream=silent, plain=True) as work:
        work.update(5)
    assert silent.getvalue() == ""


def test_durations():
    assert [duration(s) for s in (0.4, 59, 61, 3599, 7440)] == \
        ["0 s", "59 s", "1 min 01 s", "59 min 59 s", "2 h 04 min"]
    assert duration(float("nan")) == "?"


def test_thread_defaults(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert default_threads() == physical_cores() >= 1
    monkeypatch.setenv("WORLD_SIZE", "4")  # accelerate launch / torchrun: the processes share the cores
    assert default_threads() == 1
    import torch

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_provenance_of_a_trace_and_of_its_resumption(tmp_path):
    out = tmp_path / "fx"
    assert main(["trace", "--model", "analytic", "--out", str(out), "--limit", "2", *QUICK]) == 0
    run = json.loads((out / "manifest.json").read_text())["runs"]["ddim"]
    record = run["provenance"]
    assert record["torch_threads"] == 1 and record["batch_size"] is None
    assert record["dtype"] == "float64" and record["device"] == "cpu"
    assert set(record["versions"]) >= {"memharness", "torch"}
    assert record["command"].startswith("memharness trace --model analytic") and "--limit 2" in record["command"]
    assert record["date"].endswith("Z")
    assert "provenance" not in run["settings"]  # a resumed trace compares settings: provenance is beside them

    # Another session with nothing left to do writes nothing.
    before = (out / "manifest.json").read_bytes()
    assert main(["trace", "--model", "analytic", "--out", str(out), "--limit", "2", *QUICK]) == 0
    assert (out / "manifest.json").read_bytes() == before


def test_shipped_fixtures_without_provenance_still_read():
    from memharness.trace.store import Fixture

    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert all("provenance" not in run for run in manifest["runs"].values())
    Fixture(SHIPPED).require_complete_run()


@pytest.fixture
def analytic_copy(tmp_path) -> Path:
    copy = tmp_path / "analytic"
    shutil.copytree(SHIPPED, copy)
    return copy


def test_mitigate_limit_does_the_first_prompts_and_says_how_to_finish(analytic_copy, capsys):
    manifest = json.loads((analytic_copy / "manifest.json").read_text())
    manifest.pop("mitigation")
    shutil.rmtree(analytic_copy / "mitigation")
    (analytic_copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["mitigate", "--model", "analytic", "--fixtures", str(analytic_copy), "--limit", "2",
                 "--threads", "1", "--methods", "delta"]) == 0
    err = capsys.readouterr().err
    assert "mitigate analytic delta g=7.5: 2/2 prompts (100 %)" in err
    assert "2 of 32 prompts mitigated; run the same command without --limit" in err
    section = json.loads((analytic_copy / "manifest.json").read_text())["mitigation"]
    assert sorted(section["files"]) == ["mem-00", "mem-01"]


def test_score_limit_prints_and_writes_nothing(analytic_copy, capsys):
    before = (analytic_copy / "manifest.json").read_bytes()
    assert main(["score", "--fixtures", str(analytic_copy), "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "scores of the first 1 of 32 prompts (--limit: not written" in out
    assert "ddim g7.5 mem-00: train" in out and "mem-01" not in out
    assert (analytic_copy / "manifest.json").read_bytes() == before


def test_report_prints_progress_lines(tmp_path, capsys):
    assert main(["report", "--model", "analytic", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "report analytic: " in err and "figures (100 %)" in err


def test_check_null_and_generate_print_progress_lines(tmp_path, capsys):
    """The two commands that used their own bar now talk through LongWork too."""
    assert main(["check", "--claim", "overestimation", "--null", "2", "--format", "json"]) == 0
    assert "check --null analytic: label permutations: 2/2 permutations (100 %)" in capsys.readouterr().err
    assert main(["generate", "--prompt-id", "mem-00", "--seeds", "2", "--steps", "5",
                 "--out", str(tmp_path / "gen")]) == 0
    err = capsys.readouterr().err
    assert "generate analytic mem-00 × 2 seeds g=7.5: 5/5 steps (100 %)" in err
