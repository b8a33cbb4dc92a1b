#!/usr/bin/env python3
"""memharness at the paper's scale: fixture size, check time, recording overhead, study projection.

    python benchmarks/run.py            # the paper's scale (about 7 minutes on 2 CPU cores, 4.5 GB RAM at most)
    python benchmarks/run.py --quick    # a smoke test at a small scale (about 15 s)
    python benchmarks/run.py --prompts 109 436 1744 4360   # check as the work grows (synthetic fixtures of N prompts)

Prints the machine and one table with four rows:

  a. fixture size: a synthetic fixture at the paper's scale (436 prompts; DDIM 50 seeds and DDPM 10,
     g ∈ {1, 7.5}, 50 steps, SD's 4×64×64 latents) written through the real store (benchmarks/synthetic.py);
  b. check: `memharness check` on it, all claims, in a subprocess: wall time and peak RSS;
  c. recording overhead: `trace` (sampler + recorder + store) against plain sampling of the same prompts and
     seeds with the tiny diffusers pipeline on the CPU, interleaved prompt by prompt in one run; and by parts:
     the recorder's hooks, its finish and the store's write, each timed alone, over plain sampling;
  d. projection: UNet evaluations of the full SD v1.4 study, divided by measured throughputs (this CPU) and
     by an assumed GPU throughput (stated as an assumption, --gpu-unet-evals-per-s to replace it).

The fixture goes to a temporary folder (or --workdir) and is deleted afterwards unless --keep.

With --prompts N [N ...] it measures how `check` grows instead: for each N a synthetic fixture of N prompts
(the paper's seeds, steps and scales), its size, and `check` on it (wall time, peak RSS, time per prompt and
its ratio to 436 prompts'), the checks of all sizes alternating round by round in one run. --fixture-cache DIR
keeps the fixtures (DIR/prompts-N; they are deterministic) so a rerun does not write them again.
"""

from __future__ import annotations

import os

# The environment `memharness check` is measured in: the caller's, untouched.
USER_ENV = dict(os.environ)
# This process generates the fixture with many small LAPACK calls (batched 50×50 eigh). Threads do not help
# them, and when other processes load a few-core machine, OpenBLAS' spinning thread pool made them 15-40×
# slower here; single-threaded they take the same time loaded or not.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import PAPER, Scale, write_synthetic_fixture  # noqa: E402

QUICK = Scale(prompts=20, ddim_seeds=10, ddpm_seeds=4, steps=50)

# Assumed SD v1.x UNet throughput on one GPU (not measured here: no GPU). Source: fal-ai/stable-diffusion-benchmarks
# README, SD1.5 512×512, 50 steps, fp16, A100 80GB SXM, "Diffusers (torch 2.1, SDPA)": 31.44 it/s end to end,
# and each step with guidance runs the UNet on a batch of 2 (uncond + cond): 62.9 UNet evaluations/s. SD v1.4 has
# the same UNet. memharness batches seeds (2 × 50 per call), which is usually faster per evaluation, so this is
# conservative.
GPU_ASSUMED_EVALS_PER_S = 62.9
GPU_ASSUMPTION_SOURCE = ("A100 80GB, fp16, diffusers + SDPA: 31.44 it/s × 2 evaluations per guided step "
                         "(github.com/fal-ai/stable-diffusion-benchmarks README)")

TARGET_BYTES = 500e6
TARGET_CHECK_S = 5.0
TARGET_CHECK_RSS = 2e9
TARGET_OVERHEAD = 1.05


# --------------------------------------------------------------------------- machine
def machine(*, import_torch: bool = True) -> dict[str, str]:
    """The machine and versions. Without ``import_torch`` the versions of torch and diffusers come from their
    metadata: a child's ru_maxrss includes the parent's memory at fork, so --prompts keeps the parent small."""
    import numpy
    import scipy

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": cpu,
        "cores": f"{cores} usable ({os.cpu_count()} logical)",
        "ram": ram,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
    }
    if not import_torch:
        from importlib.metadata import PackageNotFoundError, version

        for name in ("torch", "diffusers"):
            try:
                info[name] = version(name)
            except PackageNotFoundError:
                info[name] = "not installed"
        from memharness import __version__

        info["memharness"] = __version__
        return info
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        info["torch"] = "not installed"
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    from memharness import __version__

    info["memharness"] = __version__
    return info


