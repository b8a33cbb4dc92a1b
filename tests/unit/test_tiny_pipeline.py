"""The tiny random-weight Stable Diffusion pipeline: deterministic, offline, runs the real diffusers path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memharness.errors import MemharnessError
from memharness.models.tiny import build_tiny_pipeline, build_tiny_tokenizer, save_tiny_pipeline

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

SAMPLE = 8
PROMPT = "a photo of a cat"


def _call(pipe, output_type: str, seed: int = 0):
    return pipe(prompt=PROMPT, num_inference_steps=3, guidance_scale=7.5,
                generator=torch.Generator().manual_seed(seed), output_type=output_type).images


def _state(pipe) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value for name in ("unet", "vae", "text_encoder")
            for key, value in getattr(pipe, name).state_dict().items()}


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(sample_size=SAMPLE)


def test_same_seed_same_weights_other_seed_differs(pipe):
    again, other = _state(build_tiny_pipeline(sample_size=SAMPLE)), _state(build_tiny_pipeline(seed=1))
    ours = _state(pipe)
    assert ours.keys() == again.keys() == other.keys()
    assert all(torch.equal(ours[k], again[k]) for k in ours)
    assert not all(torch.equal(ours[k], other[k]) for k in ours)


def test_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_pipeline()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("scheduler", ["ddim", "ddpm"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_runs_on_cpu(prediction_type, scheduler):
    pipe = build_tiny_pipeline(prediction_type=prediction_type, scheduler=scheduler, sample_size=SAMPLE)
    config = pipe.scheduler.config
    assert config.prediction_type == prediction_type and config.clip_sample is False
    assert type(pipe.scheduler).__name__ == {"ddim": "DDIMScheduler", "ddpm": "DDPMScheduler"}[scheduler]
    image = _call(pipe, "np")
    side = SAMPLE * pipe.vae_scale_factor
    assert image.shape == (1, side, side, 3) and np.isfinite(image).all()
    latents = _call(pipe, "latent")
    assert latents.shape == (1, 4, SAMPLE, SAMPLE) and torch.isfinite(latents).all()


def test_tokenizer_round_trips():
    tok = build_tiny_tokenizer()
    assert tok.model_max_length == 77 and tok.pad_token == "<|endoftext|>"
    for prompt in ["a photo of a cat", "the dog and the cat", "", "mountains at night"]:
        ids = tok(prompt).input_ids
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == prompt
    # Capitals, digits, punctuation: lower-cased, and the decoder spaces out the pre-tokens (as CLIP's).
    odd = "Hello, World! (x+y)=z; 100% \"quoted\" ~tilde_ and {braces}?"
    decoded = tok.decode(tok(odd).input_ids, skip_special_tokens=True)
    assert decoded.replace(" ", "") == odd.lower().replace(" ", "")
    # Long prompts are truncated to 77 tokens; padding fills with EOS.
    long = " ".join(["photograph of a zebra"] * 40)
    ids = tok(long, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[-1] == tok.eos_token_id
    padded = tok("", padding="max_length", max_length=77).input_ids
    assert padded == [tok.bos_token_id] + [tok.eos_token_id] * 76
    assert max(tok(long).input_ids) < len(tok)


def test_vocab_fits_text_encoder(pipe):
    assert len(pipe.tokenizer) <= pipe.text_encoder.config.vocab_size
    assert pipe.text_encoder.config.max_position_embeddings == 77


def test_save_and_load_offline(pipe, tmp_path, monkeypatch):
    from diffusers import StableDiffusionPipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = save_tiny_pipeline(tmp_path / "tiny", sample_size=SAMPLE)
    assert folder == tmp_path / "tiny" and (folder / "model_index.json").is_file()
    assert list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 5_000_000
    loaded = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    loaded.set_progress_bar_config(disable=True)
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert type(loaded.scheduler) is type(pipe.scheduler)
    assert public(loaded.scheduler.config) == public(pipe.scheduler.config)
    assert loaded.tokenizer(PROMPT).input_ids == pipe.tokenizer(PROMPT).input_ids
    assert torch.equal(_call(loaded, "latent"), _call(pipe, "latent"))


@pytest.mark.parametrize("kwargs", [{"prediction_type": "sample"}, {"scheduler": "pndm"}, {"sample_size": 7}])
def test_bad_arguments(kwargs):
    with pytest.raises(MemharnessError) as info:
        build_tiny_pipeline(**kwargs)
    assert "\n" not in str(info.value)
