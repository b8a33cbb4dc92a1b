"""Property tests of the paper's analytic derivations on random valid schedules.

Each test names the equations it checks (Section 2, Section 3.3-3.4 and
Appendices D-E of "How Diffusion Models Memorize"). Schedules are
monotone non-decreasing β_t in (0, 1) given as ``trained_betas``; β are
scaled down when needed so that ᾱ_T ≥ e^-20 (the cosine schedule reaches
2.4e-9 ≈ e^-19.8): below that, float64 round-off in Eq 5's division by
√ᾱ_T, not the algebra, would decide the outcome.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from memharness.errors import MemharnessError
from memharness.schedule import PREDICTION_TYPES, NoiseSchedule
from memharness.schedule.prediction import epsilon_from_output, x0_from_output

MAX_NEG_LOG_ALPHA_BAR_T = 20.0
DIM = 16
EPS64 = float(np.finfo(np.float64).eps)

# database=None: keep Hypothesis from writing .hypothesis/ into the repository.
derivation_settings = settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def schedule_configs(draw, *, spacing=None):
    """A diffusers-style config with random monotone β (numpy from a drawn seed: fast)."""
    n = draw(st.integers(10, 1000))
    seed = draw(st.integers(0, 2**32 - 1))
    lo = draw(st.floats(1e-5, 0.5))
    hi = draw(st.floats(lo, 0.5))
    betas = np.sort(np.random.default_rng(seed).uniform(lo, hi, n))
    neg_log_alpha_bar_T = -np.log1p(-betas).sum()
    if neg_log_alpha_bar_T > MAX_NEG_LOG_ALPHA_BAR_T:
        # -log(1-β) is convex with value 0 at 0, so scaling β by c scales the sum by ≤ c.
        betas = betas * (MAX_NEG_LOG_ALPHA_BAR_T / neg_log_alpha_bar_T)
    return {
        "num_train_timesteps": n,
        "trained_betas": betas.tolist(),
        "set_alpha_to_one": draw(st.booleans()),
        "steps_offset": 0,
        "clip_sample": False,
        "timestep_spacing": spacing or draw(st.sampled_from(["leading", "trailing", "linspace"])),
    }


def _vectors(seed: int, k: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(DIM) for _ in range(k)]


def _assert_close(actual, expected, *, rtol=1e-9, atol=1e-9):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _exact_output(prediction_type: str, x, eps, alpha_bar: float):
    """The model output that would carry exactly ε and x (v = √ᾱ ε - √(1-ᾱ) x)."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "sample":
        return x
    return math.sqrt(alpha_bar) * eps - math.sqrt(1 - alpha_bar) * x


def _inference_grid(data, schedule: NoiseSchedule):
    """A num_inference_steps whose timesteps exist (diffusers' 'trailing' sometimes yields -1)."""
    n_inf = data.draw(st.integers(1, schedule.num_train_timesteps), label="num_inference_steps")
    try:
        ts = schedule.timesteps(n_inf)
    except MemharnessError:
        assume(False)
    return n_inf, ts


# ------------------------------------------------------------------- Eq 10


