"""The model files people have (issue 16): a single-file checkpoint traces like its diffusers folder.

A tiny pipeline is saved both ways in the test (``memharness.models.single_file`` writes the original
CompVis/LDM layout that fine-tunes ship in); tracing either gives the same fixture. All offline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from memharness.cli import main
from memharness.models.single_file import save_single_file
from memharness.models.tiny import build_tiny_pipeline

CARD = """\
id: tiny-sd
title: tiny SD pipeline (test)
backend: diffusers
latent_shape: [4, 8, 8]
prediction_type: epsilon
scheduler: {{num_train_timesteps: 1000, beta_schedule: scaled_linear, beta_start: 0.00085, beta_end: 0.012,
             set_alpha_to_one: false, steps_offset: 1, prediction_type: epsilon}}
params: {{single_file_config: "{config}", paired_latent: mean}}
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The same tiny pipeline as a diffusers folder, a .safetensors file and a .ckpt; a card; prompts."""
    import torch
    from PIL import Image

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("single")
    pipe = build_tiny_pipeline()
    pipe.save_pretrained(root / "tiny-sd", safe_serialization=True)
    save_single_file(pipe, root / "tiny-sd.safetensors")
    save_single_file(pipe, root / "tiny-sd.ckpt")
    (root / "card.yaml").write_text(CARD.format(config=root / "tiny-sd"))
    rng = np.random.default_rng(0)
    lines = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)).save(root / f"p{i}.png")
        lines.append(json.dumps({"id": f"p{i}", "text": f"a photo number {i}", "image": f"p{i}.png"}))
    (root / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _trace(root: Path, model_path: Path, out: Path) -> None:
    assert main(["trace", "--model", str(root / "card.yaml"), "--model-path", str(model_path), "--prompts",
                 str(root / "prompts.jsonl"), "--out", str(out), "--steps", "3", "--seeds", "2", "--guidance", "1",
                 "7.5", "--threads", "1"]) == 0


def _without_provenance(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("harness_version")
    for run in manifest["runs"].values():
        run.pop("provenance")
    return manifest


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_single_file_traces_to_the_same_fixture_as_its_folder(weights, tmp_path, suffix):
    _trace(weights, weights / "tiny-sd", tmp_path / "folder")
    _trace(weights, weights / f"tiny-sd{suffix}", tmp_path / "file")
    assert _without_provenance(tmp_path / "file") == _without_provenance(tmp_path / "folder")  # sha256 of every file
    for path in sorted((tmp_path / "folder" / "ddim").glob("*.safetensors")):
        a, b = load_file(path), load_file(tmp_path / "file" / "ddim" / path.name)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    file_hash = json.loads((tmp_path / "file" / "manifest.json").read_text())["runs"]["ddim"]["provenance"]
    assert file_hash["weights_sha256"] == hashlib.sha256((weights / f"tiny-sd{suffix}").read_bytes()).hexdigest()
    folder_hash = json.loads((tmp_path / "folder" / "manifest.json").read_text())["runs"]["ddim"]["provenance"]
    assert len(folder_hash["weights_sha256"]) == 64 and folder_hash["weights_sha256"] != file_hash["weights_sha256"]


def test_single_file_without_a_config_says_what_it_needs(weights, tmp_path, capsys):
    rc = main(["trace", "--model-path", str(weights / "tiny-sd.safetensors"), "--prompts",
               str(weights / "prompts.jsonl"), "--out", str(tmp_path / "fx"), "--steps", "2", "--seeds", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot load the checkpoint" in err and "single_file_config" in err


def test_a_path_that_is_neither(weights, tmp_path, capsys):
    (tmp_path / "weights.txt").write_text("no weights")
    for path, words in ((tmp_path / "weights.txt", "neither a diffusers folder nor a checkpoint file"),
                        (tmp_path / "missing" / "model.safetensors", "does not exist")):
        rc = main(["trace", "--model-path", str(path), "--prompts", str(weights / "prompts.jsonl"), "--out",
                   str(tmp_path / "fx")])
        err = capsys.readouterr().err
        assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_a_damaged_safetensors_file_is_one_line(weights, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((weights / "tiny-sd.safetensors").read_bytes()[:1000])
    rc = main(["trace", "--model", str(weights / "card.yaml"), "--model-path", str(bad), "--prompts",
               str(weights / "prompts.jsonl"), "--out", str(tmp_path / "fx")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a readable safetensors file" in err and len(err.strip().splitlines()) == 1, err
