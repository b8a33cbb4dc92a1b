"""Two processes (torchrun, gloo on the CPU) trace the same fixture as one process does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed

from memharness.errors import MemharnessError
from memharness.trace.shards import merge_shards, shard, shard_dir

CARD = """\
id: analytic
title: small analytic
backend: analytic
latent_shape: [4, 4, 4]
prediction_type: epsilon
scheduler: {num_train_timesteps: 1000, beta_schedule: scaled_linear, beta_start: 0.00085, beta_end: 0.012,
            set_alpha_to_one: false, steps_offset: 1, clip_sample: false}
params: {seed: 3, memorized_prompts: 3, normal_prompts: 4, background_classes: 8}
"""


def _trace(args: list[str], *, processes: int, cwd: Path) -> subprocess.CompletedProcess:
    # One thread per process in both runs, so float64 sums round the same way.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("WORLD_SIZE", None)
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m"] if processes > 1 \
        else [sys.executable, "-m"]
    return subprocess.run([*launcher, "memharness", "trace", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=240)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
def test_two_processes_equal_one(tmp_path):
    card = tmp_path / "small.yaml"
    card.write_text(CARD)
    common = ["--model", str(card), "--steps", "5", "--seeds", "2", "--guidance", "1", "7.5"]
    two = _trace([*common, "--out", "two"], processes=2, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    one = _trace([*common, "--out", "one"], processes=1, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]

    assert not (tmp_path / "two" / ".shards").exists()  # merged, then dropped
    manifest_two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    manifest_one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    # Provenance says how each was made (processes, threads, command, date); everything else is the same.
    assert manifest_two["runs"]["ddim"].pop("provenance")["processes"] == 2
    assert "processes" not in manifest_one["runs"]["ddim"].pop("provenance")
    assert manifest_two == manifest_one  # with every file's sha256: the same bytes
    for entry in manifest_one["runs"]["ddim"]["files"].values():
        assert (tmp_path / "two" / entry["file"]).read_bytes() == (tmp_path / "one" / entry["file"]).read_bytes()


def test_shards_are_round_robin_and_cover_everything():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts[0] == [0, 3, 6, 9] and sorted(sum(parts, [])) == items
    assert shard(items[:1], 1, 2) == []


def test_merge_refuses_a_damaged_shard(tmp_path):
    from memharness.models import load_denoiser
    from memharness.trace.tracer import TraceSettings, trace
    from tests.helpers import small_card

    denoiser = load_denoiser(small_card())
    prompts = denoiser.prompts()
    settings = TraceSettings(num_inference_steps=3, guidance=(1.0,), seeds=(0, 1))
    for rank in range(2):
        trace(denoiser, shard_dir(tmp_path, rank, 2), settings, prompts=shard(prompts, rank, 2), prompt_set=f"s/{rank}")
    victim = next((shard_dir(tmp_path, 1, 2) / "ddim").glob("*.safetensors"))
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(MemharnessError, match="checksum mismatch while merging"):
        merge_shards(tmp_path, 2, sampler="ddim", model=denoiser.card.to_dict(),
                     prompts=[p.to_manifest() for p in prompts], prompt_set="s")
