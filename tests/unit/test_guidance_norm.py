"""‖ε_c − ε_u‖ (Wen et al.'s magnitude, §4) is recorded directly, not rebuilt from cancelling Gram entries (#17).

Rebuilt as ‖r_c‖² − 2⟨r_c, r_u⟩ + ‖r_u‖² (r = ε − x_T) from float32 Gram entries, it cancels where ε_c ≈ ε_u
(late steps); fixtures recorded before the array existed still read, through that reconstruction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from memharness.analysis import guidance_magnitude
from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.models import load_denoiser
from memharness.sampling import StepState
from memharness.trace import Fixture, Group, schema
from memharness.trace.recorder import TrajectoryRecorder
from tests.helpers import rewrite_arrays, small_card, trace_small

STEPS, SEEDS, DIM = 8, 4, 4096


def _cancelling_trajectory(seed: int) -> tuple[torch.Tensor, list[StepState], torch.Tensor]:
    """Float32 step states whose ε_c − ε_u shrinks from O(1) per entry to 1e-5 of ε_u − x_T (the late steps)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(DIM, generator=gen)
    x_t = torch.randn(SEEDS, DIM, generator=gen)
    states = []
    for s in range(STEPS):
        eps_u = torch.randn(SEEDS, DIM, generator=gen)
        gap = 10.0 ** -(5 * s / (STEPS - 1)) * torch.randn(SEEDS, DIM, generator=gen)
        x0_hat = x + torch.randn(SEEDS, DIM, generator=gen)
        states.append(StepState(step=s, t=999 - 100 * s, alpha_bar=0.5, alpha_bar_prev=0.5, guidance_scale=7.5,
                                x_t=x_t, eps_uncond=eps_u, eps_cond=eps_u + gap, x0_hat=x0_hat))
        x_t = 0.9 * x_t + 0.1 * states[-1].x0_hat
    return x, states, x_t


def _hand_group(arrays: dict[str, np.ndarray], with_uncond: bool = True) -> Group:
    """One prompt's recorder arrays as a group (P = 1), as a fixture would stack them."""
    return Group(sampler="ddim", guidance=7.5, timesteps=np.arange(STEPS), seeds=tuple(range(SEEDS)),
                 prompt_ids=("p",), with_uncond=with_uncond, arrays={k: v[None] for k, v in arrays.items()})


def test_recorded_norm_equals_direct_computation_where_the_gram_reconstruction_cancels():
    x, states, x_0 = _cancelling_trajectory(seed=7)
    recorder = TrajectoryRecorder(x, num_steps=STEPS, with_uncond=True)
    for state in states:
        recorder(state)
    arrays = recorder.finish(x_0)
    direct = torch.stack([(st.eps_cond.double() - st.eps_uncond.double()).norm(dim=1) for st in states], 1).numpy()
    assert arrays["guidance_norm"].shape == (SEEDS, STEPS)

    recorded = _hand_group(arrays).guidance_norms()[0]
    np.testing.assert_allclose(recorded, direct, rtol=1e-6)

    # The same group without the array (an older fixture) falls back to the Gram reconstruction,
    # which is fine at step 0 and wrong by far more than 1e-6 where ε_c ≈ ε_u: the case does cancel.
    old = _hand_group({k: v for k, v in arrays.items() if k != "guidance_norm"}).guidance_norms()[0]
    pairs = schema.step_pairs(True)
    gram = arrays["gram"].astype(np.float64)
    rebuilt = guidance_magnitude(*(gram[..., pairs.index(p)] for p in (
        ("eps_c_res", "eps_c_res"), ("eps_u_res", "eps_u_res"), ("eps_u_res", "eps_c_res"))))
    np.testing.assert_array_equal(old, rebuilt)
    error = np.abs(rebuilt - direct) / direct
    assert error[:, 0].max() < 1e-5
    assert error[:, -1].min() > 0.5, error[:, -1]


def test_no_array_at_g1_and_the_accessor_says_why():
    x, states, x_0 = _cancelling_trajectory(seed=1)
    recorder = TrajectoryRecorder(x, num_steps=STEPS, with_uncond=False)
    for state in states:
        recorder(dataclasses.replace(state, eps_uncond=None, guidance_scale=1.0))
    arrays = recorder.finish(x_0)
    assert "guidance_norm" not in arrays
    with pytest.raises(MemharnessError, match="g = 1"):
        _hand_group(arrays, with_uncond=False).guidance_norms()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    return trace_small(load_denoiser(small_card()), tmp_path_factory.mktemp("gn") / "fx", steps=6)


def _copy(fresh: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(fresh, tmp_path / "fx")
    return tmp_path / "fx"


def _files(root: Path, sampler: str) -> list[str]:
    return [entry["file"] for entry in Fixture(root).runs[sampler]["files"].values()]


def test_a_fresh_trace_records_the_norm_at_every_g_but_1(fresh):
    fixture = Fixture(fresh)
    fixture.verify()
    for sampler in fixture.runs:
        for g in fixture.guidance_scales(sampler):
            group = fixture.group(sampler, g)
            if g == 1.0:
                assert "guidance_norm" not in group.arrays
                continue
            recorded = group.arrays["guidance_norm"]
            assert recorded.shape == (len(group.prompt_ids), len(group.seeds), len(group.timesteps))
            np.testing.assert_array_equal(group.guidance_norms(), recorded.astype(np.float64))
            rebuilt = guidance_magnitude(group.inner("eps_c_res", "eps_c_res"), group.inner("eps_u_res", "eps_u_res"),
                                         group.inner("eps_u_res", "eps_c_res"))
            # At t = T, where nothing cancels, both ways agree.
            np.testing.assert_allclose(rebuilt[..., 0], recorded[..., 0], rtol=1e-4)


def _drop(arrays: dict) -> None:
    for key in [k for k in arrays if k.endswith("/guidance_norm")]:
        del arrays[key]


def test_a_fixture_without_the_array_still_checks_through_the_reconstruction(fresh, tmp_path, capsys):
    root = _copy(fresh, tmp_path)
    files = _files(root, "ddim")
    rewrite_arrays(root, files[0], _drop)  # one older file: the whole group reads without the array
    group = Fixture(root).group("ddim", 7.5)
    assert "guidance_norm" not in group.arrays
    np.testing.assert_array_equal(group.guidance_norms(), guidance_magnitude(
        group.inner("eps_c_res", "eps_c_res"), group.inner("eps_u_res", "eps_u_res"),
        group.inner("eps_u_res", "eps_c_res")))
    for sampler in ("ddim", "ddpm"):
        for rel in _files(root, sampler):
            rewrite_arrays(root, rel, _drop)
    capsys.readouterr()
    assert main(["check", "--fixtures", str(root)]) in (0, 1)
    assert "magnitude-explained" in capsys.readouterr().out


def test_a_wrong_shape_is_refused_naming_the_array(fresh, tmp_path):
    root = _copy(fresh, tmp_path)
    rel = _files(root, "ddim")[2]

    def widen(arrays: dict) -> None:
        arrays["g7.5/guidance_norm"] = np.ones((4, 7), dtype=np.float32)  # S + 1 columns

    rewrite_arrays(root, rel, widen)
    with pytest.raises(MemharnessError, match=r"g7\.5/guidance_norm has shape \(4, 7\), expected \(4, 6\)"):
        Fixture(root).group("ddim", 7.5)
