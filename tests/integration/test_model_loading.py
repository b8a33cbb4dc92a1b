"""Loading diffusers models (folders, cards, the hub with no network) and their paired training images.

Every bad input is a MemharnessError with one line; through the CLI, exit code 2 and one stderr line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import torch  # noqa: E402

from memharness.cli.runtime import error_text  # noqa: E402
from memharness.errors import FieldError, MemharnessError  # noqa: E402
from memharness.models import load_card, load_denoiser  # noqa: E402
from memharness.models.diffusers_sd import (  # noqa: E402
    DiffusersDenoiser,
    card_from_pipeline,
    load_training_image,
    resolve_dtype,
)
from memharness.models.tiny import save_tiny_pipeline  # noqa: E402
from memharness.schedule import NoiseSchedule  # noqa: E402
from tests.integration.test_bad_inputs import PREFIX, assert_one_line_error, run_cli  # noqa: E402

SD14_HUB_ID = "CompVis/stable-diffusion-v1-4"


# --------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A saved tiny epsilon pipeline: latents 4 × 8 × 8, images 16 × 16."""
    return save_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def tiny_v(tmp_path_factory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-v", prediction_type="v_prediction")


@pytest.fixture
def offline(monkeypatch):
    """No hub: the environment variable, and huggingface_hub's flag (read once, at its import)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _image(path: Path, size: tuple[int, int] = (20, 20), seed: int = 0) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _prompts(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def good_prompts(tmp_path) -> Path:
    folder = tmp_path / "set"
    _image(folder / "images" / "a.png")
    return _prompts(folder, [{"id": "a", "text": "a photo of a cat", "image": "images/a.png"}])


def assert_error_after_load(rc: int, err: str, *needles: str) -> str:
    """rc 2 and the error line, once a model has loaded: diffusers' and transformers' loading progress bars
    may precede it on stderr (see test_error_after_a_load_is_the_only_stderr_line)."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(PREFIX)]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for needle in needles:
        assert needle.lower() in errors[0].lower(), f"{needle!r} not in {errors[0]!r}"
    return errors[0][len(PREFIX):]


def _trace(*args: str, out: Path) -> list[str]:
    return ["trace", *args, "--out", str(out), "--steps", "2", "--seeds", "2", "--guidance", "1"]


# --------------------------------------------------------------------------- a folder with no card
def test_folder_alone_reads_its_card_off_the_model(tiny, offline):
    denoiser = load_denoiser(None, model_path=str(tiny))
    assert isinstance(denoiser, DiffusersDenoiser)
    card = denoiser.card
    assert card.id == "tiny"
    assert card.backend == "diffusers"
    assert card.latent_shape == (4, 8, 8)
    assert card.prediction_type == "epsilon"
    assert card.params.get("paired_latent") == "mean"
    assert denoiser.image_size == 16
    # the scheduler recorded is the model's own config, not defaults
    saved = json.loads((tiny / "scheduler" / "scheduler_config.json").read_text())
    for key, value in saved.items():
        if not key.startswith("_"):
            assert card.scheduler[key] == value, key
    assert card.scheduler["clip_sample"] is False
    assert card.scheduler["prediction_type"] == "epsilon"
    NoiseSchedule.from_config(card.scheduler)  # what `check` rebuilds from the fixture
    json.dumps(card.to_dict())  # plain JSON values, ready for the manifest
    assert denoiser.dtype == torch.float32 and denoiser.device.type == "cpu"


def test_folder_card_id_is_the_folder_name_even_with_a_trailing_slash(tiny, offline):
    assert load_denoiser(None, model_path=str(tiny) + "/").card.id == "tiny"


def test_v_prediction_folder_alone(tiny_v, offline):
    card = load_denoiser(None, model_path=str(tiny_v)).card
    assert card.id == "tiny-v"
    assert card.prediction_type == "v_prediction"
    assert card.scheduler["prediction_type"] == "v_prediction"


def test_no_card_and_no_folder():
    with pytest.raises(FieldError, match="^model_path: ") as info:
        load_denoiser(None)
    assert info.value.field == "model_path"  # the CLI says --model-path


# --------------------------------------------------------------------------- a card with a folder
def test_card_whose_latent_shape_differs_from_the_model(tiny, offline):
    with pytest.raises(MemharnessError) as info:
        load_denoiser(load_card("sd14"), model_path=str(tiny))
    message = str(info.value)
    assert "\n" not in message
    assert "sd14" in message and "latent" in message.lower()


def test_card_saying_epsilon_for_a_v_prediction_model(tiny_v):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_v, safety_checker=None, requires_safety_checker=False)
    card = dataclasses.replace(card_from_pipeline(pipe, model_id="x"), prediction_type="epsilon")
    with pytest.raises(MemharnessError) as info:
        DiffusersDenoiser(card, pipe)
    message = str(info.value)
    assert "\n" not in message
    assert "prediction_type" in message and "'epsilon'" in message and "'v_prediction'" in message
    assert "card x" in message


