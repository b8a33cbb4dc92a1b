"""Mitigation runs recorded into fixtures (`memharness mitigate`), the mitigation claim, and `memharness generate`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from memharness.claims import Outcome, load_specs, run_claims
from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.mitigation import MitigationSettings, generate_mitigated, record_mitigation
from memharness.models import load_denoiser
from memharness.trace.store import Fixture
from tests.helpers import LeakyUnconditional, small_card, trace_small

SPEC = next(spec for spec in load_specs() if spec.id == "mitigation")
STEPS = 20  # with 10 the first step at g = 7.5 alone commits the small model to x: nothing could mitigate it


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _verdict(root: Path):
    return run_claims(Fixture(root), [SPEC])[0]


@pytest.fixture(scope="module")
def mitigated(tmp_path_factory):
    """The small analytic model traced with 20 steps, then `memharness mitigate` with its card file."""
    root = tmp_path_factory.mktemp("mitigate")
    card = small_card()
    card_file = root / "small.yaml"
    card_file.write_text(yaml.safe_dump(card.to_dict()))
    out = trace_small(load_denoiser(card), root / "fx", steps=STEPS)
    before = _hashes(out)
    assert main(["mitigate", "--model", str(card_file), "--fixtures", str(out)]) == 0
    return out, card_file, before


@pytest.fixture
def copy(mitigated, tmp_path):
    out, card_file, _ = mitigated
    shutil.copytree(out, tmp_path / "fx")
    return tmp_path / "fx", card_file


def test_mitigate_writes_a_verified_section(mitigated):
    out, _, before = mitigated
    manifest = json.loads((out / "manifest.json").read_text())
    section = manifest["mitigation"]
    ddim = manifest["runs"]["ddim"]["settings"]
    assert set(section["settings"]["methods"]) == {"delta", "jain-static", "jain-dynamic"}
    assert section["settings"]["methods"]["delta"]["gamma"] == 0.2
    assert section["settings"]["seeds"] == ddim["seeds"] and section["settings"]["guidance"] == 7.5
    assert section["settings"]["timesteps"] == ddim["timesteps"]
    assert len(section["files"]) == 12
    after = _hashes(out)
    assert {k: v for k, v in after.items() if not k.startswith("mitigation/")} == before  # traced files untouched
    fixture = Fixture(out)
    fixture.verify()
    arrays = fixture.mitigation_arrays("mem-00")
    assert arrays["delta/switch_step"].dtype == np.int32 and arrays["delta/switch_step"].shape == (4,)
    assert np.all(arrays["delta/switch_step"] >= 1)  # App H: flagged from state 1 on
    first = int(np.argmax(np.array(ddim["timesteps"]) <= 800))  # 20 steps: t = 951 … 801 unguided, 751 guided
    assert first == 4 and np.all(arrays["jain-static/switch_step"] == first)
    assert arrays["delta/latent_score"].shape == (3,)
    np.testing.assert_allclose(arrays["delta/latent_score"][0], arrays["delta/train_cos"].mean(), rtol=1e-6)


def test_mitigate_resumes_and_replaces_only_with_overwrite(copy, capsys):
    out, card_file = copy
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "mitigation").iterdir()}
    capsys.readouterr()
    assert main(["mitigate", "--model", str(card_file), "--fixtures", str(out)]) == 0
    assert "12 already done" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (out / "mitigation").iterdir()} == mtimes
    # An interrupted run: a prompt's entry is missing; the rerun records just it, identically.
    manifest = json.loads((out / "manifest.json").read_text())
    data = (out / "mitigation" / "cls-02.safetensors").read_bytes()
    del manifest["mitigation"]["files"]["cls-02"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["mitigate", "--model", str(card_file), "--fixtures", str(out)]) == 0
    assert "11 already done" in capsys.readouterr().err
    assert (out / "mitigation" / "cls-02.safetensors").read_bytes() == data
    # Other settings: refused without --overwrite, replaced with it.
    assert main(["mitigate", "--model", str(card_file), "--fixtures", str(out), "--gamma", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main(["mitigate", "--model", str(card_file), "--fixtures", str(out), "--gamma", "0.3",
                 "--methods", "delta", "--overwrite"]) == 0
    section = Fixture(out).mitigation
    assert section["settings"]["methods"] == {"delta": {"gamma": 0.3, "rho2": None, "first_state": 1}}
    Fixture(out).verify()


def test_mitigate_needs_the_model_that_traced_the_fixture(copy, capsys):
    out, _ = copy
    assert main(["mitigate", "--model", "analytic", "--fixtures", str(out)]) == 2
    assert "--model analytic" in capsys.readouterr().err


def test_retracing_the_ddim_run_drops_the_section(copy):
    from memharness.trace.tracer import TraceSettings, trace

    out, _ = copy
    trace(load_denoiser(small_card()), out, TraceSettings(num_inference_steps=5, guidance=(7.5,), seeds=(0, 1)),
          prompt_set="small", overwrite=True)
    assert Fixture(out).mitigation is None


def test_damaged_mitigation_file_fails_verify(copy):
    out, _ = copy
    path = out / "mitigation" / "mem-01.safetensors"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(MemharnessError, match="mem-01.safetensors: checksum mismatch"):
        Fixture(out).verify()


def test_claim_passes_on_the_analytic_model(mitigated):
    verdict = _verdict(mitigated[0])
    assert verdict.verdict is Outcome.PASS, verdict.reason
    assert verdict.n == {"memorized": 6, "normal": 6}
    assert verdict.measured > 0.5 and verdict.details["after_memorized"] < 0.5
    assert "latent cos(x_0, x)" in verdict.reason


def test_claim_fails_when_the_unconditional_also_produces_x(tmp_path):
    """ε_u = ε_c (LeakyUnconditional): switching guidance off changes nothing, the copies stay."""
    leaky = LeakyUnconditional(load_denoiser(small_card()))
    out = trace_small(leaky, tmp_path / "leaky", steps=STEPS)
    record_mitigation(leaky, out, MitigationSettings(methods=("delta",)))
    verdict = _verdict(out)
    assert verdict.n["memorized"] >= 5
    assert verdict.verdict is Outcome.FAIL, verdict.reason


def test_claim_skips_without_mitigation_runs(small_fixture_master):
    verdict = _verdict(small_fixture_master)
    assert verdict.verdict is Outcome.SKIP and "memharness mitigate" in verdict.reason


def test_claim_skips_image_scored_fixture_without_scored_mitigated_images(copy):
    out, _ = copy
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["scores"]["scorer"] = "sscd_disc_mixup (onnx)"
    (out / "manifest.json").write_text(json.dumps(manifest))
    verdict = _verdict(out)
    assert verdict.verdict is Outcome.SKIP and "--images" in verdict.reason


# --------------------------------------------------------------------------- generate
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from memharness.models.tiny import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "tiny-sd")


def test_generate_mitigate_on_a_tiny_pipeline(tiny, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "gen"
    assert main(["generate", "--model-path", str(tiny), "--prompt", "a photo of a cat", "--seeds", "2",
                 "--steps", "3", "--mitigate", "--out", str(out)]) == 0
    record = json.loads((out / "generate.json").read_text())
    assert record["mitigate"] is True and record["seeds"] == [0, 1] and record["output"] == "png"
    assert set(record["detection_step"]) == {"0", "1"}
    assert all(isinstance(v, int) and v >= -1 for v in record["detection_step"].values())
    for seed in (0, 1):
        with Image.open(out / f"{seed}.png") as image:
            assert image.size == (16, 16) and image.mode == "RGB"
    assert "detection step per seed" in capsys.readouterr().err


def test_generate_mitigated_wraps_a_pipeline_object():
    from memharness.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline()
    scheduler = pipe.scheduler
    gen = generate_mitigated(pipe, "a photo of a dog", seeds=(3, 7), num_inference_steps=4, mitigate=False)
    assert pipe.scheduler is scheduler
    assert gen.images.shape == (2, 16, 16, 3) and gen.images.dtype == np.uint8
    assert gen.detection_step.shape == (2,)
    # Detection alone leaves pipe(...)'s output as it is, bit for bit.
    theirs = pipe(prompt="a photo of a dog", num_images_per_prompt=2, guidance_scale=7.5, num_inference_steps=4,
                  generator=[torch.Generator().manual_seed(s) for s in (3, 7)], output_type="latent").images
    assert torch.equal(gen.latents, theirs)
    mitigated = generate_mitigated(pipe, "a photo of a dog", seeds=(3, 7), num_inference_steps=4)
    flagged = mitigated.detection_step >= 0
    assert np.all(mitigated.guidance_used[flagged, -1] == 0)


def test_generate_without_a_decoder_writes_latents(tmp_path):
    from safetensors.numpy import load_file

    out = tmp_path / "gen"
    assert main(["generate", "--model", "analytic", "--prompt-id", "mem-00", "--seeds", "3", "--steps", "20",
                 "--mitigate", "--out", str(out)]) == 0
    record = json.loads((out / "generate.json").read_text())
    assert record["files"] == ["latents.safetensors"] and "no decoder" in record["output"]
    arrays = load_file(out / "latents.safetensors")
    assert arrays["x_0"].shape == (3, 4, 8, 8) and arrays["seeds"].tolist() == [0, 1, 2]
    assert all(v >= 1 for v in record["detection_step"].values())


def test_generate_digits_writes_8x8_pngs(tmp_path):
    from PIL import Image

    out = tmp_path / "gen"
    assert main(["generate", "--model", "digits", "--prompt-id", "mem-00", "--seeds", "2", "--steps", "5",
                 "--out", str(out)]) == 0
    with Image.open(out / "1.png") as image:
        assert image.size == (8, 8) and image.mode == "L"


@pytest.mark.parametrize(("argv", "option"), [
    (["--model", "analytic", "--prompt", "not one of its prompts"], "--prompt"),
    (["--model", "analytic", "--prompt-id", "nope"], "--prompt-id"),
    (["--model", "analytic", "--prompt-id", "mem-00", "--dtype", "float16"], "--dtype"),
])
def test_generate_bad_input_is_a_one_line_error(tmp_path, capsys, argv, option):
    assert main(["generate", *argv, "--out", str(tmp_path / "gen")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"memharness: error: {option}") and len(err.splitlines()) == 1


class FakeSSCD:
    """A stand-in for SSCD: the embedding is the image's 4×4 grey thumbnail (no model download)."""

    name = "fake-sscd (test)"
    preprocess = {"size": 4, "resize": "box"}

    def embed(self, images):
        from PIL import Image

        out = np.stack([np.asarray(Image.fromarray(np.asarray(im)).convert("L").resize((4, 4)), np.float64).ravel()
                        + 1.0 for im in images])
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_mitigated_images_are_written_and_scored_like_the_runs(tiny, tmp_path):
    from PIL import Image

    from memharness.mitigation.scoring import score_mitigation_images
    from memharness.scoring.sscd import score_fixture

    (tmp_path / "photos").mkdir()
    lines = []
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(tmp_path / "photos" / f"p{i}.png")
        lines.append(json.dumps({"id": f"p{i}", "text": f"a painting number {i}", "image": f"photos/p{i}.png"}))
    (tmp_path / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    fx, images = tmp_path / "fx", tmp_path / "gen"
    assert main(["trace", "--model-path", str(tiny), "--prompts", str(tmp_path / "prompts.jsonl"), "--out", str(fx),
                 "--steps", "3", "--seeds", "2", "--guidance", "7.5", "--images", str(images)]) == 0
    assert main(["mitigate", "--model-path", str(tiny), "--fixtures", str(fx), "--images", str(images)]) == 0
    for method in ("delta", "jain-static", "jain-dynamic"):
        assert sorted(p.name for p in (images / "mitigation" / method / "p1").iterdir()) == ["0.png", "1.png"]
    score_fixture(fx, images, FakeSSCD())
    verdict = _verdict(fx)
    assert verdict.verdict is Outcome.SKIP and "memharness score --images" in verdict.reason
    scores = score_mitigation_images(fx, images, FakeSSCD())
    assert scores["scorer"] == FakeSSCD.name and set(scores["values"]) == {"delta", "jain-static", "jain-dynamic"}
    assert Fixture(fx).mitigation["scores"] == json.loads(json.dumps(scores))
    verdict = _verdict(fx)  # read now; a random network memorizes nothing
    assert verdict.verdict is Outcome.INCONCLUSIVE and "prompts, fewer than 5 in a group" in verdict.reason
