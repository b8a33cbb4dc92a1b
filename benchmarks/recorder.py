#!/usr/bin/env python3
"""The recorder's cost against the UNet's, on SD v1.4's architecture with random weights, on this CPU (issue 17).

    python benchmarks/recorder.py            # the paper's shape: 50 seeds × 50 steps, g ∈ {1, 7.5} (about 5 min)
    python benchmarks/recorder.py --quick    # a smoke test at a tiny shape (seconds; not a measurement)

Each part runs in its own subprocess (so one part's freed memory cannot hide the other's), one after the
other in this run, both with torch.set_num_threads(--threads):

  recorder  the recorder alone (hooks + finish) for one prompt at the paper's shape: random tensors of SD's
            latent shape stand in for the sampler's (the recorder sees only tensors, so its cost does not
            depend on their values). CPU time; extra memory = peak RSS while recording − RSS before (the inputs
            are allocated before), the peak reset through /proc/self/clear_refs.
  unet      SD v1.4's UNet (diffusers UNet2DConditionModel, 859.5 M parameters, random weights: the cost does
            not depend on them) on 4×64×64 latents, fp32, at two small batch sizes b: CPU time per forward and
            activation memory = peak RSS during the forward − RSS before.

A UNet batch of the paper's shape is 100 samples (50 seeds × ε_u and ε_c); running it on this CPU is too slow,
so the UNet's time and activations at the paper's shape are the per-sample values of the larger measured
batch times the number of samples. The two batch sizes show the linear scaling this assumes (the output
prints both per-sample values).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

LATENT = (4, 64, 64)


def _rss_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux)


def _peak_during(fn) -> tuple[float, float]:
    """(CPU seconds, peak RSS above the RSS before, in bytes) of fn(). CPU time, not wall time: with one
    thread it is the work done, whatever else loads the machine."""
    _reset_peak()
    before = _rss_kib("VmRSS")
    started = time.process_time()
    fn()
    seconds = time.process_time() - started
    return seconds, (_rss_kib("VmHWM") - before) * 1024.0


def part_recorder(seeds: int, steps: int, latent: tuple[int, ...]) -> dict:
    import torch

    from memharness.sampling import StepState
    from memharness.trace.recorder import TrajectoryRecorder

    gen = torch.Generator().manual_seed(0)
    pool = [torch.randn((seeds, *latent), generator=gen) for _ in range(5)]  # allocated before the baseline
    x = torch.randn(latent, generator=gen)

    def record() -> None:
        for g in (1.0, 7.5):
            recorder = TrajectoryRecorder(x, num_steps=steps, with_uncond=g != 1.0)
            for s in range(steps):
                recorder(StepState(step=s, t=981 - 20 * s, alpha_bar=0.5, alpha_bar_prev=0.6, guidance_scale=g,
                                   x_t=pool[s % 2], eps_uncond=None if g == 1.0 else pool[2], eps_cond=pool[3],
                                   x0_hat=pool[4]))
            recorder.finish(pool[(s + 1) % 2])
            del recorder

    record()  # warm-up
    seconds, peak = _peak_during(record)
    return {"seconds": seconds, "peak_bytes": peak}


def part_unet(batches: list[int], latent: tuple[int, ...], tiny: bool) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    if tiny:  # the smoke test: the same code path on a toy UNet
        unet = UNet2DConditionModel(sample_size=latent[-1], block_out_channels=(32, 64), layers_per_block=1,
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                    attention_head_dim=8, norm_num_groups=8).eval()
    else:  # SD v1.4's unet/config.json: diffusers' defaults with cross_attention_dim 768 and sample_size 64
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768).eval()
    params = sum(p.numel() for p in unet.parameters())
    width = unet.config.cross_attention_dim
    out = {"params": params, "batches": {}}
    with torch.no_grad():
        for b in batches:
            latents, text = torch.randn(b, *latent), torch.randn(b, 77, width)

            def forward(latents=latents, text=text) -> None:
                unet(latents, torch.tensor(981), encoder_hidden_states=text)

            forward()  # warm-up
            seconds, peak = _peak_during(forward)
            out["batches"][str(b)] = {"seconds": seconds, "peak_bytes": peak}
    return out


def _run_part(args: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads),
           # Blocks of 128 KiB and more are mapped and unmapped: freed memory leaves RSS, so a warm-up's
           # freed buffers cannot hide the measured call's peak.
           "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    done = subprocess.run([sys.executable, __file__, "--threads", str(threads), *args], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks/recorder.py {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(rec: dict, unet: dict, *, seeds: int, steps: int, threads: int) -> list[str]:
    """The table: the recorder's time and memory against the UNet's for the same steps."""
    per_sample = {int(b): (v["seconds"] / int(b), v["peak_bytes"] / int(b)) for b, v in unet["batches"].items()}
    largest = max(per_sample)
    t_sample, m_sample = per_sample[largest]
    evaluations = seeds * steps * (1 + 2)  # g = 1: ε_c; g = 7.5: ε_u and ε_c
    unet_s = t_sample * evaluations
    batch = 2 * seeds  # the sampling batch at g = 7.5
    unet_act = m_sample * batch
    mib = 1024.0**2
    lines = [f"torch threads: {threads}; times are CPU seconds (process time); "
             f"UNet: {unet['params'] / 1e6:.1f} M parameters, fp32",
             "UNet per sample (batch b): " + ", ".join(
                 f"b={b}: {t:.3f} s, {m / mib:.0f} MiB activations" for b, (t, m) in sorted(per_sample.items())),
             f"shape: {seeds} seeds × {steps} steps, g ∈ {{1, 7.5}}: {evaluations} UNet sample-evaluations",
             "",
             "| quantity | recorder | UNet (same steps) | ratio | target |",
             "|---|---|---|---|---|",
             f"| time | {rec['seconds']:.2f} s | {unet_s:.0f} s (= {evaluations} × {t_sample:.3f} s) "
             f"| {rec['seconds'] / max(unet_s, 1e-12):.2%} | ≤ 5 % |",
             f"| extra memory | {rec['peak_bytes'] / mib:.0f} MiB | {unet_act / mib:.0f} MiB activations of a "
             f"batch of {batch} (= {batch} × {m_sample / mib:.0f} MiB) "
             f"| {rec['peak_bytes'] / max(unet_act, 1.0):.2%} | ≤ 10 % |"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny shape and a toy UNet: a smoke test")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of both parts (default 1)")
    parser.add_argument("--part", choices=("recorder", "unet"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seeds, steps, latent = (3, 4, (4, 8, 8)) if args.quick else (50, 50, LATENT)
    batches = [1, 2]
    if args.part is not None:
        import torch

        torch.set_num_threads(args.threads)
        result = part_recorder(seeds, steps, latent) if args.part == "recorder" else part_unet(
            batches, latent, args.quick)
        print(json.dumps(result))
        return 0
    quick = ["--quick"] if args.quick else []
    rec = _run_part(["--part", "recorder", *quick], args.threads)
    unet = _run_part(["--part", "unet", *quick], args.threads)
    print("\n".join(report(rec, unet, seeds=seeds, steps=steps, threads=args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