def test_sd14_card_on_a_v_prediction_folder(tiny_v, offline):
    with pytest.raises(MemharnessError) as info:
        load_denoiser(load_card("sd14"), model_path=str(tiny_v))
    message = str(info.value)
    assert "\n" not in message and "sd14" in message and "prediction_type" in message


def test_card_with_another_noise_schedule(tiny, offline):
    card = load_card("sd14")
    card = dataclasses.replace(card, scheduler={**card.scheduler, "beta_end": 0.02})
    with pytest.raises(MemharnessError) as info:
        load_denoiser(card, model_path=str(tiny))
    message = str(info.value)
    assert "\n" not in message and "beta_end" in message and "0.02" in message


def test_card_without_hub_id_and_no_folder():
    card = dataclasses.replace(load_card("sd14"), params={"paired_latent": "mean"})
    with pytest.raises(MemharnessError) as info:
        DiffusersDenoiser.load(card, device="cpu")
    assert "hub_id" in str(info.value) and error_text(info.value).startswith("--model-path: ")


# --------------------------------------------------------------------------- the hub, with no network
def _cached(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "model_index.json"), str)


def test_hub_id_with_no_network(offline):
    if _cached(SD14_HUB_ID):
        pytest.skip(f"{SD14_HUB_ID} is in the local hub cache")
    with pytest.raises(MemharnessError) as info:
        DiffusersDenoiser.load(load_card("sd14"), device="cpu")
    message = error_text(info.value)
    assert "\n" not in message, message
    assert "cannot load" in message
    assert SD14_HUB_ID in message
    assert message.startswith("--model-path: ")


def test_hub_id_with_no_network_through_the_cli(offline, good_prompts, tmp_path, capsys):
    if _cached(SD14_HUB_ID):
        pytest.skip(f"{SD14_HUB_ID} is in the local hub cache")
    out = tmp_path / "out"
    rc = run_cli(_trace("--model", "sd14", "--device", "cpu", "--prompts", str(good_prompts), out=out))
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, SD14_HUB_ID, "--model-path")
    assert not out.exists()


def test_hub_id_with_no_network_prints_only_the_error(offline, good_prompts, tmp_path, monkeypatch, capsys):
    import sys

    from diffusers.utils import logging as diffusers_logging

    if _cached(SD14_HUB_ID):
        pytest.skip(f"{SD14_HUB_ID} is in the local hub cache")
    # In a real process diffusers' log handler writes to stderr; here it would bypass capsys, so point it there.
    diffusers_logging._configure_library_root_logger()
    monkeypatch.setattr(diffusers_logging._default_handler, "stream", sys.stderr)
    out = tmp_path / "out"
    rc = run_cli(_trace("--model", "sd14", "--device", "cpu", "--prompts", str(good_prompts), out=out))
    _, err = capsys.readouterr()
    message = assert_one_line_error(rc, err, SD14_HUB_ID, "--model-path")
    assert "stacktrace" not in message


def test_hub_id_with_separate_vae_and_no_network(offline):
    if _cached(load_card("realisticvision").params["hub_id"]):
        pytest.skip("realisticvision is in the local hub cache")
    with pytest.raises(MemharnessError) as info:
        DiffusersDenoiser.load(load_card("realisticvision"), device="cpu")
    assert error_text(info.value).startswith("--model-path: ") and "\n" not in str(info.value)


# --------------------------------------------------------------------------- --model-path through the CLI
@pytest.mark.parametrize("model", [None, "sd14"], ids=["no-card", "sd14-card"])
@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_model_path_that_is_no_pipeline(tmp_path, good_prompts, offline, capsys, kind, model):
    path = tmp_path / "weights"
    if kind == "empty":
        path.mkdir()
    elif kind == "file":
        path.write_bytes(b"not a pipeline\n")
    out = tmp_path / "out"
    extra = ["--model", model] if model else []
    rc = run_cli(_trace(*extra, "--model-path", str(path), "--device", "cpu", "--prompts", str(good_prompts),
                        out=out))
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, str(path))
    assert not out.exists()


def test_model_path_with_the_analytic_model(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    rc = run_cli(_trace("--model", "analytic", "--model-path", str(tiny), out=out))
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "--model-path", "analytic")
    assert not out.exists()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_dtype_with_the_analytic_model(tmp_path, capsys, dtype):
    out = tmp_path / "out"
    rc = run_cli(_trace("--dtype", dtype, out=out))
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "--dtype")
    assert not out.exists()


# --------------------------------------------------------------------------- paired training images
def test_prompt_whose_image_is_missing(tiny, tmp_path, offline, capsys):
    folder = tmp_path / "set"
    prompts = _prompts(folder, [{"id": "a", "text": "a cat", "image": "images/nope.png"}])
    rc = run_cli(_trace("--model-path", str(tiny), "--device", "cpu", "--prompts", str(prompts),
                        out=tmp_path / "out"))
    _, err = capsys.readouterr()
    assert_error_after_load(rc, err, str((folder / "images" / "nope.png").resolve()), "not found")


