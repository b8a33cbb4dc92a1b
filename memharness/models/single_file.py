"""A diffusers StableDiffusionPipeline as one checkpoint file in the original (CompVis/LDM) layout.

Fine-tunes such as Realistic Vision circulate as one ``.safetensors`` or ``.ckpt`` in this layout
(``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``), which
diffusers' ``from_single_file`` reads back with a pipeline config. ``save_single_file`` writes
the inverse of diffusers' conversion (``diffusers.loaders.single_file_utils``), so that tests can
trace a tiny pipeline from a single file offline and compare it with its diffusers folder. It
covers SD 1.x-style UNets and VAEs (any number of blocks and ``layers_per_block``) and CLIP text
encoders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

_UNET_LAYERS = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
_UNET_RESNET = (("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("norm2.", "out_layers.0."),
                ("conv2.", "out_layers.3."), ("time_emb_proj.", "emb_layers.1."),
                ("conv_shortcut.", "skip_connection."))
_VAE_ATTENTION = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                  ("to_out.0.", "proj_out."))


def _rename(rest: str, pairs) -> str:
    for new, old in pairs:
        if rest.startswith(new):
            return old + rest[len(new):]
    return rest


def unet_to_original(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """diffusers UNet2DConditionModel keys → ``model.diffusion_model.*`` keys."""
    per = int(config.layers_per_block)
    up_has_attention = ["CrossAttn" in name for name in config.up_block_types]
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        new = None
        for prefix, original in _UNET_LAYERS.items():
            if key.startswith(prefix):
                new = original + key[len(prefix):]
        if new is None and parts[0] == "down_blocks":
            block, kind = int(parts[1]), parts[2]
            if kind == "downsamplers":  # down_blocks.b.downsamplers.0.conv.* → input_blocks.n.0.op.*
                new = f"input_blocks.{1 + block * (per + 1) + per}.0.op." + ".".join(parts[5:])
            else:
                index = 1 + block * (per + 1) + int(parts[3])
                rest = ".".join(parts[4:])
                new = (f"input_blocks.{index}.0." + _rename(rest, _UNET_RESNET) if kind == "resnets"
                       else f"input_blocks.{index}.1." + rest)
        elif new is None and parts[0] == "mid_block":
            rest = ".".join(parts[3:])
            new = (f"middle_block.{2 * int(parts[2])}." + _rename(rest, _UNET_RESNET) if parts[1] == "resnets"
                   else "middle_block.1." + rest)
        elif new is None and parts[0] == "up_blocks":
            block, kind = int(parts[1]), parts[2]
            if kind == "upsamplers":  # after the resnet (.0) and the attention (.1) where there is one
                slot = 2 if up_has_attention[block] else 1
                new = f"output_blocks.{block * (per + 1) + per}.{slot}." + ".".join(parts[4:])
            else:
                index = block * (per + 1) + int(parts[3])
                rest = ".".join(parts[4:])
                new = (f"output_blocks.{index}.0." + _rename(rest, _UNET_RESNET) if kind == "resnets"
                       else f"output_blocks.{index}.1." + rest)
        if new is None:
            raise ValueError(f"unet key {key!r} has no original-layout name here")
        out["model.diffusion_model." + new] = value
    return out


def _vae_resnet(rest: list[str]) -> str:
    return ".".join(rest).replace("conv_shortcut", "nin_shortcut")


def vae_to_original(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL keys → ``first_stage_model.*`` keys (attention projections as 1×1 convs)."""
    n_up = len(config.up_block_types)
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        side = parts[0]
        new = None
        if side in ("quant_conv", "post_quant_conv"):
            new = key
        elif parts[1] in ("conv_in", "conv_out"):
            new = key
        elif parts[1] == "conv_norm_out":
            new = f"{side}.norm_out." + ".".join(parts[2:])
        elif parts[1] == "down_blocks":
            i = parts[2]
            if parts[3] == "downsamplers":
                new = f"{side}.down.{i}.downsample." + ".".join(parts[5:])
            else:
                new = f"{side}.down.{i}.block.{parts[4]}." + _vae_resnet(parts[5:])
        elif parts[1] == "up_blocks":
            i = n_up - 1 - int(parts[2])
            if parts[3] == "upsamplers":
                new = f"{side}.up.{i}.upsample." + ".".join(parts[5:])
            else:
                new = f"{side}.up.{i}.block.{parts[4]}." + _vae_resnet(parts[5:])
        elif parts[1] == "mid_block" and parts[2] == "resnets":
            new = f"{side}.mid.block_{int(parts[3]) + 1}." + _vae_resnet(parts[4:])
        elif parts[1] == "mid_block" and parts[2] == "attentions":
            new = f"{side}.mid.attn_1." + _rename(".".join(parts[4:]), _VAE_ATTENTION)
            if value.ndim == 2:
                value = value[:, :, None, None]
        if new is None:
            raise ValueError(f"vae key {key!r} has no original-layout name here")
        out["first_stage_model." + new] = value
    return out


def pipeline_to_original(pipe: Any) -> dict[str, torch.Tensor]:
    """A StableDiffusionPipeline's UNet, VAE and CLIP text encoder as one original-layout state dict."""
    state = unet_to_original(pipe.unet.state_dict(), pipe.unet.config)
    state.update(vae_to_original(pipe.vae.state_dict(), pipe.vae.config))
    # As in SD's checkpoints: transformer.text_model.* (transformers ≥ 5 names the encoder's keys without
    # the text_model. prefix; from_single_file looks for it).
    state.update({"cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k): v
                  for k, v in pipe.text_encoder.state_dict().items()})
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


def save_single_file(pipe: Any, path: str | Path) -> Path:
    """Write ``pipe`` as one checkpoint: ``.safetensors``, or a ``.ckpt`` torch pickle of tensors only
    (``{"state_dict": ...}``, as the CompVis checkpoints)."""
    path = Path(path)
    state = pipeline_to_original(pipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)
    return path
