"""fixtures/analytic is what `memharness trace` writes, and shows what issue 2 promises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from memharness.claims.checks.common import overestimation
from memharness.cli import main
from memharness.scoring.labels import memorization_labels
from memharness.shipped import shipped_fixture
from memharness.trace.store import Fixture
from tests.helpers import arrays_added_since

SHIPPED = shipped_fixture("analytic")


def _manifest(root: Path) -> dict:
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("harness_version")
    for run in manifest["runs"].values():
        run.pop("provenance", None)  # newly traced runs record how they were made (issue 16); shipped ones predate it
        for entry in run["files"].values():
            entry.pop("sha256")  # compared array by array below
    return manifest


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regen") / "analytic"
    assert main(["trace", "--model", "analytic", "--out", str(out)]) == 0
    assert main(["trace", "--model", "analytic", "--out", str(out), "--sampler", "ddpm"]) == 0
    return out


def test_shipped_fixture_equals_a_fresh_trace(regenerated):
    want, got = _manifest(SHIPPED), _manifest(regenerated)
    scores_want, scores_got = want.pop("scores"), got.pop("scores")
    want.pop("mitigation")  # `memharness mitigate` adds it; checked below
    assert got == want
    assert scores_got["scorer"] == scores_want["scorer"]
    for run in want["runs"].values():
        for entry in run["files"].values():
            a, b = load_file(SHIPPED / entry["file"]), load_file(regenerated / entry["file"])
            assert b.keys() == a.keys() | arrays_added_since(a)  # guidance_norm: the shipped files predate it
            for key in a:
                # Float64 sums may round differently on another CPU; the arrays are float32.
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=f"{entry['file']}:{key}")


def test_shipped_fixture_is_small_and_verifies():
    size = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file())
    assert size < 5_000_000
    Fixture(SHIPPED).verify()


def test_first_step_k_tracks_g_for_memorized_and_not_for_normal():
    """Done-when of the spine: k within 5 % of g for g ∈ {1, 2, 7.5}; clearly below g for normal prompts."""
    fixture = Fixture(SHIPPED)
    labels = memorization_labels(fixture)
    assert labels.n == {"memorized": 16, "normal": 16}
    kinds = np.array([p["kind"] == "memorized" for p in fixture.prompts])
    np.testing.assert_array_equal(labels.memorized, kinds)  # the latent score recovers the ground truth
    for g in (1.0, 2.0, 7.5):
        k = overestimation(fixture.group("ddim", g))[..., 0].mean(1)  # first step, mean over seeds
        assert np.all(np.abs(k[kinds] / g - 1) < 0.05), k[kinds] / g
        assert np.all(k[~kinds] / g < 0.85), k[~kinds] / g


def test_rerunning_mitigate_for_one_prompt_reproduces_the_shipped_arrays(tmp_path, capsys):
    """`memharness mitigate --model analytic` recorded fixtures/analytic/mitigation; one prompt again."""
    import shutil

    copy = tmp_path / "analytic"
    shutil.copytree(SHIPPED, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["mitigation"]["files"]["mem-03"]  # as if the run had stopped before this prompt
    (copy / "mitigation" / "mem-03.safetensors").unlink()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["mitigate", "--model", "analytic", "--fixtures", str(copy)]) == 0
    assert "31 already done" in capsys.readouterr().err
    want, got = Fixture(SHIPPED).mitigation_arrays("mem-03"), Fixture(copy).mitigation_arrays("mem-03")
    assert got.keys() == want.keys() and len(want) == 9  # 3 methods × switch_step, train_cos, latent_score
    for key in want:
        if key.endswith("switch_step"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        else:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert Fixture(copy).mitigation["settings"] == Fixture(SHIPPED).mitigation["settings"]
