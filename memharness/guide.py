"""A first run that guides: what recording a model's fixtures needs, and the exact commands.

``check --model M`` without fixtures names M, says what recording needs (weights as a diffusers
folder, a single-file checkpoint or a hub id; a GPU for Stable Diffusion models; the time and
disk per prompt docs/models.md measures) and prints the commands. ``memharness models`` says which
models have fixtures, and where.
"""

from __future__ import annotations

from pathlib import Path

from memharness.errors import MemharnessError
from memharness.guidance import passes_per_step
from memharness.models.card import ModelCard

# Measured in docs/models.md (Disk) and docs/benchmarks.md (a, d): one prompt at SD's latent size.
DISK_DDIM_50_SEEDS_KB = 461  # DDIM, 50 seeds, g = 1 and 7.5
DISK_DDPM_10_SEEDS_KB = 144  # DDPM, 10 seeds, g = 1 and 7.5
GPU_EVALS_PER_S = 62.9  # an A100, fp16: ASSUMED (fal-ai benchmarks), not measured here
CPU_EVALS_PER_S = 0.107  # SD v1.4's UNet on this project's 2-core CPU, measured
STEPS = 50


class FirstRun(MemharnessError):
    """No fixtures yet: one error line, preceded by the lines of the guide."""

    def __init__(self, message: str, guide: list[str]):
        super().__init__(message)
        self.guide = guide


def unet_evaluations(card: ModelCard, sampler: str) -> int:
    """UNet evaluations per prompt for the card's default run of ``sampler`` (50 steps)."""
    run = card.trace.get(sampler, {})
    seeds = int(run.get("seeds", 8))
    guidance = [float(g) for g in run.get("guidance", [1.0, 7.5])]
    return STEPS * seeds * sum(passes_per_step(g) for g in guidance)


def _hours(evals: float, rate: float) -> str:
    seconds = evals / rate
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def recording_guide(card: ModelCard, out: Path) -> list[str]:
    """The lines that say how to record ``card``'s fixtures into ``out``."""
    if card.backend == "analytic":
        return [f"model {card.id} is computed, not loaded: record its fixtures on the CPU in about 10 s:",
                f"  memharness trace --model {card.id} --out {out}",
                f"  memharness trace --model {card.id} --out {out} --sampler ddpm",
                f"  memharness check --model {card.id} --fixtures {out}"]
    if card.backend == "zoo":
        return [f"model {card.id} is a model organism trained here; its weights ship (or come from "
                f"`memharness zoo train`); record its fixtures on the CPU in minutes:",
                f"  memharness trace --model {card.id} --out {out}",
                f"  memharness trace --model {card.id} --out {out} --sampler ddpm",
                f"  memharness check --model {card.id} --fixtures {out}"]
    hub = card.params.get("hub_id")
    ddim, ddpm = unet_evaluations(card, "ddim"), unet_evaluations(card, "ddpm")
    ddim_seeds = int(card.trace.get("ddim", {}).get("seeds", 8))
    ddpm_seeds = int(card.trace.get("ddpm", {}).get("seeds", 8))
    disk = DISK_DDIM_50_SEEDS_KB * ddim_seeds / 50 + DISK_DDPM_10_SEEDS_KB * ddpm_seeds / 10
    lines = [
        f"model {card.id} ({card.title}) has no fixtures at {out}. Recording them needs:",
        "  - the weights: --model-path PATH with a diffusers pipeline folder or a single-file checkpoint "
        "(.safetensors, .ckpt)" + (f", or, with network, the hub id {hub} (--revision, --variant)" if hub else ""),
        "  - a GPU (CUDA): on a CPU, SD's UNet runs at about "
        f"{CPU_EVALS_PER_S} evaluations/s, {_hours(ddim + ddpm, CPU_EVALS_PER_S)} per prompt",
        "  - prompts paired with their training images: `memharness data fetch --set webster --out data/webster` "
        "writes data/webster/prompts.jsonl",
        f"  - per prompt, with the card's defaults (DDIM {ddim_seeds} seeds, DDPM {ddpm_seeds} seeds, {STEPS} steps): "
        f"{ddim + ddpm:,} UNet evaluations, about {_hours(ddim + ddpm, GPU_EVALS_PER_S)} on one GPU at "
        f"{GPU_EVALS_PER_S} evaluations/s (an assumed A100 rate; the progress line shows yours), and about "
        f"{disk:.0f} KB of disk (docs/models.md: 461 KB for DDIM with 50 seeds, 144 KB for DDPM with 10)",
        "Record and check them:",
    ]
    weights = "--model-path PATH " if not hub else ""
    prompts = "--prompts data/webster/prompts.jsonl"
    lines += [f"  memharness trace --model {card.id} {weights}{prompts} --device cuda --out {out}",
              f"  memharness trace --model {card.id} {weights}{prompts} --device cuda --out {out} --sampler ddpm",
              f"  memharness check --model {card.id} --fixtures {out}"]
    if hub:
        lines.append(f"  (these download {hub} from the hub; without network, download it elsewhere and add "
                     "--model-path PATH)")
    lines.append("  (a quick try first: add --limit 2 to trace two prompts)")
    return lines


def first_run(card: ModelCard, out: Path, *, display: str) -> FirstRun:
    """The error for ``check --model M`` when M has no fixtures yet."""
    return FirstRun(f"model {card.id} has no fixtures yet ({display}/manifest.json missing); record them with "
                    f"`memharness trace --model {card.id}` (`memharness check --model {card.id}` says what it "
                    "needs), or pass --fixtures DIR",
                    recording_guide(card, Path(display)))
