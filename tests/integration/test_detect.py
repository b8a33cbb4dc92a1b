"""`memharness detect` on the shipped fixtures, and the realtime-detection claim (App H) where the
effect is present, where the literal rule over-flags, and where memorization is absent."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from memharness.claims import Outcome, load_specs, run_claims
from memharness.cli import main
from memharness.detection import evaluate_detectors
from memharness.detection.signals import REFERENCES, default_rho2, delta_states
from memharness.models import load_denoiser
from memharness.report.detectors import detector_table
from memharness.schedule import NoiseSchedule
from memharness.shipped import shipped_fixture
from memharness.trace.store import Fixture
from tests.helpers import PromptBlind, small_card, trace_small, write_random_scores

ROOT = Path(__file__).resolve().parents[2]
ANALYTIC, DIGITS = shipped_fixture("analytic"), shipped_fixture("digits")  # read only
SPEC = next(s for s in load_specs() if s.id == "realtime-detection")

ANALYTIC_TABLE = """\
+---------------------------------------------------------------------------------------------------+
| detector        |   AUC | TPR @ 1% FPR | threshold |  step (mem) | TPR @ γ | FPR @ γ | n mem/norm |
|-----------------+-------+--------------+-----------+-------------+---------+---------+------------|
| δ online        | 0.910 |         0.50 |    0.2154 | 1.00 ± 0.00 |   100 % |   100 % |      16/16 |
| δ final         | 0.000 |         0.00 |    0.5225 | 1.00 ± 0.00 |   100 % |   100 % |      16/16 |
| δ train         | 1.000 |         1.00 |    0.1039 | 1.00 ± 0.00 |   100 % |   100 % |      16/16 |
| Wen ‖ε_c − ε_u‖ | 1.000 |         1.00 |    0.9232 |           — |       — |       — |      16/16 |
+---------------------------------------------------------------------------------------------------+
"""
DIGITS_ROWS = """\
| δ online        | 1.000 |         1.00 |    0.3767 | 1.00 ± 0.00 |   100 % |   100 % |      10/10 |
| δ final         | 1.000 |         1.00 |    0.3465 | 1.00 ± 0.00 |   100 % |   100 % |      10/10 |
| δ train         | 1.000 |         1.00 |    0.3386 | 1.00 ± 0.00 |   100 % |   100 % |      10/10 |
| Wen ‖ε_c − ε_u‖ | 0.990 |         0.90 |    0.5185 |           — |       — |       — |      10/10 |
"""


def _detect(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("NO_COLOR", "1")
    rc = main(["detect", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- the command
def test_detect_table_on_the_analytic_fixture(capsys, monkeypatch):
    rc, out, err = _detect(capsys, monkeypatch, "--model", "analytic")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].rstrip() == "memharness detect · analytic"
    assert "\n".join(lines[1:9]) + "\n" == ANALYTIC_TABLE
    assert lines[9] == "ddim g=7.5, 50 steps × 8 seeds; labels: latent-cosine score on ddim g=7.5 ≥ 0.75"
    assert "states 1–10" in lines[10] and "δ > −0.2" in lines[10] and "ρ² = 256 (d)" in lines[10]
    assert lines[11].startswith("Wen: ‖ε_c − ε_u‖ over steps [0, 1), first 4 seeds")
    assert all(len(line) <= 120 for line in lines[:9])


def test_detect_table_on_the_digits_fixture(capsys, monkeypatch):
    rc, out, err = _detect(capsys, monkeypatch, "--fixtures", str(DIGITS))
    assert rc == 0, err
    assert out.splitlines()[0].rstrip() == "memharness detect · digits"
    assert DIGITS_ROWS in out
    assert "50 steps × 16 seeds" in out and "ρ² = 64 (d)" in out


def test_detect_json_matches_the_evaluation(capsys, monkeypatch):
    rc, out, err = _detect(capsys, monkeypatch, "--model", "analytic", "--format", "json", "--gamma", "0",
                           "--window", "3", "--wen-end", "5", "--wen-generations", "2")
    assert rc == 0, err
    report = json.loads(out)
    assert report["model"] == "analytic"
    assert [d["detector"] for d in report["detectors"]] == ["delta-online", "delta-final", "delta-train", "wen"]
    assert report["settings"] | {"gamma": 0.0, "window": 3, "rho2": 256.0, "wen_end": 5, "wen_generations": 2} \
        == report["settings"]
    want = evaluate_detectors(Fixture(ANALYTIC), gamma=0.0, window=3, wen_end=5, wen_generations=2)
    assert report["detectors"] == [dataclasses.asdict(r) for r in want.rows]
    online = report["detectors"][0]
    assert online["step_mean"] == 2.0  # γ = 0 is the unmargined rule δ > 0: one step later
    assert report["detectors"][3]["step_mean"] is None


def test_rho2_moves_only_the_online_reference():
    fixture = Fixture(ANALYTIC)
    base, small = evaluate_detectors(fixture).rows, evaluate_detectors(fixture, rho2=100.0).rows
    assert base[0] != small[0] and base[1:] == small[1:]
    assert small[0].threshold > base[0].threshold  # w0 scales as 1/ρ: a smaller ρ raises δ


def test_rich_table_in_a_terminal():
    result = evaluate_detectors(Fixture(ANALYTIC))
    buffer = io.StringIO()
    Console(file=buffer, width=120, force_terminal=True, color_system="standard").print(detector_table(result))
    text = buffer.getvalue()
    assert "\x1b[" in text and "━" in text  # styles and the heavy box
    assert "δ online" in text and "0.910" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--gamma", "-1"], "gamma -1: must be a number ≥ 0"),
    (["--wen-start", "3", "--wen-end", "2"], "wen steps [3, 2)"),
    (["--wen-end", "51"], "≤ 50"),
    (["--rho2", "0"], "rho2 0: must be a number > 0"),
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--model", "digits", "--fixtures", str(ANALYTIC)], "holds model 'analytic'"),
])
def test_bad_input_exits_2_with_one_line(capsys, monkeypatch, argv, message):
    rc, out, err = _detect(capsys, monkeypatch, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("memharness: error: ") and err.count("\n") == 1
    assert message in err


def _copy_with(tmp_path: Path, edit) -> Path:
    copy = tmp_path / "analytic"
    shutil.copytree(ANALYTIC, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_fixture_without_the_guided_run_or_enough_prompts(tmp_path, capsys, monkeypatch):
    def no_guided_run(m):
        m["runs"]["ddim"]["settings"]["guidance"] = [1.0, 2.0]

    def one_memorized(m):
        for i, entry in enumerate(m["scores"]["values"]["ddim"]["g7.5"].values()):
            entry["score"] = 1.0 if i == 0 else 0.2

    rc, _, err = _detect(capsys, monkeypatch, "--fixtures", str(_copy_with(tmp_path / "a", no_guided_run)))
    assert rc == 2 and "no ddim run at g = 7.5" in err and "memharness trace" in err
    rc, _, err = _detect(capsys, monkeypatch, "--fixtures", str(_copy_with(tmp_path / "b", one_memorized)))
    assert rc == 2 and "1 memorized and 31 normal prompts" in err
    rc, _, err = _detect(capsys, monkeypatch, "--fixtures", str(_copy_with(tmp_path / "c", lambda m: m.pop("scores"))))
    assert rc == 2 and "no memorization scores for ddim g=7.5" in err and "memharness score" in err


# --------------------------------------------------------------------------- signals
def test_first_state_is_vacuous_on_the_fixture():
    """δ(T) = −√ᾱ_T − (1 − √(1−ᾱ_T)) for every prompt, seed and reference (App H; −0.079 for SD)."""
    fixture = Fixture(ANALYTIC)
    group = fixture.group("ddim", 7.5)
    schedule = NoiseSchedule.from_config(fixture.model["scheduler"])
    ab_T = schedule.alpha_bar(int(group.timesteps[0]))
    vacuous = -math.sqrt(ab_T) - (1 - math.sqrt(1 - ab_T))
    assert vacuous == pytest.approx(-0.079, abs=1e-3)
    for reference in REFERENCES:
        d = delta_states(group, schedule, reference, rho2=default_rho2(fixture))
        assert d.shape == (32, 8, 50)
        np.testing.assert_allclose(d[..., 0], vacuous, atol=2e-3)


# --------------------------------------------------------------------------- the claim
def _claim(root: Path, **parameters):
    spec = dataclasses.replace(SPEC, parameters={**SPEC.parameters, **parameters})
    return run_claims(Fixture(root), [spec])[0]


def test_claim_fails_on_the_analytic_fixture_because_the_rule_flags_everyone():
    verdict = _claim(ANALYTIC)
    assert verdict.verdict is Outcome.FAIL, verdict.reason
    assert verdict.measured == 1.0 and verdict.ci == (1.0, 1.0)  # every generation flagged after step 1
    assert verdict.details["flagged_normal"] == 1.0  # γ = 0.2 flags normal prompts too: no detection
    assert "memorized − normal = 0 [0, 0], floor 0.5" in verdict.reason
    assert "AUC 0.91" in verdict.reason  # the threshold-free separation is reported, not decided


@pytest.mark.parametrize(("parameters", "why"), [
    ({"max_mean_step": 0.5}, "not < 0.5"),  # part (a): flagged too late
    ({"reference": "final"}, "memorized − normal = 0"),  # part (b): flags everyone
])
def test_claim_can_fail_on_the_analytic_fixture(parameters, why):
    verdict = _claim(ANALYTIC, **parameters)
    assert verdict.verdict is Outcome.FAIL, verdict.reason
    assert why in verdict.reason


def test_claim_passes_where_the_threshold_separates():
    """δ(t) > 0.1 on the training latent (offline) flags 99 % of memorized and 21 % of normal generations."""
    verdict = _claim(ANALYTIC, reference="train", gamma=-0.1)
    assert verdict.verdict is Outcome.PASS, verdict.reason
    assert verdict.details["flagged_normal"] < 0.5 < verdict.details["flagged_memorized"]


def test_claim_on_digits_fails_as_the_rule_is_written():
    verdict = _claim(DIGITS)
    assert verdict.verdict is Outcome.FAIL and verdict.details["flagged_normal"] == 1.0


def test_claim_fails_where_memorization_is_absent(tmp_path):
    """Prompt-blind model (ε_c = ε_u), random labels: every prompt's δ is the same, the AUC is ½."""
    out = trace_small(PromptBlind(load_denoiser(small_card(memorized_prompts=0, normal_prompts=48))), tmp_path / "f")
    write_random_scores(out, seed=1)
    verdict = _claim(out)
    assert verdict.verdict is Outcome.FAIL, verdict.reason
