"""Mitigation runs recorded into a fixture: the "mitigation" section (App H, Fig 25).

For the fixture's prompts and the seeds and steps of its DDIM run at g (7.5), each method
samples again with its guidance policy. Per prompt one file ``mitigation/<prompt>.safetensors``
holds, per method m:

    m/switch_step   (N,) int32    detection step (delta) or transition step (jain-*), −1 never
    m/train_cos     (N,) float32  cos(x_0, x) per seed: the latent analogue of SSCD_train
    m/latent_score  (3,) float32  Eq 9 on latents (train, generate, score), memharness.scoring.latent

and the manifest's "mitigation" entry records the settings and each file's sha256. Writes are
atomic and the manifest is rewritten after each prompt: an interrupted run resumes prompt by
prompt; a section recorded with other settings is replaced only with ``overwrite``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import save as st_save

from memharness.errors import FieldError, MemharnessError
from memharness.mitigation.constants import (
    DEFAULT_GAMMA,
    DEFAULT_METHODS,
    DEFAULT_TRANSITION_T,
    MITIGATION_METHODS,
)
from memharness.mitigation.policies import Policy, make_policy
from memharness.models.base import Denoiser, Prompt
from memharness.sampling import sample
from memharness.scoring.latent import LATENT_SCORER, latent_scores
from memharness.trace.recorder import cosine_matrix
from memharness.trace.safety import atomic_write_bytes
from memharness.trace.store import Fixture
from memharness.trace.writer import FixtureWriter

SECTION = "mitigation"
SAMPLER = "ddim"

# (prompts done, prompts total, prompt id, skipped)
ProgressFn = Callable[[int, int, str, bool], None]


@dataclass(frozen=True)
class MitigationSettings:
    methods: tuple[str, ...] = DEFAULT_METHODS
    gamma: float = DEFAULT_GAMMA  # delta's γ (App H)
    transition_t: int = DEFAULT_TRANSITION_T  # jain-static's transition timestep (our choice)
    guidance: float = 7.5  # the nominal g; the fixture's DDIM run must have it
    batch_size: int | None = None  # seeds per sampler call; not part of the record
    image_dir: Path | None = None  # decoded final images, <dir>/mitigation/<method>/<prompt>/<seed>.png

    def policies(self) -> dict[str, Policy]:
        if not self.methods:
            raise FieldError("methods", "name at least one method")
        options = {"delta": {"gamma": self.gamma}, "jain-static": {"transition_t": self.transition_t},
                   "jain-static-neg": {"transition_t": self.transition_t}}
        unknown = [m for m in self.methods if m not in MITIGATION_METHODS]
        if unknown:
            raise FieldError("methods", f"unknown method {unknown[0]!r}; "
                                        f"choose from {', '.join(MITIGATION_METHODS)}")
        if not (math.isfinite(self.gamma) and self.gamma >= 0):
            raise FieldError("gamma", f"App H's margin is a finite number ≥ 0, got {self.gamma!r}")
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise FieldError("guidance", f"a finite scale ≥ 0 is needed, got {self.guidance!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise FieldError("batch_size", "must be ≥ 1")
        return {m: make_policy(m, **options.get(m, {})) for m in dict.fromkeys(self.methods)}


def mitigate_prompt(
    denoiser: Denoiser,
    prompt: Prompt,
    x: np.ndarray | torch.Tensor,
    *,
    seeds: Sequence[int],
    num_inference_steps: int,
    policies: dict[str, Policy],
    guidance: float = 7.5,
    batch_size: int | None = None,
    image_dir: Path | None = None,
) -> dict[str, np.ndarray]:
    """One prompt sampled (DDIM) with each policy: the arrays of its mitigation file."""
    cond = denoiser.encode(prompt)
    x_flat = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1)
    seeds = [int(s) for s in seeds]
    size = batch_size or len(seeds)
    arrays: dict[str, np.ndarray] = {}
    for name, policy in policies.items():
        finals, switches = [], []
        for start in range(0, len(seeds), size):
            result = sample(denoiser, cond, seeds=seeds[start:start + size], guidance_scale=float(guidance),
                            sampler=SAMPLER, num_inference_steps=num_inference_steps, guidance_policy=policy)
            finals.append(result.x_0)
            switches.append(policy.switch_step.copy())
        x_0 = torch.cat(finals)
        x0 = x_0.reshape(len(seeds), -1).to(device="cpu", dtype=torch.float64)
        x0_x = (x0 @ x_flat).numpy()[None]
        x0_norm2 = (x0 * x0).sum(1).numpy()[None]
        x_norm2 = np.full_like(x0_norm2, float(x_flat @ x_flat))
        train, generate, score = latent_scores(x0_x, x0_norm2, x_norm2, cosine_matrix(x0).numpy()[None])
        if not np.all(np.isfinite(x0_x)):
            raise MemharnessError(f"prompt {prompt.id}: the {name} run diverged (non-finite latents)")
        arrays[f"{name}/switch_step"] = np.concatenate(switches).astype(np.int32)
        arrays[f"{name}/train_cos"] = (x0_x / np.sqrt(x0_norm2 * x_norm2))[0].astype(np.float32)
        arrays[f"{name}/latent_score"] = np.array([train[0], generate[0], score[0]], dtype=np.float32)
        if image_dir is not None:
            from memharness.trace.tracer import save_images

            save_images(denoiser, x_0, Path(image_dir) / SECTION / name / prompt.id, seeds)
    return arrays


def _prompt_of(entry: dict[str, Any]) -> Prompt:
    return Prompt(id=entry["id"], text=entry.get("text", ""), kind=entry.get("kind"), image=entry.get("image"),
                  category=entry.get("category"), duplicates=entry.get("duplicates"))


def record_mitigation(
    denoiser: Denoiser,
    root: Path,
    settings: MitigationSettings,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Sample the fixture's prompts with each method and write the "mitigation" section; returns it.
    ``limit``: only the first N prompts (a quick run; the section then lacks the others, as an
    interrupted run does, and the same command without it finishes them)."""
    root = Path(root)
    policies = settings.policies()
    fixture = Fixture(root)
    _check_pairing(denoiser, fixture, settings)
    record = _section_settings(fixture, settings, policies)
    writer = FixtureWriter(root, model=fixture.model, prompts=fixture.prompts,
                           prompt_set=fixture.manifest["prompt_set"]["name"])
    section = _open_section(writer, record, overwrite=overwrite)
    prompts = fixture.prompts[:limit]
    for done, entry in enumerate(prompts, start=1):
        pid = entry["id"]
        if _is_done(root, section["files"].get(pid)):
            if progress:
                progress(done, len(prompts), pid, True)
            continue
        x = fixture.prompt_arrays(SAMPLER, pid)["x"]
        arrays = mitigate_prompt(denoiser, _prompt_of(entry), x, seeds=record["seeds"],
                                 num_inference_steps=record["num_inference_steps"], policies=policies,
                                 guidance=settings.guidance, batch_size=settings.batch_size,
                                 image_dir=settings.image_dir)
        _write_prompt(writer, section, pid, arrays)
        if progress:
            progress(done, len(prompts), pid, False)
    return section