@pytest.mark.parametrize("content", [b"this is text, not a PNG\n", b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20],
                         ids=["text", "empty", "truncated-png"])
def test_prompt_whose_image_is_not_an_image(tiny, tmp_path, offline, capsys, content):
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    bad = folder / "images" / "a.png"
    bad.write_bytes(content)
    prompts = _prompts(folder, [{"id": "a", "text": "a cat", "image": "images/a.png"}])
    rc = run_cli(_trace("--model-path", str(tiny), "--device", "cpu", "--prompts", str(prompts),
                        out=tmp_path / "out"))
    _, err = capsys.readouterr()
    assert_error_after_load(rc, err, str(bad.resolve()), "image")


def test_prompt_without_an_image(tiny, tmp_path, offline, capsys):
    prompts = _prompts(tmp_path / "set", [{"id": "lonely-01", "text": "a cat"}])
    rc = run_cli(_trace("--model-path", str(tiny), "--device", "cpu", "--prompts", str(prompts),
                        out=tmp_path / "out"))
    _, err = capsys.readouterr()
    assert_error_after_load(rc, err, "'lonely-01'", "--prompts")


def test_error_after_a_load_is_the_only_stderr_line(tiny, tmp_path, offline, capsys):
    prompts = _prompts(tmp_path / "set", [{"id": "lonely-01", "text": "a cat"}])
    rc = run_cli(_trace("--model-path", str(tiny), "--device", "cpu", "--prompts", str(prompts),
                        out=tmp_path / "out"))
    _, err = capsys.readouterr()
    assert_one_line_error(rc, err, "'lonely-01'")


def test_training_image_is_resized_and_centre_cropped(tmp_path):
    from PIL import Image

    # 30 × 20: left third red, middle green, right third blue. Shorter side 20 → 16: 24 × 16, crop x 4..20.
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:, :10, 0] = 255
    pixels[:, 10:20, 1] = 255
    pixels[:, 20:, 2] = 255
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)

    out = load_training_image(path, 16)
    assert out.dtype == np.uint8 and out.shape == (1, 16, 16, 3)
    row = out[0, 8].astype(int)
    colour = row.argmax(axis=1)  # 0 red, 1 green, 2 blue per column
    # The middle third (resized columns 8..16) is the crop's columns 4..12; a quarter of each outer third remains.
    assert (colour[5:11] == 1).all(), colour
    assert colour[0] == 0 and colour[-1] == 2, colour
    assert (colour == 0).sum() == (colour == 2).sum(), colour  # centred: as much red as blue
    assert np.array_equal(out[0, 0], out[0, -1])  # rows are alike: no vertical structure


def test_training_image_exact_centre_crop(tmp_path):
    from PIL import Image

    # 48 × 16 at size 16: no resize, the crop is exactly the middle third.
    pixels = np.random.default_rng(1).integers(0, 256, (16, 48, 3), dtype=np.uint8)
    wide, tall = tmp_path / "wide.png", tmp_path / "tall.png"
    Image.fromarray(pixels).save(wide)
    Image.fromarray(pixels.transpose(1, 0, 2).copy()).save(tall)
    np.testing.assert_array_equal(load_training_image(wide, 16)[0], pixels[:, 16:32])
    np.testing.assert_array_equal(load_training_image(tall, 16)[0], pixels.transpose(1, 0, 2)[16:32])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_training_image_of_any_mode_becomes_rgb(tmp_path, mode):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.new("RGB", (20, 20), (10, 200, 30)).convert(mode).save(path)
    out = load_training_image(path, 8)
    assert out.shape == (1, 8, 8, 3) and out.dtype == np.uint8


def test_training_image_errors(tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(MemharnessError) as info:
        load_training_image(missing, 16)
    assert str(missing) in str(info.value) and "not found" in str(info.value)
    text = tmp_path / "text.png"
    text.write_text("hello\n")
    with pytest.raises(MemharnessError) as info:
        load_training_image(text, 16)
    assert str(text) in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- dtypes
def test_resolve_dtype():
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) is torch.float32
    assert resolve_dtype(None, torch.device("cuda")) is torch.float16  # the paper's precision on GPUs
    assert resolve_dtype("float16", cpu) is torch.float16
    assert resolve_dtype("bfloat16", cpu) is torch.bfloat16
    assert resolve_dtype("float32", torch.device("cuda")) is torch.float32


@pytest.mark.parametrize("name", ["fp16", "int8", "float64", "", "Float16"])
def test_resolve_dtype_rejects_other_names(name):
    with pytest.raises(MemharnessError) as info:
        resolve_dtype(name, torch.device("cpu"))
    message = str(info.value)
    assert message.startswith("dtype: ") and "float16" in message and "\n" not in message  # the CLI: --dtype
