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


def test_provenance_paths_and_the_check_line(weights, tmp_path, capsys):
    """Provenance (issue 16, item 4): image paths relative to the fixture; `check` prints how it was recorded."""
    from memharness.trace import prompt_set_hash

    out = tmp_path / "fx"
    _trace(weights, weights / "tiny-sd.safetensors", out)
    manifest = json.loads((out / "manifest.json").read_text())
    for prompt in manifest["prompts"]:
        assert not Path(prompt["image"]).is_absolute()
        assert (out / prompt["image"]).resolve() == (weights / f"{prompt['id']}.png").resolve()
    record = manifest["runs"]["ddim"]["provenance"]
    assert record["dtype"] == "float32" and record["device"] == "cpu" and record["batch_size"] is None
    assert {"memharness", "torch", "diffusers", "transformers"} <= set(record["versions"])
    capsys.readouterr()
    assert main(["check", "--fixtures", str(out)]) in (0, 1)
    lines = capsys.readouterr().out.splitlines()
    recorded = [line for line in lines if line.startswith("recorded: ddim ")]
    assert len(recorded) == 1 and "float32 on cpu" in recorded[0] and "all seeds in one UNet batch" in recorded[0]
    assert f"weights sha256 {record['weights_sha256'][:12]}" in recorded[0]
    borders = [i for i, line in enumerate(lines) if line.startswith("+-")]
    assert lines.index(recorded[0]) == borders[1] + 1  # the one line right under the table

    # A fixture written before (absolute image paths) resumes as it is.
    for prompt in manifest["prompts"]:
        prompt["image"] = str((out / prompt["image"]).resolve())
    manifest["prompt_set"]["sha256"] = prompt_set_hash(manifest["prompts"])
    del manifest["runs"]["ddim"]["provenance"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    _trace(weights, weights / "tiny-sd.safetensors", out)
    assert json.loads((out / "manifest.json").read_text())["prompts"] == manifest["prompts"]


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_batches_of_one_reproduce_per_seed_pipe_calls(sampler):
    """The exactness condition of docs/models.md: the same batch composition. Seeds sampled one per batch (what
    `trace --batch-size 1` does) equal one `pipe(...)` call per seed, bit for bit on the CPU."""
    import torch

    from memharness.models.base import Prompt
    from memharness.models.diffusers_sd import DiffusersDenoiser, card_from_pipeline
    from memharness.sampling import sample

    pipe = build_tiny_pipeline(scheduler=sampler)
    denoiser = DiffusersDenoiser(card_from_pipeline(pipe, model_id="tiny"), pipe, sampler=sampler)
    prompt = Prompt(id="p0", text="a photo of an astronaut riding a horse")
    cond = denoiser.encode(prompt)
    for seed in (3, 7):
        ours = sample(denoiser, cond, seeds=[seed], guidance_scale=7.5, sampler=sampler, num_inference_steps=5)
        theirs = pipe(prompt=prompt.text, guidance_scale=7.5, num_inference_steps=5, output_type="latent",
                      generator=torch.Generator().manual_seed(seed)).images
        assert torch.equal(ours.x_0, theirs), (ours.x_0 - theirs).abs().max()


def test_images_added_to_a_finished_run_equal_those_of_a_traced_one(weights, tmp_path):
    """Issue 16, item 8: `trace --images DIR` on a finished run samples again (same seeds and batches)
    only to decode; the images equal those written while tracing, and the fixture is untouched."""
    common = ["--model", str(weights / "card.yaml"), "--model-path", str(weights / "tiny-sd"), "--prompts",
              str(weights / "prompts.jsonl"), "--steps", "3", "--seeds", "2", "--guidance", "1", "7.5",
              "--threads", "1"]
    assert main(["trace", *common, "--out", str(tmp_path / "with"), "--images", str(tmp_path / "img-with")]) == 0
    assert main(["trace", *common, "--out", str(tmp_path / "later")]) == 0
    before = {p: p.read_bytes() for p in sorted((tmp_path / "later").rglob("*.safetensors"))}
    assert main(["trace", *common, "--out", str(tmp_path / "later"), "--images", str(tmp_path / "img-later")]) == 0
    assert {p: p.read_bytes() for p in sorted((tmp_path / "later").rglob("*.safetensors"))} == before
    want = sorted(p.relative_to(tmp_path / "img-with") for p in (tmp_path / "img-with").rglob("*.png"))
    got = sorted(p.relative_to(tmp_path / "img-later") for p in (tmp_path / "img-later").rglob("*.png"))
    assert want == got and len(want) == 2 * 2 * 2  # prompts × guidance scales × seeds
    for rel in want:
        assert (tmp_path / "img-with" / rel).read_bytes() == (tmp_path / "img-later" / rel).read_bytes(), rel
