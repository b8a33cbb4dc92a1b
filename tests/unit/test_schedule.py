"""memharness.schedule against diffusers' DDIMScheduler / DDPMScheduler.

diffusers computes in float32; our schedule is float64, so ᾱ agrees to ~1e-6
relative. Where the test is about formulas and indexing rather than precision,
diffusers' own float32 ᾱ tensor is fed to our functions and results must match
bit for bit.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from memharness.errors import MemharnessError
from memharness.schedule import (
    PREDICTION_TYPES,
    NoiseSchedule,
    alpha_bar_of_state,
)
from memharness.schedule.prediction import epsilon_from_output, x0_from_output

torch = pytest.importorskip("torch")
schedulers = pytest.importorskip("diffusers.schedulers")
DDIMScheduler = schedulers.DDIMScheduler
DDPMScheduler = schedulers.DDPMScheduler

# Stable Diffusion v1.4's scheduler_config.json, plus the clip_sample the harness requires.
SD_RAW = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
SD = {**SD_RAW, "clip_sample": False}
LINEAR = {
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "clip_sample": False,
}
COSINE = {
    "beta_schedule": "squaredcos_cap_v2",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "steps_offset": 0,
    "clip_sample": False,
}
CONFIGS = {"sd": SD, "linear": LINEAR, "cosine": COSINE}
SPACINGS = ("leading", "trailing", "linspace")
STEPS = (10, 50, 1000)
F32_EPS = float(np.finfo(np.float32).eps)


def _cfg(name: str, **extra) -> dict:
    return {**CONFIGS[name], **extra}


def _diffusers_timesteps(cls, config: dict, n: int) -> np.ndarray:
    sched = cls.from_config(config)
    sched.set_timesteps(n)
    return sched.timesteps.numpy()


def _valid(config: dict, n: int) -> bool:
    ts = _diffusers_timesteps(DDIMScheduler, config, n)
    return ts.size == n and ts.min() >= 0 and ts.max() < config["num_train_timesteps"]


config_names = pytest.mark.parametrize("name", sorted(CONFIGS))
spacings = pytest.mark.parametrize("spacing", SPACINGS)
steps = pytest.mark.parametrize("n", STEPS)


# ----------------------------------------------------------------- schedule


@config_names
def test_betas_and_alphas_cumprod_match_diffusers(name):
    ours = NoiseSchedule.from_config(CONFIGS[name])
    theirs = DDIMScheduler.from_config(CONFIGS[name])
    assert ours.betas.dtype == np.float64 and ours.alphas_cumprod.dtype == np.float64
    assert ours.betas.shape == ours.alphas_cumprod.shape == (1000,)
    np.testing.assert_allclose(ours.betas, theirs.betas.double().numpy(), rtol=1e-6)
    # atol: the cosine schedule caps β at 0.999, and float32 1 - β keeps only ~4 digits there.
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.double().numpy(), rtol=1e-6, atol=1e-12)
    assert ours.final_alpha_cumprod == pytest.approx(float(theirs.final_alpha_cumprod), rel=1e-6)


def test_final_alpha_cumprod_follows_set_alpha_to_one():
    assert NoiseSchedule.from_config(LINEAR).final_alpha_cumprod == 1.0
    sd = NoiseSchedule.from_config(SD)
    assert sd.final_alpha_cumprod == sd.alphas_cumprod[0] < 1.0


def test_trained_betas_take_precedence():
    betas = np.linspace(1e-4, 0.02, 20)
    cfg = {"num_train_timesteps": 20, "trained_betas": betas.tolist(), "set_alpha_to_one": True, "steps_offset": 0}
    ours = NoiseSchedule.from_config({**cfg, "beta_schedule": "nonsense"})
    np.testing.assert_array_equal(ours.betas, betas)
    np.testing.assert_allclose(ours.alphas_cumprod, np.cumprod(1 - betas), rtol=0)


def test_arrays_are_read_only():
    s = NoiseSchedule.from_config(SD)
    with pytest.raises(ValueError):
        s.betas[0] = 0.5
    with pytest.raises(ValueError):
        s.alphas_cumprod[0] = 0.5


def test_schedule_module_does_not_import_torch():
    code = "import sys, memharness.schedule; sys.exit('torch' in sys.modules or 'diffusers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------- timesteps


@config_names
@spacings
@steps
def test_timesteps_match_ddim_and_ddpm(name, spacing, n):
    cfg = _cfg(name, timestep_spacing=spacing)
    ours = NoiseSchedule.from_config(cfg)
    ddim = _diffusers_timesteps(DDIMScheduler, cfg, n)
    ddpm = _diffusers_timesteps(DDPMScheduler, cfg, n)
    np.testing.assert_array_equal(ddim, ddpm)
    if not _valid(cfg, n):
        # SD ("leading", steps_offset=1) at 1000 steps: diffusers yields t=1000, past ᾱ.
        assert (name, spacing, n) == ("sd", "leading", 1000)
        assert ddim.max() == 1000
        with pytest.raises(MemharnessError, match="num_inference_steps"):
            ours.timesteps(n)
        return
    ts = ours.timesteps(n)
    assert ts.dtype == np.int64
    np.testing.assert_array_equal(ts, ddim)
    assert np.all(np.diff(ts) < 0)


def test_trailing_float_arange_extra_step_is_rejected():
    # np.arange(1000, 0, -1000/61) has 62 entries, the last giving t = -1 in diffusers.
    cfg = _cfg("linear", timestep_spacing="trailing")
    assert _diffusers_timesteps(DDIMScheduler, cfg, 61).size == 62
    with pytest.raises(MemharnessError, match="num_inference_steps=61"):
        NoiseSchedule.from_config(cfg).timesteps(61)


@pytest.mark.parametrize("n", [0, -3, 1001, 2.5, True])
def test_timesteps_validates_num_inference_steps(n):
    with pytest.raises(MemharnessError, match="num_inference_steps"):
        NoiseSchedule.from_config(SD).timesteps(n)


def test_linspace_ddim_steps_to_a_level_that_is_not_the_next_timestep():
    # diffusers' DDIM always strides by num_train_timesteps // n; its DDPM walks the list.
    s = NoiseSchedule.from_config(_cfg("linear", timestep_spacing="linspace"))
    ts = s.timesteps(10)
    assert ts[:2].tolist() == [999, 888]
    assert s.previous_timestep(999, 10) == 899
    assert s.previous_timestep(999, 10, sampler="ddpm") == 888
    assert s.previous_timestep(0, 10, sampler="ddpm") == -1
    with pytest.raises(MemharnessError, match="t=998"):
        s.previous_timestep(998, 10, sampler="ddpm")


# ------------------------------------------------------------------ ᾱ_prev


def _ddim_alpha_prev_from_step(sched, t: int) -> float:
    """ᾱ_prev as DDIMScheduler.step really uses it: ε=0, x=1 gives x_prev = √ᾱ_prev/√ᾱ_t."""
    x = torch.ones(1, dtype=torch.float64)
    out = sched.step(torch.zeros(1, dtype=torch.float64), int(t), x, eta=0.0)
    return float(out.prev_sample[0]) ** 2 * float(sched.alphas_cumprod[t])


@config_names
@spacings
@steps
def test_alpha_bar_prev_matches_ddim_step(name, spacing, n):
    cfg = _cfg(name, timestep_spacing=spacing)
    if not _valid(cfg, n):
        pytest.skip("diffusers timesteps leave [0, num_train_timesteps)")
    ours = NoiseSchedule.from_config(cfg)
    sched = DDIMScheduler.from_config(cfg)
    sched.set_timesteps(n)
    ts = ours.timesteps(n)
    # Reading step() costs ~100 µs; the stride logic is the same at every t.
    probe = ts if n <= 50 else np.concatenate([ts[:5], ts[-5:]])
    for t in probe:
        t = int(t)
        prev = t - 1000 // n
        assert ours.previous_timestep(t, n) == prev
        expected = sched.alphas_cumprod[prev] if prev >= 0 else sched.final_alpha_cumprod
        got = ours.alpha_bar_prev(t, n, sampler="ddim")
        assert got == pytest.approx(float(expected), rel=1e-6)
        assert got == pytest.approx(_ddim_alpha_prev_from_step(sched, t), rel=2e-6)
    last = int(ts[-1])
    assert ours.alpha_bar_prev(last, n, sampler="ddim") == ours.final_alpha_cumprod


def _ddpm_with_our_alphas(cfg: dict, ours: NoiseSchedule, n: int):
    sched = DDPMScheduler.from_config(cfg)
    sched.set_timesteps(n)
    sched.alphas_cumprod = torch.from_numpy(ours.alphas_cumprod.copy())
    sched.one = torch.tensor(1.0, dtype=torch.float64)
    return sched


@config_names
@spacings
@steps
def test_ddpm_alpha_bar_prev_and_variance_match(name, spacing, n):
    cfg = _cfg(name, timestep_spacing=spacing)
    if not _valid(cfg, n):
        pytest.skip("diffusers timesteps leave [0, num_train_timesteps)")
    ours = NoiseSchedule.from_config(cfg)
    sched = DDPMScheduler.from_config(cfg)
    sched.set_timesteps(n)
    # Same ᾱ in float64: isolates indexing and formula from float32 rounding.
    exact = _ddpm_with_our_alphas(cfg, ours, n)
    ts = ours.timesteps(n)
    probe = ts if n <= 50 else np.concatenate([ts[:20], ts[-20:]])
    for t in probe:
        t = int(t)
        prev = int(sched.previous_timestep(t))
        assert ours.previous_timestep(t, n, sampler="ddpm") == prev
        expected_prev = float(sched.alphas_cumprod[prev]) if prev >= 0 else 1.0
        assert ours.alpha_bar_prev(t, n, sampler="ddpm") == pytest.approx(expected_prev, rel=1e-6)

        var = ours.ddpm_variance(t, n)
        assert var == pytest.approx(float(exact._get_variance(t)), rel=1e-12)
        # Against float32 diffusers: 1e-5, widened by the float32 cancellation in
        # 1 - ᾱ_prev (ᾱ_prev near 1) and in the strided β_t = 1 - ᾱ_t/ᾱ_prev.
        ab_prev = ours.alpha_bar_prev(t, n, sampler="ddpm")
        beta_t = 1 - ours.alpha_bar(t) / ab_prev
        if ab_prev < 1.0:
            tol = 1e-5 + 4 * F32_EPS * (1 / (1 - ab_prev) + 1 / beta_t)
            assert var == pytest.approx(float(sched._get_variance(t)), rel=tol)
    assert ours.ddpm_variance(int(ts[-1]), n) == 1e-20  # ᾱ_prev = 1 → β̃ = 0, clamped


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_full_ddpm_variance_is_eq23(name):
    s = NoiseSchedule.from_config(CONFIGS[name])
    ab = s.alphas_cumprod
    for t in (1, 2, 500, 999):
        expected = (1 - ab[t - 1]) / (1 - ab[t]) * s.betas[t]  # Eq 23 with Eq 1's β_t
        assert s.ddpm_variance(t, 1000) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------- x̂0 and ε vs step


@config_names
@spacings
@pytest.mark.parametrize("n", [10, 50])
@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_conversions_match_ddim_step(name, spacing, n, prediction_type):
    cfg = _cfg(name, timestep_spacing=spacing, prediction_type=prediction_type)
    ours = NoiseSchedule.from_config(cfg)
    assert ours.prediction_type == prediction_type
    sched = DDIMScheduler.from_config(cfg)
    assert sched.config.clip_sample is False
    sched.set_timesteps(n)
    # diffusers keeps ᾱ in float32 even for float64 samples, which alone moves x̂0
    # by up to ~1e-4 relative (1 - ᾱ near 1, tiny ᾱ_T). A twin scheduler with our
    # float64 ᾱ isolates the conversion formulas from that rounding.
    sched64 = DDIMScheduler.from_config(cfg)
    sched64.set_timesteps(n)
    sched64.alphas_cumprod = torch.from_numpy(ours.alphas_cumprod.copy())
    sched64.final_alpha_cumprod = torch.tensor(ours.final_alpha_cumprod, dtype=torch.float64)
    gen = torch.Generator().manual_seed(sum(map(ord, name + spacing + prediction_type)) + n)
    for t in ours.timesteps(n):
        t = int(t)
        output = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64)
        x_t = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64)
        res = sched.step(output, t, x_t, eta=0.0)
        res64 = sched64.step(output, t, x_t, eta=0.0)

        x0 = x0_from_output(output, x_t, ours.alpha_bar(t), prediction_type)
        assert isinstance(x0, torch.Tensor) and x0.dtype == torch.float64
        torch.testing.assert_close(x0, res64.pred_original_sample, rtol=1e-6, atol=1e-6)
        eps = epsilon_from_output(output, x_t, ours.alpha_bar(t), prediction_type)
        ab_prev = ours.alpha_bar_prev(t, n, sampler="ddim")
        torch.testing.assert_close(
            ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps, res64.prev_sample, rtol=1e-6, atol=1e-6
        )  # Eq 7

        # Same float32 ᾱ tensor as diffusers: same operations, same bits.
        ab = sched.alphas_cumprod[t]
        x0_exact = x0_from_output(output, x_t, ab, prediction_type)
        assert torch.equal(x0_exact, res.pred_original_sample)
        eps_exact = epsilon_from_output(output, x_t, ab, prediction_type)
        prev = t - 1000 // n
        ab_prev = sched.alphas_cumprod[prev] if prev >= 0 else sched.final_alpha_cumprod
        prev_sample = ab_prev ** (0.5) * x0_exact + (1 - ab_prev) ** (0.5) * eps_exact  # Eq 7
        torch.testing.assert_close(prev_sample, res.prev_sample, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("alpha_kind", ["float", "np.float64", "array"])
def test_conversions_on_numpy(prediction_type, alpha_kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2, 2))
    eps = rng.standard_normal((3, 4, 2, 2))
    ab_values = np.array([0.9, 0.3, 0.0047]).reshape(3, 1, 1, 1)
    alpha_bar = {
        "float": 0.3,
        "np.float64": np.float64(0.3),
        "array": ab_values,
    }[alpha_kind]
    ab = np.broadcast_to(np.asarray(alpha_bar, dtype=np.float64), (3, 1, 1, 1))
    x_t = np.sqrt(ab) * x + np.sqrt(1 - ab) * eps  # Eq 3
    output = {
        "epsilon": eps,
        "sample": x,
        "v_prediction": np.sqrt(ab) * eps - np.sqrt(1 - ab) * x,
    }[prediction_type]
    x0 = x0_from_output(output, x_t, alpha_bar, prediction_type)
    e = epsilon_from_output(output, x_t, alpha_bar, prediction_type)
    assert isinstance(x0, np.ndarray) and isinstance(e, np.ndarray)
    np.testing.assert_allclose(x0, x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(e, eps, rtol=1e-9, atol=1e-9)


def test_conversion_rejects_unknown_prediction_type():
    with pytest.raises(MemharnessError, match="prediction_type"):
        x0_from_output(np.zeros(2), np.zeros(2), 0.5, "flow")
    with pytest.raises(MemharnessError, match="prediction_type"):
        epsilon_from_output(np.zeros(2), np.zeros(2), 0.5, "flow")


# ------------------------------------------------------------ clip_sample pitfall


def test_diffusers_ddim_clips_sd_config_by_default_but_we_do_not():
    # SD's config has no clip_sample key; DDIMScheduler then defaults to clip_sample=True.
    sched = DDIMScheduler.from_config(SD_RAW)
    assert sched.config.clip_sample is True
    sched.set_timesteps(50)
    t = int(sched.timesteps[0])
    x_t = torch.full((1, 4, 2, 2), 1.0, dtype=torch.float64)
    output = torch.full((1, 4, 2, 2), -1.0, dtype=torch.float64)  # x̂0 ≈ (1 + 1)/0.07 ≈ 29
    clipped = sched.step(output, t, x_t, eta=0.0).pred_original_sample
    assert float(clipped.max()) <= 1.0

    ours = NoiseSchedule.from_config(SD_RAW)  # missing clip_sample is fine: we never clip
    x0 = x0_from_output(output, x_t, ours.alpha_bar(t), ours.prediction_type)
    assert float(x0.min()) > 20.0


@pytest.mark.parametrize("key", ["clip_sample", "thresholding"])
def test_clipping_configs_are_rejected(key):
    with pytest.raises(MemharnessError, match=key):
        NoiseSchedule.from_config({**SD, key: True})


# ------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    "key", ["num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "set_alpha_to_one", "steps_offset"]
)
def test_missing_required_key(key):
    cfg = dict(SD)
    del cfg[key]
    with pytest.raises(MemharnessError, match=key):
        NoiseSchedule.from_config(cfg)


def test_null_required_key_counts_as_missing():
    with pytest.raises(MemharnessError, match="steps_offset"):
        NoiseSchedule.from_config({**SD, "steps_offset": None})


def test_keys_not_needed_by_the_schedule_may_be_missing():
    cosine = {k: v for k, v in COSINE.items() if k not in ("beta_start", "beta_end")}
    NoiseSchedule.from_config(cosine)
    trained = {
        "num_train_timesteps": 3,
        "trained_betas": [0.1, 0.2, 0.3],
        "set_alpha_to_one": False,
        "steps_offset": 0,
    }
    s = NoiseSchedule.from_config(trained)
    assert s.prediction_type == "epsilon" and s.timestep_spacing == "leading"


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"beta_schedule": "sigmoid"}, "beta_schedule"),
        ({"prediction_type": "flow"}, "prediction_type"),
        ({"timestep_spacing": "karras"}, "timestep_spacing"),
        ({"rescale_betas_zero_snr": True}, "rescale_betas_zero_snr"),
        ({"trained_betas": [0.1, 0.2]}, "trained_betas"),
        ({"trained_betas": [0.5] * 999 + [1.0]}, "betas"),
        ({"num_train_timesteps": 0}, "num_train_timesteps"),
        ({"num_train_timesteps": 1000.5}, "num_train_timesteps"),
        ({"steps_offset": -1}, "steps_offset"),
        ({"set_alpha_to_one": "no"}, "set_alpha_to_one"),
    ],
)
def test_bad_config_values(patch, match):
    with pytest.raises(MemharnessError, match=match):
        NoiseSchedule.from_config({**SD, **patch})


def test_error_messages_are_one_line():
    for cfg in ({**SD, "clip_sample": True}, {k: v for k, v in SD.items() if k != "steps_offset"}):
        with pytest.raises(MemharnessError) as info:
            NoiseSchedule.from_config(cfg)
        assert "\n" not in str(info.value)


# ------------------------------------------------------- ᾱ lookups, weights


def test_alpha_bar_does_not_wrap_negative_indices():
    s = NoiseSchedule.from_config(SD)
    assert s.alpha_bar(999) == s.alphas_cumprod[999]
    for t in (-1, 1000):
        with pytest.raises(MemharnessError, match="outside"):
            s.alpha_bar(t)


def test_theoretical_weights_final_state_convention():
    s = NoiseSchedule.from_config(SD)
    ts = np.array([981, 1, -19])
    w0, wT = s.theoretical_weights(ts)
    np.testing.assert_allclose(w0[:2], np.sqrt(s.alphas_cumprod[[981, 1]]), rtol=0)
    np.testing.assert_allclose(wT[:2], np.sqrt(1 - s.alphas_cumprod[[981, 1]]), rtol=0)
    # After DDIM's last step: ᾱ_prev = final_alpha_cumprod = ᾱ_0 (set_alpha_to_one=False).
    assert w0[2] == np.sqrt(s.final_alpha_cumprod)
    assert 0.02 < wT[2] == np.sqrt(1 - s.final_alpha_cumprod) < 0.04
    assert s.alpha_bar_prev(1, 50, sampler="ddim") == alpha_bar_of_state(s, -19)
    w0, wT = s.theoretical_weights([-1], sampler="ddpm")
    assert (w0[0], wT[0]) == (1.0, 0.0)


def test_eq20_weights_and_the_printed_typo():
    s = NoiseSchedule.from_config(SD)
    ts = s.timesteps(50)
    T = int(ts[0])
    a, b = s.eq20_weights(ts, t_start=T)
    assert a[0] == pytest.approx(0.0, abs=1e-15) and b[0] == pytest.approx(1.0, rel=1e-15)
    ab_T = s.alpha_bar(T)
    printed_a_T = np.sqrt(ab_T) - np.sqrt(ab_T) / np.sqrt(1 - ab_T)  # Eq 20 as printed
    assert abs(printed_a_T) > 1e-4  # would claim x_T holds x; Eq 3 says it does not
    w0, wT = s.theoretical_weights(ts)
    assert np.max(np.abs(a - w0)) < np.sqrt(ab_T / (1 - ab_T))
    assert np.max(np.abs(b - wT)) < 1 / np.sqrt(1 - ab_T) - 1 + 1e-15