def load_average() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------- b. check
@dataclass
class CheckRun:
    wall_s: float
    max_rss_bytes: int
    returncode: int
    summary: str


def run_check(fixture: Path, threads: int | None = None) -> CheckRun:
    """`memharness check --fixtures DIR` in a child process; its own rusage via wait4 (ru_maxrss in KiB).
    With ``threads``, the child's BLAS/OpenMP thread pools are set to it."""
    env = {**USER_ENV, "NO_COLOR": "1"}
    if threads is not None:
        env.update({var: str(threads) for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    cmd = [sys.executable, "-m", "memharness", "check", "--fixtures", str(fixture)]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if child.returncode not in (0, 1):
        raise RuntimeError(f"memharness check failed (exit {child.returncode}):\n{text[-2000:]}")
    summary = next((line.strip() for line in reversed(text.splitlines()) if re.match(r"\d+ claims:", line)), "?")
    return CheckRun(wall_s=wall, max_rss_bytes=usage.ru_maxrss * 1024, returncode=child.returncode, summary=summary)


# --------------------------------------------------------------------------- c. overhead
@dataclass
class Overhead:
    label: str
    latent: tuple[int, ...]
    prompts: int
    seeds: int
    steps: int
    reps: int
    plain_s: list[float] = field(default_factory=list)
    traced_s: list[float] = field(default_factory=list)
    evals_per_prompt: int = 0
    parts_s: dict[str, float] = field(default_factory=dict)  # per prompt: recorder hooks, finish, store write

    @property
    def by_parts(self) -> float:
        """1 + (the recorder's and the store's own time) / plain sampling, per prompt (medians)."""
        plain = sorted(self.plain_s)[len(self.plain_s) // 2]
        return 1 + sum(self.parts_s.values()) / plain

    @property
    def ratio(self) -> float:
        return sum(self.traced_s) / sum(self.plain_s)

    @property
    def pair_ratios(self) -> list[float]:
        return [t / p for t, p in zip(self.traced_s, self.plain_s, strict=True)]

    def estimate(self) -> tuple[float, float, float]:
        """Geometric mean of the per-prompt traced/plain ratios with its 95 % t-interval."""
        import numpy as np
        from scipy import stats

        logs = np.log(self.pair_ratios)
        mean = logs.mean()
        if len(logs) < 2:
            return float(np.exp(mean)), float("nan"), float("nan")
        half = stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
        return float(np.exp(mean)), float(np.exp(mean - half)), float(np.exp(mean + half))

    @property
    def evals_per_s(self) -> float:
        return self.evals_per_prompt * len(self.plain_s) / sum(self.plain_s)


def measure_overhead(workdir: Path, *, label: str, sample_size: int, prompts: int, seeds: int, steps: int,
                     reps: int) -> Overhead:
    """`trace` of one prompt (sampler + recorder + store, the real code path) against sampling the same prompt
    and seeds with no hooks, alternating which goes first, prompt by prompt, so drift hits both alike."""
    import numpy as np
    from PIL import Image

    from memharness.models.base import Prompt
    from memharness.models.diffusers_sd import DiffusersDenoiser, card_from_pipeline
    from memharness.models.tiny import build_tiny_pipeline
    from memharness.sampling import sample
    from memharness.trace import FixtureWriter
    from memharness.trace.recorder import TrajectoryRecorder
    from memharness.trace.tracer import TraceSettings, trace

    pipe = build_tiny_pipeline(sample_size=sample_size)
    denoiser = DiffusersDenoiser(card_from_pipeline(pipe, model_id=f"tiny-sd-{sample_size}"), pipe)
    folder = Path(tempfile.mkdtemp(prefix=f"overhead{sample_size}-", dir=workdir))
    rng = np.random.default_rng(0)
    items = []
    for i in range(prompts):
        path = folder / f"p{i}.png"
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((denoiser.image_size,) * 2, Image.BILINEAR).save(path)
        items.append(Prompt(id=f"p{i}", text=f"a painting number {i}", image=str(path)))
    settings = TraceSettings(sampler="ddim", num_inference_steps=steps, guidance=(1.0, 7.5), seeds=tuple(range(seeds)))
    result = Overhead(label=label, latent=tuple(denoiser.card.latent_shape), prompts=prompts, seeds=seeds,
                      steps=steps, reps=reps, evals_per_prompt=settings.unet_evaluations())
    counter = iter(range(10**9))

    def plain(prompt: Prompt) -> None:
        denoiser.paired_latent(prompt)
        cond = denoiser.encode(prompt)
        for g in settings.guidance:
            sample(denoiser, cond, seeds=settings.seeds, guidance_scale=g, sampler="ddim", num_inference_steps=steps)

    def traced(prompt: Prompt) -> None:
        trace(denoiser, folder / f"fixture{next(counter)}", settings, prompts=[prompt], prompt_set="bench")

    def timed(fn, prompt: Prompt) -> float:
        started = time.perf_counter()
        fn(prompt)
        return time.perf_counter() - started

    timed(plain, items[0])  # warm-up: first calls allocate and pick kernels
    timed(traced, items[0])
    for rep in range(reps):
        for i, prompt in enumerate(items):
            if (rep + i) % 2 == 0:
                result.plain_s.append(timed(plain, prompt))
                result.traced_s.append(timed(traced, prompt))
            else:
                result.traced_s.append(timed(traced, prompt))
                result.plain_s.append(timed(plain, prompt))

    # By parts: the recorder replayed on captured step states, its finish, and the store's write, each timed
    # alone (median over prompts and repetitions). Left out: the sampler building each StepState (two
    # elementwise ops per step), which only happens when a hook is attached.
    writer = FixtureWriter(folder / "parts", model=denoiser.card.to_dict(), prompts=[p.to_manifest() for p in items],
                           prompt_set="bench")
    run = writer.begin_run("ddim", {"timesteps": [], "guidance": list(settings.guidance),
                                    "seeds": list(settings.seeds)})
    samples: dict[str, list[float]] = {"recorder hooks": [], "recorder finish": [], "store write": []}
    for _ in range(reps):
        for prompt in items:
            x = denoiser.paired_latent(prompt)
            cond = denoiser.encode(prompt)
            groups, hooks_s, finish_s = {}, 0.0, 0.0
            for g in settings.guidance:
                states: list = []
                final = sample(denoiser, cond, seeds=settings.seeds, guidance_scale=g, sampler="ddim",
                               num_inference_steps=steps, hooks=[states.append]).x_0
                recorder = TrajectoryRecorder(x, num_steps=steps, with_uncond=g != 1.0)
                started = time.perf_counter()
                for state in states:
                    recorder(state)
                hooks_s += time.perf_counter() - started
                started = time.perf_counter()
                groups[float(g)] = recorder.finish(final)
                finish_s += time.perf_counter() - started
            started = time.perf_counter()
            run.write_prompt(prompt.id, x.detach().cpu().numpy(), groups)
            samples["store write"].append(time.perf_counter() - started)
            samples["recorder hooks"].append(hooks_s)
            samples["recorder finish"].append(finish_s)
    result.parts_s = {name: sorted(v)[len(v) // 2] for name, v in samples.items()}
    shutil.rmtree(folder, ignore_errors=True)
    return result


def measure_recorder(seeds: int, steps: int, shape: tuple[int, ...] = (4, 64, 64)) -> float:
    """CPU seconds of the recorder alone (hooks + finish, g = 1 and 7.5) for one prompt at SD's latent shape."""
    import torch

    from memharness.sampling import StepState
    from memharness.trace.recorder import TrajectoryRecorder

    gen = torch.Generator().manual_seed(0)
    vectors = [torch.randn((seeds, *shape), generator=gen) for _ in range(4)]
    x = torch.randn(shape, generator=gen)
    started = time.perf_counter()
    for g in (1.0, 7.5):
        recorder = TrajectoryRecorder(x, num_steps=steps, with_uncond=g != 1.0)
        for s in range(steps):
            recorder(StepState(step=s, t=981 - 20 * s, alpha_bar=0.5, alpha_bar_prev=0.6, guidance_scale=g,
                               x_t=vectors[0] * (1 - s / steps), eps_uncond=None if g == 1.0 else vectors[1],
                               eps_cond=vectors[2], x0_hat=vectors[3]))
        recorder.finish(vectors[0] * 0.1)
    return time.perf_counter() - started


def measure_sd_unet_cpu(evals: int = 2) -> tuple[float, int]:
    """UNet evaluations/s of SD v1.4's UNet architecture (random weights: the cost does not depend on them)
    at 64×64 latents, batch 2 (one guided step), on this CPU; and its parameter count."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # SD v1.4's unet/config.json: diffusers' defaults with cross_attention_dim 768 and sample_size 64.
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768).eval()
    params = sum(p.numel() for p in unet.parameters())
    latents, text = torch.randn(2, 4, 64, 64), torch.randn(2, 77, 768)
    with torch.no_grad():
        unet(latents, torch.tensor(981), encoder_hidden_states=text)  # warm-up
        started = time.perf_counter()
        for _ in range(evals // 2):
            unet(latents, torch.tensor(981), encoder_hidden_states=text)
        seconds = time.perf_counter() - started
    del unet
    return evals / seconds, params


# --------------------------------------------------------------------------- b'. check as the work grows
SCALING_REFERENCE = 436  # time per prompt is compared with the paper's scale
TARGET_SCALING_RATIO = 1.1
TARGET_RSS_AT_1744 = 2.3e9 / 2  # half of what check took before it streamed groups (2.3 GB at 1,744 prompts)


def replicate_fixture(source: Path, target: Path, copies: int) -> None:
    """A fixture of ``copies`` × the prompts of ``source``: its files again (hard links where possible) under new
    prompt ids, with their scores. `check` costs the same on it as on a fixture written prompt by prompt (the
    same shapes and bytes per prompt); only its verdicts see each prompt ``copies`` times."""
    from memharness.trace import MANIFEST, prompt_set_hash
    from memharness.trace.safety import atomic_write_bytes

    manifest = json.loads((source / MANIFEST).read_text())
    originals = manifest["prompts"]
    manifest["prompts"] = [{**p, "id": f"{p['id']}c{c}"} for c in range(copies) for p in originals]
    for name, run in manifest["runs"].items():
        (target / name).mkdir(parents=True, exist_ok=True)
        files = {}
        for c in range(copies):
            for p in originals:
                entry, rel = run["files"][p["id"]], f"{name}/{p['id']}c{c}.safetensors"
                try:
                    os.link(source / entry["file"], target / rel)
                except OSError:
                    shutil.copyfile(source / entry["file"], target / rel)
                files[f"{p['id']}c{c}"] = {"file": rel, "sha256": entry["sha256"]}
        run["files"] = files
    for by_scale in manifest.get("scores", {}).get("values", {}).values():
        for key, by_prompt in by_scale.items():
            by_scale[key] = {f"{pid}c{c}": v for c in range(copies) for pid, v in by_prompt.items()}
    manifest["prompt_set"]["sha256"] = prompt_set_hash(manifest["prompts"])
    atomic_write_bytes(target / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


def measure_scaling(sizes: list[int], workdir: Path, cache: Path | None, *, repeats: int, threads: int,
                    replicate: bool = False) -> dict:
    """For each size a synthetic fixture (reused from ``cache`` if there), then `check` on every size, round by
    round (each round runs every size once, in turn), so drift and the machine's load hit all sizes alike.
    With ``replicate``, sizes that are multiples of 436 (above it) are the 436-prompt fixture replicated."""
    fixtures: dict[int, tuple[Path, int, float | None]] = {}
    replicated: set[int] = set()
    base = SCALING_REFERENCE
    if replicate and any(n > base and n % base == 0 for n in sizes) and base not in sizes:
        sizes = sorted([*sizes, base])
    for n in sizes:
        folder = (cache / f"prompts-{n}") if cache else (workdir / f"prompts-{n}")
        if replicate and n > base and n % base == 0 and not (folder / "manifest.json").is_file():
            print(f"[a] {n} prompts: the {base}-prompt fixture replicated {n // base}× under new ids ...", flush=True)
            started = time.perf_counter()
            replicate_fixture(fixtures[base][0], folder, n // base)
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            fixtures[n] = (folder, size, time.perf_counter() - started)
            replicated.add(n)
            continue
        if not (folder / "manifest.json").is_file():
            print(f"[a] writing a synthetic fixture of {n} prompts to {folder} ...", flush=True)
            stats = write_synthetic_fixture(folder, Scale(prompts=n))
            seconds = stats.seconds
        else:
            print(f"[a] reusing {folder}", flush=True)
            seconds = None
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        fixtures[n] = (folder, size, seconds)
    runs: dict[int, list[CheckRun]] = {n: [] for n in sizes}
    for r in range(repeats):
        for n in (sizes if r % 2 == 0 else sizes[::-1]):
            print(f"[b] round {r + 1}/{repeats}: check on {n} prompts ...", flush=True)
            runs[n].append(run_check(fixtures[n][0], threads))
            c = runs[n][-1]
            print(f"    {c.wall_s:.2f} s, peak RSS {human_bytes(c.max_rss_bytes)}; {c.summary}", flush=True)
    out = {}
    for n in sizes:
        walls = sorted(c.wall_s for c in runs[n])
        out[n] = {"fixture_bytes": fixtures[n][1], "write_seconds": fixtures[n][2],
                  "wall_s": [c.wall_s for c in runs[n]],
                  "median_wall_s": walls[len(walls) // 2], "max_rss_bytes": max(c.max_rss_bytes for c in runs[n]),
                  "summary": runs[n][0].summary, "replicated_from": base if n in replicated else None}
        out[n]["s_per_prompt"] = out[n]["median_wall_s"] / n
    ref = out.get(SCALING_REFERENCE)
    for n in sizes:
        out[n]["ratio_vs_436"] = out[n]["s_per_prompt"] / ref["s_per_prompt"] if ref else None
    return out


def scaling_table(results: dict) -> str:
    header = ("prompts", "fixture", "check (median)", "peak RSS", "per prompt", "vs 436", "claims")
    rows = [(f"{n:,}" + (f" ({r['replicated_from']}×{n // r['replicated_from']})" if r["replicated_from"] else ""),
             human_bytes(r["fixture_bytes"]), f"{r['median_wall_s']:.1f} s", human_bytes(r["max_rss_bytes"]),
             f"{1e3 * r['s_per_prompt']:.2f} ms", f"{r['ratio_vs_436']:.2f}" if r["ratio_vs_436"] else "-",
             r["summary"].split(":", 1)[-1].strip()) for n, r in results.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    return "\n".join([line, fmt.format(*header), line, *(fmt.format(*r) for r in rows), line])


def _print_header(title: str, info: dict) -> None:
    print(title)
    for key, value in info.items():
        print(f"  {key:<11} {value}")
    print(flush=True)


def _make_workdir(parent: str | None) -> Path:
    """A fresh temporary folder for one benchmark run (under ``parent`` when given)."""
    base = Path(parent) if parent else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="memharness-bench-", dir=base))


def scaling_main(args: argparse.Namespace) -> int:
    started, load_start = time.perf_counter(), load_average()
    info = machine(import_torch=False)
    info["load"] = f"{load_start} (1, 5, 15 min load average at start)"
    info["threads"] = f"{args.threads} (OMP/OpenBLAS/MKL of each check)"
    _print_header("memharness benchmarks --prompts " + " ".join(map(str, args.prompts)), info)
    workdir = _make_workdir(args.workdir)
    cache = Path(args.fixture_cache) if args.fixture_cache else None
    repeats = args.check_repeats or 3
    try:
        results = measure_scaling(sorted(set(args.prompts)), workdir, cache, repeats=repeats, threads=args.threads,
                                  replicate=args.replicate)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(scaling_table(results))
    largest = max(results)
    verdicts = []
    ratio = results[largest]["ratio_vs_436"]
    if ratio is not None and largest > SCALING_REFERENCE:
        ok = results[largest]["max_rss_bytes"] <= TARGET_CHECK_RSS and ratio <= TARGET_SCALING_RATIO
        verdicts.append(f"{largest:,} prompts: peak RSS ≤ {human_bytes(TARGET_CHECK_RSS)} and time per prompt "
                        f"≤ {TARGET_SCALING_RATIO}× that at 436: {'met' if ok else 'MISSED'}")
    if 1744 in results:
        ok = results[1744]["max_rss_bytes"] <= TARGET_RSS_AT_1744
        verdicts.append(f"1,744 prompts: peak RSS ≤ {human_bytes(TARGET_RSS_AT_1744)} (half of 2.3 GB before "
                        f"streaming): {'met' if ok else 'MISSED'}")
    for line in verdicts:
        print(line)
    print(f"`memharness check --fixtures DIR` in a subprocess, {repeats} rounds (every size once per round); "
          "wall: median; RSS: the largest of the child's ru_maxrss")
    print(f"total benchmark time {time.perf_counter() - started:.0f} s; load average at start {load_start}, "
          f"at end {load_average()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "scaling": results, "targets": verdicts},
                                              indent=1, default=str) + "\n")
    return 0


# --------------------------------------------------------------------------- output
def human_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


def human_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    if seconds < 2 * 365 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / (365 * 86400):.1f} years"


def table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("benchmark", "measured", "target", "status")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    return "\n".join([line, fmt.format(*header), line, *(fmt.format(*r) for r in rows), line])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small scale: a smoke test, not a measurement")
    parser.add_argument("--workdir", help="folder for the synthetic fixture (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic fixture")
    parser.add_argument("--check-repeats", type=int, default=None,
                        help="runs of `memharness check` (default 3; 1 with --quick)")
    parser.add_argument("--gpu-unet-evals-per-s", type=float, default=None,
                        help=f"SD UNet evaluations/s of your GPU (default: {GPU_ASSUMED_EVALS_PER_S}, an assumption)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads for the sampling benchmarks (default 1: the tiny UNet's ops are "
                             "too small to gain from more, and one thread is steadier on a shared machine)")
    parser.add_argument("--no-sd-unet", action="store_true",
                        help="skip timing SD v1.4's UNet architecture on this CPU (needs about 4.5 GB RAM, 1 min)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--prompts", type=int, nargs="+", metavar="N",
                        help="measure check as the work grows instead: synthetic fixtures of N prompts each")
    parser.add_argument("--fixture-cache", metavar="DIR",
                        help="with --prompts: keep the synthetic fixtures in DIR/prompts-N and reuse them")
    parser.add_argument("--replicate", action="store_true",
                        help="with --prompts: build sizes that are multiples of 436 from the 436-prompt fixture's "
                             "files (minutes instead of an hour at 4,360 prompts; the same bytes per prompt)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP/OpenBLAS/MKL threads of each `memharness check` run with --prompts (default 1)")
    args = parser.parse_args(argv)
    if args.prompts:
        if min(args.prompts) < 2:
            parser.error("--prompts: every N must be ≥ 2")
        return scaling_main(args)

    scale = QUICK if args.quick else PAPER
    repeats = args.check_repeats or (1 if args.quick else 3)
    started = time.perf_counter()
    load_start = load_average()
    info = machine()
    info["load"] = f"{load_start} (1, 5, 15 min load average at start)"
    _print_header("memharness benchmarks" + (" --quick (smoke test: small scale, not a measurement)"
                                              if args.quick else ""), info)
    workdir = _make_workdir(args.workdir)
    results: dict = {"machine": info, "quick": args.quick, "scale": scale.__dict__ | {"guidance": list(scale.guidance)}}
    try:
        # a. fixture size
        print(f"[a] writing a synthetic fixture: {scale.prompts} prompts, DDIM {scale.ddim_seeds} seeds + DDPM "
              f"{scale.ddpm_seeds} seeds, g ∈ {{{', '.join(f'{g:g}' for g in scale.guidance)}}}, {scale.steps} steps, "
              f"latents 4×64×64 ...", flush=True)
        stats = write_synthetic_fixture(workdir / "fixture", scale)
        print(f"    {human_bytes(stats.bytes_on_disk)} in {stats.files} files, written in {stats.seconds:.0f} s; "
              f"{stats.memorized} of {stats.prompts} prompts memorized (score ≥ 0.75)", flush=True)
        results["fixture"] = {"bytes": stats.bytes_on_disk, "files": stats.files, "seconds": stats.seconds,
                              "per_run_bytes": stats.per_run_bytes, "memorized": stats.memorized,
                              "prompts": stats.prompts}

        # b. check
        print(f"[b] memharness check on it, {repeats}× ...", flush=True)
        checks = [run_check(stats.root) for _ in range(repeats)]
        walls = sorted(c.wall_s for c in checks)
        median_wall, max_rss = walls[len(walls) // 2], max(c.max_rss_bytes for c in checks)
        print(f"    wall {', '.join(f'{c.wall_s:.2f}' for c in checks)} s; peak RSS {human_bytes(max_rss)}; "
              f"{checks[0].summary}", flush=True)
        results["check"] = {"wall_s": [c.wall_s for c in checks], "median_wall_s": median_wall,
                            "max_rss_bytes": max_rss, "summary": checks[0].summary}
        if not args.keep:
            shutil.rmtree(workdir / "fixture", ignore_errors=True)

        # c. recording overhead
        import torch

        torch.set_num_threads(args.torch_threads)
        configs = [dict(label="tiny pipeline (4×8×8 latents)", sample_size=8,
                        **(dict(prompts=2, seeds=4, steps=10, reps=2) if args.quick
                           else dict(prompts=4, seeds=16, steps=50, reps=3)))]
        if not args.quick:
            configs.append(dict(label="tiny UNet at SD's latent size (4×64×64)", sample_size=64,
                                prompts=2, seeds=2, steps=10, reps=3))
        overheads = []
        for config in configs:
            print(f"[c] recording overhead, {config['label']}: {config['prompts']} prompts × {config['reps']} "
                  f"interleaved repetitions, {config['seeds']} seeds, {config['steps']} steps, g ∈ {{1, 7.5}} ...",
                  flush=True)
            o = measure_overhead(workdir, **config)
            overheads.append(o)
            est, lo, hi = o.estimate()
            print(f"    traced/plain = {est:.3f} [95% CI {lo:.3f}, {hi:.3f}] over {len(o.pair_ratios)} prompt pairs "
                  f"(per prompt {min(o.pair_ratios):.3f} … {max(o.pair_ratios):.3f}; ratio of sums {o.ratio:.3f}); "
                  f"plain {sum(o.plain_s):.1f} s, {o.evals_per_s:,.1f} UNet evals/s", flush=True)
            print(f"    by parts: {o.by_parts:.4f} = 1 + ("
                  + " + ".join(f"{name} {1e3 * v:.1f} ms" for name, v in o.parts_s.items())
                  + f") / {sorted(o.plain_s)[len(o.plain_s) // 2]:.2f} s plain per prompt", flush=True)
        rec_seeds, rec_steps = (4, 10) if args.quick else (PAPER.ddim_seeds, PAPER.steps)
        recorder_s = measure_recorder(rec_seeds, rec_steps)
        print(f"    recorder alone at SD's shape ({rec_seeds} seeds × {rec_steps} steps × 4×64×64, g = 1 and 7.5): "
              f"{recorder_s:.2f} s CPU per prompt", flush=True)
        results["overhead"] = [{"label": o.label, "latent": o.latent, "prompts": o.prompts, "seeds": o.seeds,
                                "steps": o.steps, "reps": o.reps, "plain_s": o.plain_s, "traced_s": o.traced_s,
                                "ratio_of_sums": o.ratio, "ratio": o.estimate()[0], "ci95": o.estimate()[1:],
                                "by_parts": o.by_parts, "parts_s": o.parts_s,
                                "evals_per_s": o.evals_per_s} for o in overheads]
        results["recorder_sd_shape"] = {"seeds": rec_seeds, "steps": rec_steps, "seconds_per_prompt": recorder_s}

        # d. projection
        evals = PAPER.unet_evaluations()
        gpu_rate = args.gpu_unet_evals_per_s or GPU_ASSUMED_EVALS_PER_S
        gpu_source = "user-supplied (--gpu-unet-evals-per-s)" if args.gpu_unet_evals_per_s else \
            f"ASSUMPTION, not measured: {GPU_ASSUMPTION_SOURCE}"
        projection = [(f"{o.label}, this CPU (measured {o.evals_per_s:,.1f}/s)", evals / o.evals_per_s)
                      for o in overheads]
        sd_cpu = None
        if not args.quick and not args.no_sd_unet:
            print("[d] timing SD v1.4's UNet architecture (random weights) on this CPU ...", flush=True)
            sd_cpu, params = measure_sd_unet_cpu()
            projection.append((f"SD v1.4 UNet ({params / 1e6:.0f} M parameters), this CPU (measured "
                               f"{sd_cpu:.3f}/s)", evals / sd_cpu))
        given = "given" if args.gpu_unet_evals_per_s else "assumed"
        projection.append((f"SD v1.4 UNet, one GPU at {gpu_rate:g}/s ({given})", evals / gpu_rate))
        results["projection"] = {"unet_evaluations": evals, "gpu_evals_per_s": gpu_rate, "gpu_source": gpu_source,
                                 "sd_unet_cpu_evals_per_s": sd_cpu,
                                 "lines": [{"what": w, "seconds": s} for w, s in projection]}
    finally:
        if args.keep:
            print(f"kept the synthetic fixture: {workdir / 'fixture'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    # The table.
    fixture_ok = stats.bytes_on_disk <= TARGET_BYTES
    check_ok = median_wall <= TARGET_CHECK_S and max_rss <= TARGET_CHECK_RSS
    ratio_text = "; ".join(f"{'×'.join(map(str, o.latent[1:]))}: {o.estimate()[0]:.3f} [{o.estimate()[1]:.2f}, "
                           f"{o.estimate()[2]:.2f}], by parts {o.by_parts:.3f}" for o in overheads)
    overhead_ok = all(o.by_parts <= TARGET_OVERHEAD for o in overheads)
    gpu_seconds = evals / gpu_rate

    def status(ok: bool) -> str:
        return "smoke test" if args.quick else ("met" if ok else "MISSED")

    rows = [
        ("a. fixture size", f"{human_bytes(stats.bytes_on_disk)} ({stats.prompts} prompts, {stats.files} files)",
         "≤ 500 MB at paper scale", status(fixture_ok)),
        ("b. memharness check", f"{median_wall:.1f} s wall (median of {repeats}), {human_bytes(max_rss)} peak RSS",
         "≤ 5 s, ≤ 2 GB", status(check_ok)),
        ("c. recording overhead", f"traced/plain {ratio_text}", "≤ 1.05 (status: by parts)", status(overhead_ok)),
        ("d. projection, SD v1.4 study", f"{human_time(gpu_seconds)} on one GPU at {gpu_rate:g} UNet evals/s "
         f"({'given' if args.gpu_unet_evals_per_s else 'assumed'})", "none (the paper: 8 GPUs × 1 day)",
         "projection"),
    ]
    results["rows"] = [dict(zip(("benchmark", "measured", "target", "status"), r, strict=True)) for r in rows]
    print()
    print(table(rows))
    ddim, ddpm = stats.per_run_bytes["ddim"], stats.per_run_bytes["ddpm"]
    print(f"a. DDIM run {human_bytes(ddim)} ({human_bytes(ddim / stats.prompts)}/prompt), DDPM run {human_bytes(ddpm)} "
          f"({human_bytes(ddpm / stats.prompts)}/prompt), manifest and scores the rest; the paper kept about 6 TB "
          "of logs.")
    print(f"b. `memharness check --fixtures DIR` in a subprocess; {checks[0].summary}; runs "
          f"{', '.join(f'{w:.2f}' for w in (c.wall_s for c in checks))} s.")
    for o in overheads:
        print(f"c. {o.label}: {o.prompts} prompts × {o.reps} reps, {o.seeds} seeds, {o.steps} steps, torch threads "
              f"{args.torch_threads}. End to end: geometric mean of the per-prompt traced/plain ratios [95% CI] "
              f"(per prompt {min(o.pair_ratios):.3f} … {max(o.pair_ratios):.3f}, ratio of sums {o.ratio:.3f}). By "
              "parts: 1 + (" + ", ".join(f"{name} {1e3 * v:.1f} ms" for name, v in o.parts_s.items())
              + f") / plain sampling {sorted(o.plain_s)[len(o.plain_s) // 2]:.2f} s, per prompt (medians).")
    print(f"c. the recorder alone at SD's latent shape, {rec_seeds} seeds × {rec_steps} steps, g = 1 and 7.5: "
          f"{recorder_s:.2f} s per prompt on this CPU.")
    if not args.quick:
        per_prompt = PAPER.ddim_seeds * PAPER.steps * 3  # DDIM UNet evaluations per prompt, g = 1 and 7.5
        if sd_cpu:
            print(f"   With SD's UNet on this CPU ({per_prompt:,} evaluations per prompt at {sd_cpu:.3f}/s): "
                  f"traced/plain ≈ {1 + recorder_s / (per_prompt / sd_cpu):.5f}.")
        print(f"   With SD's UNet on one GPU at {gpu_rate:g}/s ({per_prompt / gpu_rate:.0f} s per prompt), even if the "
              f"recorder ran no faster there than on this CPU: ≤ {1 + recorder_s / (per_prompt / gpu_rate):.3f}.")
    print(f"d. {evals:,} UNet evaluations = {PAPER.prompts} prompts × (DDIM {PAPER.ddim_seeds} + DDPM "
          f"{PAPER.ddpm_seeds} seeds) × {PAPER.steps} steps × (1 + 2) for g = 1 and 7.5; VAE decodes and SSCD "
          "not included. The paper: 8 GPUs for a day.")
    for what, seconds in projection:
        print(f"   {what}: {human_time(seconds)}")
    print(f"   GPU rate: {gpu_source}")
    print(f"total benchmark time {time.perf_counter() - started:.0f} s; load average at start {load_start}, "
          f"at end {load_average()} (other processes on the machine inflate and scatter every timing)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