@derivation_settings
@given(
    cfg=schedule_configs(),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    prediction_type=st.sampled_from(PREDICTION_TYPES),
)
def test_eq10_loss_is_scaled_x0_error(cfg, data, seed, prediction_type):
    """Eq 10 / Appendix D.1 (Eq 15-18): with x_t from Eq 3 and x̂0 from Eq 5,
    ‖ε − ε_θ‖² = ‖√ᾱ_t/√(1−ᾱ_t)·(x̂0 − x)‖² for any prediction ε_θ (any output type)."""
    s = NoiseSchedule.from_config(cfg)
    t = data.draw(st.integers(0, s.num_train_timesteps - 1), label="t")
    ab = s.alpha_bar(t)
    x, eps, output = _vectors(seed, 3)
    output = output * data.draw(st.floats(0, 10), label="output scale")
    x_t = math.sqrt(ab) * x + math.sqrt(1 - ab) * eps  # Eq 3

    eps_theta = epsilon_from_output(output, x_t, ab, prediction_type)
    x0_hat = x0_from_output(output, x_t, ab, prediction_type)  # Eq 5
    scaled_error = math.sqrt(ab) / math.sqrt(1 - ab) * (x0_hat - x)

    # Round-off of x_t, amplified by 1/√ᾱ (Eq 5) and by 1/√(1-ᾱ) ("sample" outputs).
    atol = 64 * EPS64 * (1 + np.abs(output).max()) * (1 / math.sqrt(1 - ab) + 1 / math.sqrt(ab))
    _assert_close(scaled_error, eps - eps_theta, rtol=1e-9, atol=atol)
    loss = float(np.sum((eps - eps_theta) ** 2))  # Eq 6 / 15
    loss_eq18 = float(np.sum(scaled_error**2))
    assert abs(loss - loss_eq18) <= 1e-9 * loss + 2 * DIM * atol * (math.sqrt(loss) + atol)


# ------------------------------------------------------------------- Eq 13


@derivation_settings
@given(cfg=schedule_configs(), data=st.data(), seed=st.integers(0, 2**32 - 1), g=st.floats(0, 15))
def test_eq13_guidance_scales_x0_by_g(cfg, data, seed, g):
    """Eq 13 from Eq 11-12 and Eq 8: x̂0^(T) of the guided ε̃ is g·x.

    Exact when ε_u and ε_c are the zero-loss predictions of Eq 19 split into the
    part without x (x_T/√(1−ᾱ_T)) and with it (ε_c = ε). With the paper's
    rounded Eq 11 (ε_u = x_T, ε_c = x_T − s·x), x̂0 = g·x + c·x_T exactly, where
    c = (1 − √(1−ᾱ_T))/√ᾱ_T ≤ √ᾱ_T: the "≈" of Eq 13, vanishing with ᾱ_T.
    """
    s_ = NoiseSchedule.from_config(cfg)
    T = data.draw(st.integers(0, s_.num_train_timesteps - 1), label="T")
    ab_T = s_.alpha_bar(T)
    x, x_T = _vectors(seed, 2)
    s = math.sqrt(ab_T) / math.sqrt(1 - ab_T)  # Eq 11-12
    atol = 64 * EPS64 * (1 + g) * (np.abs(x_T).max() + np.abs(x).max()) / math.sqrt(ab_T)

    # Exact zero-loss split (Eq 19): ε = x_T/√(1−ᾱ_T) − s·x.
    eps_u = x_T / math.sqrt(1 - ab_T)
    eps_c = eps_u - s * x
    eps_guided = (1 - g) * eps_u + g * eps_c  # Eq 8
    _assert_close(x0_from_output(eps_guided, x_T, ab_T, "epsilon"), g * x, rtol=1e-9, atol=atol)

    # The paper's Eq 11 as written.
    eps_guided = (1 - g) * x_T + g * (x_T - s * x)  # Eq 8 with Eq 11
    _assert_close(eps_guided, x_T - g * s * x, rtol=1e-12, atol=atol)  # Eq 12
    c = (1 - math.sqrt(1 - ab_T)) / math.sqrt(ab_T)
    assert 0 <= c <= math.sqrt(ab_T) * (1 + 1e-12)
    _assert_close(x0_from_output(eps_guided, x_T, ab_T, "epsilon"), g * x + c * x_T, rtol=1e-9, atol=atol)


# ------------------------------------------------------------------- Eq 20