def _check_pairing(denoiser: Denoiser, fixture: Fixture, settings: MitigationSettings) -> None:
    """The fixture was traced by this model and has the DDIM run at g that the mitigation runs pair with."""
    root = fixture.root
    if denoiser.card.to_dict() != fixture.model:
        raise FieldError("model", f"the fixture at {root} was recorded with another model card or weights "
                                  f"({fixture.model.get('id')!r}); mitigate with the model that traced it",
                         value=denoiser.card.id)
    if float(settings.guidance) not in fixture.guidance_scales(SAMPLER):
        raise FieldError("fixtures", f"no {SAMPLER} run at g={settings.guidance:g} to pair the mitigation runs "
                                     "with; trace it first", value=root)
    if settings.image_dir is not None and not denoiser.can_decode:
        raise FieldError("images", f"model {denoiser.card.id} has no decoder; its scores use latents")


def _section_settings(fixture: Fixture, settings: MitigationSettings, policies: dict[str, Policy]) -> dict[str, Any]:
    """What the section records of its runs: the paired DDIM run's steps and seeds, g and each method's
    parameters; a resumed run must match it."""
    run = fixture.runs[SAMPLER]["settings"]
    return {
        "sampler": SAMPLER,
        "guidance": float(settings.guidance),
        "num_inference_steps": int(run["num_inference_steps"]),
        "timesteps": list(run["timesteps"]),
        "seeds": list(run["seeds"]),
        "methods": {name: policy.params() for name, policy in policies.items()},
    }


