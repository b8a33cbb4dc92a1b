"""Tracing: model → sampler → recorder → store, one prompt at a time (resumable)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memharness.errors import FieldError, MemharnessError
from memharness.guidance import passes_per_step, uses_unconditional
from memharness.models.base import Denoiser, Prompt
from memharness.sampling import SAMPLERS, StepHook, sample
from memharness.trace.recorder import TrajectoryRecorder
from memharness.trace.schema import guidance_key
from memharness.trace.writer import FixtureWriter


@dataclass(frozen=True)
class TraceSettings:
    sampler: str = "ddim"
    num_inference_steps: int = 50
    guidance: tuple[float, ...] = (1.0, 7.5)
    seeds: tuple[int, ...] = tuple(range(8))
    full_latents: bool = False
    batch_size: int | None = None  # seeds per sampler call; None: all at once. Not part of the record.
    image_dir: Path | None = None  # decoded final images go here, for image scorers (models with a VAE)

    def validate(self) -> None:
        if self.sampler not in SAMPLERS:
            raise FieldError("sampler", f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if len(self.seeds) < 2:
            raise FieldError("seeds", "at least 2 seeds are needed (diversity claims compare seeds)")
        if not self.guidance or not all(math.isfinite(g) and g >= 0 for g in self.guidance):
            raise FieldError("guidance", "give one or more finite scales ≥ 0")
        if len(set(self.guidance)) != len(self.guidance):
            raise FieldError("guidance", "a scale is repeated")
        if self.num_inference_steps < 1:
            raise FieldError("steps", "must be ≥ 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise FieldError("batch_size", "must be ≥ 1")

    def unet_evaluations(self) -> int:
        """UNet evaluations per prompt (one per seed and step; two where ε_u is also needed)."""
        per_seed = sum(self.num_inference_steps * passes_per_step(g) for g in self.guidance)
        return per_seed * len(self.seeds)


# (prompts done, prompts total, prompt id, skipped)
ProgressFn = Callable[[int, int, str, bool], None]


def trace(
    denoiser: Denoiser,
    out: Path,
    settings: TraceSettings,
    *,
    prompts: Sequence[Prompt] | None = None,
    prompt_set: str = "default",
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    limit: int | None = None,
    provenance: dict | None = None,
) -> FixtureWriter:
    """Record ``settings`` for every prompt into the fixture at ``out``; finished prompts are skipped.

    ``limit``: only the first N prompts (a quick run; the fixture's prompt set is those N).
    ``provenance``: what made the run (``memharness.runtime.provenance``), kept in
    ``runs.<sampler>.provenance``; a resumed run keeps the first and lists later sessions under
    its ``resumed``."""
    settings.validate()
    prompts = _prompts_to_trace(denoiser, prompts, limit)
    timesteps = [int(t) for t in denoiser.schedule.timesteps(settings.num_inference_steps)]
    writer = FixtureWriter(
        out,
        model=denoiser.card.to_dict(),
        prompts=manifest_prompts(prompts, out),
        prompt_set=prompt_set,
    )
    run = writer.begin_run(settings.sampler, _run_settings(settings, timesteps), overwrite=overwrite)
    if provenance is not None:
        _record_provenance(run.run, provenance)
    for done, prompt in enumerate(prompts):
        if run.is_done(prompt.id):
            if settings.image_dir is not None and not _images_present(settings, prompt.id):
                _images_again(denoiser, prompt, settings)  # --images added to a finished run
            if progress:
                progress(done + 1, len(prompts), prompt.id, True)
            continue
        x, groups = _trace_prompt(denoiser, prompt, settings, num_steps=len(timesteps))
        run.write_prompt(prompt.id, x.detach().cpu().numpy(), groups)
        if progress:
            progress(done + 1, len(prompts), prompt.id, False)
    return writer


def _prompts_to_trace(denoiser: Denoiser, prompts: Sequence[Prompt] | None, limit: int | None) -> list[Prompt]:
    """The given prompts, else the model's own, cut to the first ``limit``; at least one."""
    prompts = list(prompts if prompts is not None else denoiser.prompts())
    if limit is not None:
        if limit < 1:
            raise FieldError("limit", f"must be ≥ 1, got {limit}")
        prompts = prompts[:limit]
    if not prompts:
        raise MemharnessError("no prompts to trace")
    return prompts


def _run_settings(settings: TraceSettings, timesteps: list[int]) -> dict:
    """What the fixture records of a run, and what a resumed run must match."""
    return {
        "sampler": settings.sampler,
        "num_inference_steps": settings.num_inference_steps,
        "timesteps": timesteps,
        "guidance": [float(g) for g in settings.guidance],
        "seeds": [int(s) for s in settings.seeds],
        "full_latents": settings.full_latents,
    }


def _trace_prompt(denoiser: Denoiser, prompt: Prompt, settings: TraceSettings, *,
                  num_steps: int) -> tuple[torch.Tensor, dict]:
    """The prompt's paired latent x and, per guidance scale g (Eq 8), its recorded trajectories;
    decoded images too when ``settings.image_dir`` is set."""
    x = denoiser.paired_latent(prompt)
    cond = denoiser.encode(prompt)
    groups = {}
    for g in settings.guidance:
        recorder = TrajectoryRecorder(
            x,
            num_steps=num_steps,
            with_uncond=uses_unconditional(g),
            full_latents=settings.full_latents,
        )
        x_0 = _final_latents(denoiser, cond, settings, g, hooks=[recorder])
        groups[float(g)] = recorder.finish(x_0)
        if settings.image_dir is not None:
            save_images(denoiser, x_0, _image_folder(settings, g, prompt.id), settings.seeds)
    return x, groups


def _final_latents(denoiser: Denoiser, cond: Any, settings: TraceSettings, g: float, *,
                   hooks: Sequence[StepHook] = ()) -> torch.Tensor:
    """x_0 of every seed at guidance g, sampled in seed batches of ``settings.batch_size`` (a batch
    composition the exactness condition names; the record does not depend on it otherwise)."""
    size = settings.batch_size or len(settings.seeds)
    finals = [sample(denoiser, cond, seeds=settings.seeds[start:start + size], guidance_scale=float(g),
                     sampler=settings.sampler, num_inference_steps=settings.num_inference_steps, hooks=hooks).x_0
              for start in range(0, len(settings.seeds), size)]
    return torch.cat(finals)


def manifest_prompts(prompts: Sequence[Prompt], out: Path) -> list[dict]:
    """The prompts as the fixture at ``out`` records them: training image paths relative to the fixture
    folder, so that a fixture moved with its images (or shared) still names them. A fixture recorded
    before this with absolute paths keeps them (its prompt-set hash says which form it holds)."""
    import os

    from memharness.trace.manifest import MANIFEST, prompt_set_hash, read_manifest

    absolute = [p.to_manifest() for p in prompts]
    relative = []
    base = os.path.abspath(out)
    for entry in absolute:
        image = entry.get("image")
        if isinstance(image, str) and os.path.isabs(image):
            entry = {**entry, "image": Path(os.path.relpath(image, base)).as_posix()}
        relative.append(entry)
    if (Path(out) / MANIFEST).is_file() and relative != absolute:
        recorded = read_manifest(Path(out))["prompt_set"]["sha256"]
        if recorded == prompt_set_hash(absolute):
            return absolute
    return relative


def _image_folder(settings: TraceSettings, g: float, prompt_id: str) -> Path:
    return settings.image_dir / settings.sampler / guidance_key(g) / prompt_id


def _images_present(settings: TraceSettings, prompt_id: str) -> bool:
    return all((_image_folder(settings, g, prompt_id) / f"{seed}.png").is_file()
               for g in settings.guidance for seed in settings.seeds)


def _images_again(denoiser: Denoiser, prompt: Prompt, settings: TraceSettings) -> None:
    """Decoded images of a prompt whose run is recorded but whose images are not: sample it again with
    the same seeds, steps and seed batches (deterministic), without recording, and decode."""
    cond = denoiser.encode(prompt)
    for g in settings.guidance:
        save_images(denoiser, _final_latents(denoiser, cond, settings, g), _image_folder(settings, g, prompt.id),
                    settings.seeds)


def _record_provenance(run: dict, record: dict) -> None:
    """The run's provenance: the first session's; a later session that adds prompts is listed under
    ``resumed`` (saved with the next prompt written, so a session that writes nothing leaves no trace)."""
    first = run.get("provenance")
    if first is None or not run.get("files"):
        run["provenance"] = dict(record)
    else:
        first.setdefault("resumed", []).append({k: v for k, v in record.items() if k != "resumed"})


def save_images(denoiser: Denoiser, x_0: torch.Tensor, folder: Path, seeds: Sequence[int]) -> None:
    """Decode final latents and write ``<folder>/<seed>.png`` (atomically) for image scorers."""
    import io

    from PIL import Image

    from memharness.trace.safety import atomic_write_bytes

    if not denoiser.can_decode:
        raise FieldError("images", f"model {denoiser.card.id} has no decoder; its scores use latents")
    for seed, image in zip(seeds, denoiser.decode(x_0), strict=True):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        atomic_write_bytes(folder / f"{seed}.png", buffer.getvalue())