@derivation_settings
@given(
    cfg=schedule_configs(spacing="leading"),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    spacing=st.sampled_from(["leading", "trailing"]),
)
def test_eq20_exact_under_zero_loss_ddim(cfg, data, seed, spacing):
    """Eq 20 (Appendix D.2) under zero loss: the exact DDIM recursion (Eq 5 and 7)
    with ε_θ(x_t) = ε = (x_T − √ᾱ_T x)/√(1−ᾱ_T) (Eq 19), started from x_T at the
    first visited timestep T, passes through a_t·x + b_t·x_T at every visited t,
    (a_t, b_t) = eq20_weights (with the √(1−ᾱ_t) factor the printed Eq 20 drops);
    and |Eq 20 − Eq 21| ≤ √ᾱ_T/√(1−ᾱ_T) for x and ≤ 1/√(1−ᾱ_T) − 1 for x_T.

    Visited timesteps must be the levels DDIM steps to, which holds for 'leading'
    and for 'trailing' when num_inference_steps divides num_train_timesteps.
    """
    N = cfg["num_train_timesteps"]
    if spacing == "trailing":
        divisors = [d for d in range(1, N + 1) if N % d == 0]
        n_inf = data.draw(st.sampled_from(divisors), label="num_inference_steps")
        offset = 0
    else:
        n_inf = data.draw(st.integers(1, N), label="num_inference_steps")
        offset = data.draw(st.integers(0, N // n_inf - 1), label="steps_offset")  # keeps t < N
    s = NoiseSchedule.from_config({**cfg, "timestep_spacing": spacing, "steps_offset": offset})
    ts = s.timesteps(n_inf)
    T = int(ts[0])
    ab_T = s.alpha_bar(T)
    x, x_T = _vectors(seed, 2)
    eps = (x_T - math.sqrt(ab_T) * x) / math.sqrt(1 - ab_T)  # Eq 19

    visited = [*ts.tolist(), s.previous_timestep(int(ts[-1]), n_inf)]  # last: the clean state
    states = [x_T]
    for i, t in enumerate(ts.tolist()):
        prev = s.previous_timestep(t, n_inf)
        assert prev == visited[i + 1]
        ab_t = s.alpha_bar(t)
        x0_hat = x0_from_output(eps, states[-1], ab_t, "epsilon")  # Eq 5, ε_θ = ε
        ab_prev = s.alpha_bar_prev(t, n_inf, sampler="ddim")
        states.append(math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - ab_prev) * eps)  # Eq 7

    a, b = s.eq20_weights(np.array(visited), t_start=T)
    expected = a[:, None] * x + b[:, None] * x_T
    scale = np.abs(a)[:, None] * np.abs(x).max() + np.abs(b)[:, None] * np.abs(x_T).max()
    assert np.all(np.abs(np.array(states) - expected) <= 1e-8 * scale + 1e-12)

    w0, wT = s.theoretical_weights(np.array(visited))  # Eq 21
    assert np.all(np.abs(a - w0) <= math.sqrt(ab_T) / math.sqrt(1 - ab_T) + 1e-15)
    assert np.all(np.abs(b - wT) <= abs(1 / math.sqrt(1 - ab_T) - 1) + 1e-15)


# ------------------------------------------------------------------- Eq 25


@derivation_settings
@given(cfg=schedule_configs())
def test_eq25_identity(cfg):
    """Identity used between Eq 24 and Eq 25: (1−ᾱ_t) − β_t = α_t(1−ᾱ_{t−1}) for t ≥ 1."""
    s = NoiseSchedule.from_config(cfg)
    ab, beta = s.alphas_cumprod, s.betas
    alpha = 1 - beta
    np.testing.assert_allclose((1 - ab[1:]) - beta[1:], alpha[1:] * (1 - ab[:-1]), rtol=1e-10, atol=8 * EPS64)


@derivation_settings
@given(cfg=schedule_configs(spacing="leading"), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_eq22_to_eq25_one_ddpm_step(cfg, data, seed):
    """Eq 22-25 (Appendix E): one DDPM step with the exact ε,
    x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε)/√α_t + σ_t z, equals
    √ᾱ_{t−1} x + √α_t(1−ᾱ_{t−1})/√(1−ᾱ_t)·ε + σ_t z, with σ_t² = β̃_t (Eq 23),
    on the full (non-strided) schedule, where ᾱ_{−1} = 1."""
    s = NoiseSchedule.from_config(cfg)
    N = s.num_train_timesteps
    t = data.draw(st.integers(0, N - 1), label="t")
    ab_t = s.alpha_bar(t)
    ab_prev = s.alpha_bar_prev(t, N, sampler="ddpm")
    beta_t = float(s.betas[t])
    alpha_t = 1 - beta_t
    assert ab_prev == (float(s.alphas_cumprod[t - 1]) if t >= 1 else 1.0)

    var = s.ddpm_variance(t, N)
    eq23 = (1 - ab_prev) / (1 - ab_t) * beta_t
    assert abs(var - eq23) <= 1e-8 * eq23 + 1e-20  # strided β_t = Eq 1's β_t up to round-off
    sigma_t = math.sqrt(var)

    x, eps, z = _vectors(seed, 3)
    x_t = math.sqrt(ab_t) * x + math.sqrt(1 - ab_t) * eps  # Eq 3
    x_prev = (x_t - beta_t / math.sqrt(1 - ab_t) * eps) / math.sqrt(alpha_t) + sigma_t * z  # Eq 22
    eq24 = (
        math.sqrt(ab_t) / math.sqrt(alpha_t) * x
        + ((1 - ab_t) - beta_t) / (math.sqrt(alpha_t) * math.sqrt(1 - ab_t)) * eps
        + sigma_t * z
    )
    eq25 = math.sqrt(ab_prev) * x + math.sqrt(alpha_t) * (1 - ab_prev) / math.sqrt(1 - ab_t) * eps + sigma_t * z
    _assert_close(x_prev, eq24, rtol=1e-9, atol=1e-12)
    _assert_close(x_prev, eq25, rtol=1e-9, atol=1e-12)


# -------------------------------------------------------------------- Eq 7


@derivation_settings
@given(
    cfg=schedule_configs(),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    prediction_type=st.sampled_from(PREDICTION_TYPES),
)
def test_eq7_ddim_step_with_exact_noise_stays_on_eq3(cfg, data, seed, prediction_type):
    """Eq 7 with Eq 3 and Eq 5: a DDIM step fed the exact ε (as any output type)
    maps x_t = √ᾱ_t x + √(1−ᾱ_t) ε to √ᾱ_prev x + √(1−ᾱ_prev) ε, with ᾱ_prev
    from alpha_bar_prev (final_alpha_cumprod after the last step)."""
    s = NoiseSchedule.from_config(cfg)
    n_inf, ts = _inference_grid(data, s)
    t = int(data.draw(st.sampled_from(ts.tolist()), label="t"))
    ab_t = s.alpha_bar(t)
    ab_prev = s.alpha_bar_prev(t, n_inf, sampler="ddim")
    x, eps = _vectors(seed, 2)
    x_t = math.sqrt(ab_t) * x + math.sqrt(1 - ab_t) * eps  # Eq 3

    output = _exact_output(prediction_type, x, eps, ab_t)
    x0_hat = x0_from_output(output, x_t, ab_t, prediction_type)  # Eq 5
    eps_theta = epsilon_from_output(output, x_t, ab_t, prediction_type)
    x_prev = math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - ab_prev) * eps_theta  # Eq 7

    atol = 64 * EPS64 * (1 / math.sqrt(ab_t) + 1 / math.sqrt(1 - ab_t))
    _assert_close(x0_hat, x, rtol=1e-9, atol=atol)
    _assert_close(eps_theta, eps, rtol=1e-9, atol=atol)
    _assert_close(x_prev, math.sqrt(ab_prev) * x + math.sqrt(1 - ab_prev) * eps, rtol=1e-9, atol=atol)