def _open_section(writer: FixtureWriter, record: dict[str, Any], *, overwrite: bool) -> dict[str, Any]:
    """The fixture's mitigation section to resume, or a new empty one when there is none or
    ``overwrite`` replaces one recorded with other settings."""
    section = writer.manifest.get(SECTION)
    if section is not None and section["settings"] != record:
        if not overwrite:
            raise FieldError("fixtures", "its mitigation runs were recorded with other settings; pass {overwrite} "
                                         "to replace them", value=writer.root, mentions=("overwrite",))
        section = None
    if section is None:
        section = {"settings": record, "scorer": LATENT_SCORER, "files": {}}
        writer.write_section(SECTION, section)
    return section


def _write_prompt(writer: FixtureWriter, section: dict[str, Any], pid: str, arrays: dict[str, np.ndarray]) -> None:
    """One prompt's mitigation file, then the manifest naming it with its sha256 (both atomic)."""
    data = st_save(arrays)
    rel = f"{SECTION}/{pid}.safetensors"
    atomic_write_bytes(writer.root / rel, data)
    section["files"][pid] = {"file": rel, "sha256": hashlib.sha256(data).hexdigest()}
    section.pop("scores", None)  # image scores of earlier generations no longer apply
    writer.write_section(SECTION, section)


def _is_done(root: Path, entry: dict[str, Any] | None) -> bool:
    if entry is None:
        return False
    path = root / entry["file"]
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


def latent_train_similarity(fixture: Fixture) -> dict[str, np.ndarray]:
    """Mean over seeds of cos(x_0, x) per prompt (P,): "unmitigated" from the paired DDIM run at the
    mitigation's g, and one entry per recorded method."""
    section = fixture.mitigation
    if section is None:
        raise MemharnessError(f"{fixture.root}: no mitigation runs; record them with `memharness mitigate`")
    group = fixture.group(section["settings"]["sampler"], float(section["settings"]["guidance"]))
    before = group.inner_final("x_0", "x") / np.sqrt(group.inner_final("x_0", "x_0") * group.inner_final("x", "x"))
    out = {"unmitigated": before.mean(axis=1)}
    for method in section["settings"]["methods"]:
        out[method] = np.array([fixture.mitigation_arrays(pid)[f"{method}/train_cos"].astype(np.float64).mean()
                                for pid in group.prompt_ids])
    return out


def summarize(root: Path) -> list[str]:
    """One line per method: memorized and normal prompts' latent train similarity before → after."""
    from memharness.scoring.labels import memorization_labels

    fixture = Fixture(root)
    labels = memorization_labels(fixture, guidance=float(fixture.mitigation["settings"]["guidance"]))
    sims = latent_train_similarity(fixture)
    if labels is None:
        groups = {"all": np.ones(len(fixture.prompts), dtype=bool)}
    else:
        groups = {"memorized": labels.memorized, "normal": ~labels.memorized}
    before = sims.pop("unmitigated")
    lines = []
    for method, after in sims.items():
        switch = np.stack([fixture.mitigation_arrays(p["id"])[f"{method}/switch_step"] for p in fixture.prompts])
        parts = [f"{name} ({int(mask.sum())}) {before[mask].mean():.3f} → {after[mask].mean():.3f}"
                 for name, mask in groups.items() if mask.any()]
        switched = switch >= 0
        steps = f", mean step {switch[switched].mean():.2f}" if switched.any() else ""
        lines.append(f"{method:<13} cos(x_0, x) {'; '.join(parts)}; switched {switched.mean():.0%} of seeds{steps}")
    return lines
