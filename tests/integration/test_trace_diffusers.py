"""A saved diffusers pipeline, traced from the command line and checked; killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from memharness.claims import load_specs
from memharness.cli import main
from memharness.models.tiny import save_tiny_pipeline

N_PROMPTS = 6


@pytest.fixture(scope="module")
def model_and_prompts(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny")
    model = save_tiny_pipeline(root / "tiny-sd")
    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    lines = []
    for i in range(N_PROMPTS):
        # Smooth random images of another size than the model's, so resize and crop are exercised.
        small = rng.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
        Image.fromarray(small).resize((36, 24), Image.BILINEAR).save(root / "images" / f"p{i}.png")
        lines.append(json.dumps({"id": f"p{i}", "text": f"a painting number {i}", "image": f"images/p{i}.png"}))
    prompts = root / "prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n")
    return model, prompts


def _trace_args(model, prompts, out, *extra):
    return ["trace", "--model-path", str(model), "--prompts", str(prompts), "--out", str(out),
            "--steps", "4", "--seeds", "3", "--guidance", "1", "7.5", *extra]


def _arrays(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted((root / "ddim").glob("*.safetensors")):
        for key, value in load_file(path).items():
            out[f"{path.stem}/{key}"] = value
    return out


def test_trace_then_check_end_to_end(model_and_prompts, tmp_path, capsys):
    model, prompts = model_and_prompts
    out = tmp_path / "fx"
    assert main(_trace_args(model, prompts, out)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["id"] == "tiny-sd" and manifest["model"]["backend"] == "diffusers"
    assert manifest["model"]["scheduler"]["clip_sample"] is False
    assert len(manifest["runs"]["ddim"]["files"]) == N_PROMPTS
    assert manifest["scores"]["scorer"] == "latent-cosine"
    capsys.readouterr()
    rc = main(["check", "--fixtures", str(out), "--format", "json"])
    [report] = json.loads(capsys.readouterr().out)["models"]
    assert rc in (0, 1)  # a random network: whatever the verdicts, they are given
    assert report["model"] == "tiny-sd"
    assert len(report["claims"]) == len(load_specs()) and all(c["reason"] for c in report["claims"])


def test_decoded_images_are_written_for_scoring(model_and_prompts, tmp_path):
    from PIL import Image

    model, prompts = model_and_prompts
    images = tmp_path / "images"
    assert main(_trace_args(model, prompts, tmp_path / "fx", "--images", str(images))) == 0
    pngs = sorted(images.rglob("*.png"))
    assert len(pngs) == N_PROMPTS * 3 * 2  # prompts × seeds × guidance scales
    assert (images / "ddim" / "g7.5" / "p0" / "2.png").is_file()
    with Image.open(pngs[0]) as img:
        assert img.size == (16, 16) and img.mode == "RGB"


def test_seed_batches_do_not_change_the_record(model_and_prompts, tmp_path):
    model, prompts = model_and_prompts
    assert main(_trace_args(model, prompts, tmp_path / "all")) == 0
    assert main(_trace_args(model, prompts, tmp_path / "batched", "--batch-size", "2")) == 0
    whole, batched = _arrays(tmp_path / "all"), _arrays(tmp_path / "batched")
    assert whole.keys() == batched.keys()
    for key in whole:  # the UNet's batch size may change float32 rounding, nothing more
        np.testing.assert_allclose(batched[key], whole[key], rtol=1e-4, atol=1e-4, err_msg=key)


def test_killed_trace_resumes_to_the_same_fixture(model_and_prompts, tmp_path):
    model, prompts = model_and_prompts
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    command = [sys.executable, "-m", "memharness", *_trace_args(model, prompts, killed)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((killed / "ddim").glob("*.safetensors"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((killed / "ddim").glob("*.safetensors")))
    assert 2 <= done < N_PROMPTS, f"kill landed after {done} prompts"

    assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    assert main(_trace_args(model, prompts, reference)) == 0
    assert not list(killed.rglob("*.tmp"))
    got, want = _arrays(killed), _arrays(reference)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    runs = json.loads((killed / "manifest.json").read_text())["runs"]
    want_runs = json.loads((reference / "manifest.json").read_text())["runs"]
    resumed = runs["ddim"].pop("provenance")
    assert len(resumed.pop("resumed")) == 1  # the second session, which finished the run
    want_provenance = want_runs["ddim"].pop("provenance")
    assert resumed.keys() == want_provenance.keys() and resumed["weights_sha256"] == want_provenance["weights_sha256"]
    assert runs == want_runs


def test_sscd_scores_from_decoded_images_label_the_check(model_and_prompts, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="SSCD needs onnxruntime (pip install -e .[sscd])")
    from memharness.scoring.sscd import default_model_path

    try:
        default_model_path()
    except Exception as exc:  # noqa: BLE001 - any failure to find the model means: skip
        pytest.skip(f"SSCD model not installed: {exc}")
    model, prompts = model_and_prompts
    out, images = tmp_path / "fx", tmp_path / "images"
    assert main(_trace_args(model, prompts, out, "--images", str(images))) == 0
    assert main(["score", "--fixtures", str(out), "--images", str(images)]) == 0
    scores = json.loads((out / "manifest.json").read_text())["scores"]
    assert scores["scorer"].startswith("sscd_disc_mixup") and scores["threshold"] == 0.75
    assert set(scores["values"]["ddim"]) == {"g1", "g7.5"}
    capsys.readouterr()
    main(["check", "--fixtures", str(out), "--format", "json"])
    [report] = json.loads(capsys.readouterr().out)["models"]
    labelled = [c for c in report["claims"] if c["details"].get("labels")]
    assert labelled and all("sscd_disc_mixup" in c["details"]["labels"] for c in labelled)
