"""benchmarks/: the quick run prints its four-row table, and the synthetic fixture is what the recorder records."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
ROWS = ["a. fixture size", "b. memharness check", "c. recording overhead", "d. projection, SD v1.4 study"]


@pytest.fixture(scope="module")
def synthetic():
    """benchmarks/synthetic.py, loaded from its file (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("memharness_benchmarks_synthetic", BENCHMARKS / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_prints_the_four_rows(tmp_path):
    report = tmp_path / "bench.json"
    work = tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--workdir", str(work), "--json", str(report)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in lines[1:]] == ROWS, proc.stdout
    for key in ("cpu", "cores", "ram", "python", "torch"):
        assert re.search(rf"^  {key}\s+\S", proc.stdout, re.M), f"machine line {key!r} missing"

    results = json.loads(report.read_text())
    assert [row["benchmark"] for row in results["rows"]] == ROWS
    assert results["fixture"]["bytes"] > 0 and results["fixture"]["memorized"] >= 5
    # The claims ran on the synthetic fixture (labels in both groups), not just skipped.
    summary = results["check"]["summary"]
    assert re.match(r"\d+ claims: (\d+) PASS", summary) and int(re.match(r"\d+ claims: (\d+)", summary)[1]) >= 10
    assert all(o["ratio"] > 0 for o in results["overhead"])
    assert results["projection"]["unet_evaluations"] == 436 * 60 * 50 * 3
    assert not any(work.iterdir()), "the synthetic fixture was not cleaned up"


def test_paper_scale_size_is_linear_in_prompts(synthetic, tmp_path):
    """Bytes per prompt at the paper's seeds and steps: 436 prompts stay far under 500 MB."""
    scale = synthetic.Scale(prompts=2)
    stats = synthetic.write_synthetic_fixture(tmp_path / "fx", scale)
    per_prompt = sum(stats.per_run_bytes.values()) / scale.prompts
    assert 550e3 < per_prompt < 650e3  # DDIM 461 KB + DDPM 144 KB (docs/models.md: Disk)
    assert per_prompt * synthetic.PAPER.prompts < 300e6


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("g", [1.0, 7.5])
def test_synthetic_arrays_equal_the_recorder_on_real_vectors(synthetic, sampler, g):
    """Materialise the synthetic model's vectors in R^D, run memharness' recorder on them, and compare:
    the generator's Gram-matrix shortcut must give the recorder's arrays."""
    import torch

    from memharness.sampling import StepState
    from memharness.schedule import NoiseSchedule
    from memharness.trace.recorder import TrajectoryRecorder

    scale = synthetic.Scale(prompts=1, ddim_seeds=5, ddpm_seeds=3, steps=6)
    schedule = NoiseSchedule.from_config(synthetic._card()["scheduler"])
    timesteps = schedule.timesteps(scale.steps)
    basis_size, seed_index = synthetic._seed_index(scale)
    rng = np.random.default_rng(1)
    basis = rng.standard_normal((basis_size, 512))  # the basis vectors themselves, D = 512
    coef = synthetic.coefficient_trajectory(schedule, timesteps, sampler=sampler, g=g, s=0.2, r=1.1)
    expected = synthetic.group_arrays(coef, basis @ basis.T, seed_index[sampler], with_uncond=g != 1.0)

    def vectors(c: np.ndarray) -> torch.Tensor:  # (…, K) per-seed coefficients → (N, …, D)
        return torch.from_numpy(np.stack([c @ basis[ix] for ix in seed_index[sampler]]))

    x_t, x0_err, eps_u_res, eps_c_res = (vectors(coef[k]) for k in ("x_t", "x0_err", "eps_u_res", "eps_c_res"))
    x = torch.from_numpy(coef["x"] @ basis[seed_index[sampler][0]])
    x_T = x_t[:, 0]
    recorder = TrajectoryRecorder(x, num_steps=scale.steps, with_uncond=g != 1.0)
    for s, t in enumerate(timesteps):
        recorder(StepState(step=s, t=int(t), alpha_bar=0.5, alpha_bar_prev=0.5, guidance_scale=g, x_t=x_t[:, s],
                           eps_uncond=eps_u_res[:, s] + x_T if g != 1.0 else None, eps_cond=eps_c_res[:, s] + x_T,
                           x0_hat=x0_err[:, s] + x))
    recorded = recorder.finish(x_t[:, scale.steps])
    assert set(recorded) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(value, recorded[name], rtol=2e-5, atol=1e-4, err_msg=name)


@pytest.fixture(scope="module")
def bench_run():
    """benchmarks/run.py, loaded from its file."""
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("memharness_benchmarks_run", BENCHMARKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_prompts_mode_prints_one_row_per_size(tmp_path):
    report = tmp_path / "scaling.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--prompts", "3", "6", "--check-repeats", "1",
         "--workdir", str(tmp_path / "work"), "--json", str(report)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    assert rows == ["3", "6"], proc.stdout
    results = json.loads(report.read_text())["scaling"]
    assert set(results) == {"3", "6"}
    assert all(r["fixture_bytes"] > 0 and r["max_rss_bytes"] > 0 and r["median_wall_s"] > 0 for r in results.values())
    assert results["6"]["fixture_bytes"] > results["3"]["fixture_bytes"]


def test_replicated_fixture_is_a_valid_fixture_of_k_times_the_prompts(synthetic, bench_run, tmp_path):
    from memharness.trace.store import Fixture

    synthetic.write_synthetic_fixture(tmp_path / "base", synthetic.Scale(prompts=2, ddim_seeds=3, ddpm_seeds=2,
                                                                          steps=4))
    bench_run.replicate_fixture(tmp_path / "base", tmp_path / "x3", 3)
    fixture = Fixture(tmp_path / "x3")
    assert len(fixture.prompts) == 6 and not fixture.incomplete_runs()
    fixture.verify()  # checksums, shapes, finiteness of every group
    base = Fixture(tmp_path / "base").group("ddim", 7.5).inner("x0_err", "x")
    np.testing.assert_array_equal(fixture.group("ddim", 7.5).inner("x0_err", "x"), np.concatenate([base] * 3))


def test_recorder_benchmark_quick_run_prints_its_table():
    """benchmarks/recorder.py --quick: both parts run (subprocesses) and the table names time and memory."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "recorder.py"), "--quick"], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows] == ["quantity", "time", "extra memory"]
    assert re.search(r"UNet per sample \(batch b\): b=1: [\d.]+ s, \d+ MiB activations, b=2:", done.stdout)
