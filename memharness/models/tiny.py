"""Tiny random-weight Stable Diffusion pipelines, built fully offline.

``build_tiny_pipeline`` gives a real ``diffusers.StableDiffusionPipeline`` (UNet, VAE, CLIP text
encoder and tokenizer) with about 1.2 million random parameters, the size of diffusers'
own fast tests. Tests, benchmarks and users exercise the real diffusers code path on a CPU
with it, in seconds, without the hub: nothing is downloaded, the tokenizer is built in memory.

``save_tiny_pipeline`` writes one to a folder that ``StableDiffusionPipeline.from_pretrained``
(and ``memharness --model-path``) loads back offline, giving bit-identical outputs.

The same seed gives the same weights; the caller's global torch RNG is left untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memharness.errors import MemharnessError

PREDICTION_TYPES = ("epsilon", "v_prediction")
SCHEDULERS = ("ddim", "ddpm")

MODEL_MAX_LENGTH = 77
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"

# A handful of byte-level BPE merges (CLIP style: "</w>" ends a word). Each merge's result
# joins the vocabulary; everything else tokenizes byte by byte.
_MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("i", "n"), ("o", "n</w>"),
    ("e", "r</w>"), ("o", "f</w>"), ("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"),
    ("p", "h"), ("o", "t"), ("ph", "ot"), ("phot", "o</w>"), ("i", "s</w>"), ("a", "r"),
)

# Model sizes, as diffusers' StableDiffusionPipeline fast tests; the VAE is half as wide as
# the UNet so that a saved pipeline stays under 5 MB (about 1.2 M float32 parameters).
_UNET_CHANNELS = (32, 64)
_VAE_CHANNELS = (16, 32)
_NORM_GROUPS = 8
_TEXT_HIDDEN = 32
_LATENT_CHANNELS = 4


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 bytes to printable unicode characters."""
    # Printable bytes map to themselves, the rest to chr(256 + n).
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def tiny_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The tokenizer's vocabulary and merges: bytes, bytes + "</w>", merges, then BOS and EOS."""
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in _MERGES]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise AssertionError("tiny vocabulary has duplicate tokens")
    return vocab, list(_MERGES)


def build_tiny_tokenizer() -> Any:
    """A CLIPTokenizer built in memory (no files): byte-level, so any text tokenizes."""
    from transformers import CLIPTokenizer

    vocab, merges = tiny_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                         unk_token=EOS_TOKEN, pad_token=EOS_TOKEN, model_max_length=MODEL_MAX_LENGTH)


def _scheduler(name: str, prediction_type: str) -> Any:
    """SD's schedule with every value stated (diffusers' defaults differ: DDIM clips x̂0)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    common = dict(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, thresholding=False, steps_offset=1, prediction_type=prediction_type,
        timestep_spacing="leading", rescale_betas_zero_snr=False,
    )
    if name == "ddim":
        return DDIMScheduler(set_alpha_to_one=False, **common)
    return DDPMScheduler(variance_type="fixed_small", **common)


def build_tiny_pipeline(*, prediction_type: str = "epsilon", seed: int = 0, sample_size: int = 8,
                        scheduler: str = "ddim", dtype: torch.dtype = torch.float32) -> Any:
    """A StableDiffusionPipeline with random weights from ``seed``: latents of
    4 × sample_size × sample_size, images of (2·sample_size)² pixels (the VAE downsamples by 2)."""
    if prediction_type not in PREDICTION_TYPES:
        raise MemharnessError(f"tiny pipeline: unknown prediction_type {prediction_type!r}; "
                              f"choose one of {', '.join(PREDICTION_TYPES)}")
    if scheduler not in SCHEDULERS:
        raise MemharnessError(f"tiny pipeline: unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 2 or sample_size % 2:
        raise MemharnessError(f"tiny pipeline: sample_size must be an even integer >= 2, not {sample_size!r}")

    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tiny_tokenizer()
    # Seed each model on its own (as diffusers' tests), in a forked RNG: the caller's is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=sample_size, in_channels=_LATENT_CHANNELS, out_channels=_LATENT_CHANNELS,
            block_out_channels=_UNET_CHANNELS, layers_per_block=1, norm_num_groups=_NORM_GROUPS,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=_TEXT_HIDDEN, attention_head_dim=8,
        )
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=_LATENT_CHANNELS,
            block_out_channels=_VAE_CHANNELS, layers_per_block=1, norm_num_groups=_NORM_GROUPS,
            down_block_types=("DownEncoderBlock2D",) * len(_VAE_CHANNELS),
            up_block_types=("UpDecoderBlock2D",) * len(_VAE_CHANNELS),
            sample_size=sample_size * 2 ** (len(_VAE_CHANNELS) - 1),
        )
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=_TEXT_HIDDEN, intermediate_size=37,
            num_hidden_layers=5, num_attention_heads=4, max_position_embeddings=MODEL_MAX_LENGTH,
            layer_norm_eps=1e-5, hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ))

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=_scheduler(scheduler, prediction_type),
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False,
    )
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    for model in (pipe.unet, pipe.vae, pipe.text_encoder):
        model.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(directory: str | Path, **kwargs: Any) -> Path:
    """Build a tiny pipeline (``build_tiny_pipeline``'s keywords) and save it to ``directory``
    as safetensors; returns the folder."""
    directory = Path(directory)
    pipe = build_tiny_pipeline(**kwargs)
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


__all__ = ["PREDICTION_TYPES", "SCHEDULERS", "build_tiny_pipeline", "build_tiny_tokenizer", "save_tiny_pipeline",
           "tiny_vocab"]
