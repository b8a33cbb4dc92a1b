"""Guidance policies (App H's δ mitigation, Jain et al.'s transition points) in the sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memharness.analysis.detection import delta, detection_step, first_local_minimum, online_weights
from memharness.errors import FieldError, MemharnessError
from memharness.mitigation import ConstantGuidance, DeltaPolicy, JainDynamic, JainStatic, make_policy
from memharness.models import load_denoiser
from memharness.sampling import PolicyInput, sample
from tests.helpers import _Wrapped, small_card

SEEDS = (0, 1, 2, 3)
STEPS = 10
G = 7.5


@pytest.fixture(scope="module")
def denoiser():
    return load_denoiser(small_card())


def _run(denoiser, prompt, steps=STEPS, **kwargs):
    states = []
    result = sample(denoiser, denoiser.encode(prompt), seeds=SEEDS, guidance_scale=G, num_inference_steps=steps,
                    hooks=[states.append], **kwargs)
    return result, states


class Override(_Wrapped):
    """Where mask[seed, step]: the conditional output replaced by the unconditional one ("cond"), or the other
    way round ("uncond"). Sampled at g without a policy, Eq 8 then gives ε_u, or ε_c."""

    def __init__(self, inner, timesteps, mask, replace):
        super().__init__(inner)
        self.index = {int(t): i for i, t in enumerate(timesteps)}
        self.mask, self.replace = torch.as_tensor(mask), replace

    def model_output(self, x_t, t, cond, *, need_uncond):
        out_u, out_c = self.inner.model_output(x_t, t, cond, need_uncond=True)
        rows = self.mask[:, self.index[int(t)]].reshape(-1, *([1] * (x_t.dim() - 1)))
        if self.replace == "cond":
            return out_u, torch.where(rows, out_u, out_c)
        return torch.where(rows, out_c, out_u), out_c


def test_constant_policy_is_the_plain_sampler(denoiser):
    prompt = denoiser.prompts()[0]
    plain, plain_states = _run(denoiser, prompt)
    policy, states = _run(denoiser, prompt, guidance_policy=ConstantGuidance())
    assert torch.equal(policy.x_0, plain.x_0)
    assert torch.all(policy.guidance_used == G) and torch.all(plain.guidance_used == G)
    assert torch.equal(states[3].guidance_used, torch.full((len(SEEDS),), G, dtype=torch.float64))


# γ < 0 (δ > |γ|) gives later detection steps that differ between seeds; App H's γ = 0.2 fires at once here.
@pytest.mark.parametrize(("prompt_index", "gamma"), [(0, -0.8), (7, -0.5)])  # a memorized and a normal prompt
def test_delta_detects_at_the_first_state_over_minus_gamma(denoiser, prompt_index, gamma):
    """App H: detection at the first state ≥ 1 where δ(t) > −γ, δ of the online reference x̂0(t) at ρ² = d."""
    prompt = denoiser.prompts()[prompt_index]
    monitor = DeltaPolicy(gamma=gamma, mitigate=False)
    result, states = _run(denoiser, prompt, guidance_policy=monitor)
    assert torch.all(result.guidance_used == G)  # monitoring changes nothing
    d = float(np.prod(denoiser.card.latent_shape))
    x_T = states[0].x_t.reshape(len(SEEDS), -1)
    for s in states[1:]:
        x_t, r = s.x_t.reshape(len(SEEDS), -1), s.x0_hat.reshape(len(SEEDS), -1)

        def dot(a, b):
            return (a * b).sum(1).numpy()

        w0, wT = online_weights(dot(x_t, r), dot(x_t, x_T), dot(r, r), dot(r, x_T), dot(x_T, x_T), d)
        want = delta(w0, wT, s.alpha_bar ** 0.5, (1 - s.alpha_bar) ** 0.5)
        np.testing.assert_allclose(monitor.delta_per_step[:, s.step], want, rtol=1e-12, atol=1e-12)
    assert np.all(np.isnan(monitor.delta_per_step[:, 0]))
    expected = detection_step(monitor.delta_per_step, gamma=gamma)
    np.testing.assert_array_equal(monitor.switch_step, expected)
    assert len(set(expected.tolist())) > 1  # seeds differ: the switch is per seed

    mitigated = DeltaPolicy(gamma=gamma)
    result, _ = _run(denoiser, prompt, guidance_policy=mitigated)
    np.testing.assert_array_equal(mitigated.switch_step, expected)  # identical trajectories up to detection
    steps = np.arange(STEPS)[None, :]
    after = (expected[:, None] >= 0) & (steps >= expected[:, None])
    np.testing.assert_array_equal(result.guidance_used.numpy(), np.where(after, 0.0, G))
    # g = 0 exactly: the same as a run whose conditional output is the unconditional one from that step on.
    reference = Override(denoiser, result.timesteps, after, "cond")
    plain = sample(reference, denoiser.encode(prompt), seeds=SEEDS, guidance_scale=G, num_inference_steps=STEPS)
    assert torch.equal(result.x_0, plain.x_0)


def test_app_h_gamma_flags_memorized_seeds_and_lowers_similarity(denoiser):
    prompt = denoiser.prompts()[0]  # memorized
    x = denoiser.paired_latent(prompt).reshape(1, -1)
    # 20 steps: with 10, the first step at g = 7.5 alone already commits this model's trajectories to x.
    plain, _ = _run(denoiser, prompt, steps=20)
    policy = DeltaPolicy()
    mitigated, _ = _run(denoiser, prompt, steps=20, guidance_policy=policy)
    assert np.all(policy.switch_step >= 1)

    def cos(x_0):
        return torch.nn.functional.cosine_similarity(x_0.reshape(len(SEEDS), -1), x).mean()

    assert cos(plain.x_0) > 0.99 and cos(mitigated.x_0) < 0.5


def test_jain_static_switches_at_the_transition(denoiser):
    prompt = denoiser.prompts()[0]
    policy = JainStatic(transition_t=500)
    result, _ = _run(denoiser, prompt, guidance_policy=policy)
    t = np.array(result.timesteps)
    first = int(np.argmax(t <= 500))
    assert 0 < first < STEPS and t[first - 1] > 500
    np.testing.assert_array_equal(policy.switch_step, np.full(len(SEEDS), first))
    np.testing.assert_array_equal(result.guidance_used.numpy(), np.where(t > 500, 0.0, G)[None].repeat(len(SEEDS), 0))
    before = np.repeat((t > 500)[None], len(SEEDS), 0)
    plain = sample(Override(denoiser, result.timesteps, before, "cond"), denoiser.encode(prompt), seeds=SEEDS,
                   guidance_scale=G, num_inference_steps=STEPS)
    assert torch.equal(result.x_0, plain.x_0)
    never = JainStatic(transition_t=0)
    result, _ = _run(denoiser, prompt, guidance_policy=never)
    assert np.all(never.switch_step == -1) and torch.all(result.guidance_used == 0)


def _input(step: int, diff: torch.Tensor) -> PolicyInput:
    """A policy input whose ε_c − ε_u is ``diff`` (N, 1, 1, 1)."""
    zeros = torch.zeros_like(diff)
    return PolicyInput(step=step, t=999 - step, alpha_bar=0.5, alpha_bar_prev=0.6, guidance_scale=G, x_T=zeros,
                       x_t=zeros, eps_uncond=zeros, eps_cond=diff, x0_hat=zeros)


def _drive(policy, m: np.ndarray) -> np.ndarray:
    """Feed the policy ‖ε_c − ε_u‖ = m (N, S) step by step; the g it used, (N, S)."""
    policy.reset(m.shape[0], m.shape[1])
    return np.stack([policy(_input(s, torch.tensor(m[:, s]).reshape(-1, 1, 1, 1))).numpy()
                     for s in range(m.shape[1])], axis=1)


def test_jain_dynamic_switches_after_the_first_local_minimum():
    m = np.array([[5.0, 4.0, 3.0, 3.5, 1.0, 2.0],   # first local minimum at step 2: nominal g from step 3
                  [5.0, 4.0, 3.0, 2.0, 1.0, 0.5],   # never rises: g = 1 throughout
                  [1.0, 2.0, 0.5, 0.4, 0.3, 0.2]])  # minimum at step 0
    policy = make_policy("jain-dynamic")  # the first-rise reading the shipped fixtures recorded
    assert policy.rule == "first-rise" and policy.params() == {"start_guidance": 1.0}
    used = _drive(policy, m)
    np.testing.assert_allclose(policy.magnitude, m)
    np.testing.assert_array_equal(policy.switch_step, [3, -1, 1])
    rises = np.diff(m, axis=1) > 0
    np.testing.assert_array_equal(policy.switch_step[rises.any(1)], first_local_minimum(m)[rises.any(1)] + 1)
    want = np.where(np.arange(m.shape[1])[None] >= np.where(policy.switch_step < 0, 99, policy.switch_step)[:, None],
                    G, 1.0)
    np.testing.assert_array_equal(used, want)


def test_jain_dynamic_min_switches_only_at_a_strict_interior_minimum():
    """Jain et al.'s generate_test_dataset_dtp.py: m[k−2] > m[k−1] < m[k] switches at step k."""
    m = np.array([[5.0, 4.0, 3.0, 3.5, 1.0, 2.0],   # interior minimum at step 2: nominal g from step 3
                  [5.0, 4.0, 3.0, 2.0, 1.0, 0.5],   # only falls: never
                  [1.0, 2.0, 0.5, 0.4, 0.3, 0.2]],  # rises at step 1 (first-rise switches there): never
                 )
    m = np.concatenate([m, [[3.0, 2.0, 2.0, 2.5, 1.0, 1.5],    # a flat minimum is not strict: step 4's is
                            [1.0, 1.5, 2.0, 1.0, 3.0, 4.0]]])  # rises first, then a minimum at step 3
    policy = make_policy("jain-dynamic-min")
    assert policy.rule == "interior-minimum"
    assert policy.params() == {"start_guidance": 1.0, "rule": "interior-minimum"}
    used = _drive(policy, m)
    np.testing.assert_array_equal(policy.switch_step, [3, -1, -1, 5, 4])
    want = np.where(np.arange(m.shape[1])[None] >= np.where(policy.switch_step < 0, 99, policy.switch_step)[:, None],
                    G, 1.0)
    np.testing.assert_array_equal(used, want)
    first_rise = make_policy("jain-dynamic")
    _drive(first_rise, m)
    np.testing.assert_array_equal(first_rise.switch_step, [3, -1, 1, 3, 1])
    assert JainDynamic().rule == "interior-minimum"  # the class default is the authors' rule
    with pytest.raises(MemharnessError, match="rule"):
        JainDynamic(rule="nope")


def test_jain_static_takes_the_guidance_before_the_transition(denoiser):
    prompt = denoiser.prompts()[0]
    policy = make_policy("jain-static-neg", transition_t=500)
    assert policy.params() == {"transition_t": 500, "pre_guidance": -2.0}
    assert make_policy("jain-static").params() == {"transition_t": 800}  # as the shipped fixtures recorded it
    result, _ = _run(denoiser, prompt, guidance_policy=policy)
    t = np.array(result.timesteps)
    np.testing.assert_array_equal(result.guidance_used.numpy(),
                                  np.where(t > 500, -2.0, G)[None].repeat(len(SEEDS), 0))
    first = int(np.argmax(t <= 500))
    np.testing.assert_array_equal(policy.switch_step, np.full(len(SEEDS), first))
    with pytest.raises(MemharnessError, match="pre_guidance"):
        JainStatic(pre_guidance=float("nan"))


def test_jain_dynamic_in_the_sampler(denoiser):
    prompt = denoiser.prompts()[0]
    policy = JainDynamic(rule="first-rise")
    result, states = _run(denoiser, prompt, guidance_policy=policy)
    seen = np.stack([(s.eps_cond - s.eps_uncond).reshape(len(SEEDS), -1).norm(dim=1).numpy() for s in states], 1)
    np.testing.assert_allclose(policy.magnitude, seen, rtol=1e-12)
    k = policy.switch_step
    assert np.all(k >= 1)
    np.testing.assert_array_equal(k, first_local_minimum(seen) + 1)
    steps = np.arange(STEPS)[None, :]
    np.testing.assert_array_equal(result.guidance_used.numpy(), np.where(steps >= k[:, None], G, 1.0))
    # g = 1 before the switch: ε_c alone (up to rounding of ε_u + 1·(ε_c − ε_u)).
    plain = sample(Override(denoiser, result.timesteps, steps < k[:, None], "uncond"), denoiser.encode(prompt),
                   seeds=SEEDS, guidance_scale=G, num_inference_steps=STEPS)
    torch.testing.assert_close(result.x_0, plain.x_0, rtol=1e-9, atol=1e-9)


def test_policy_computes_both_predictions_at_g_1(denoiser):
    seen = []
    sample(denoiser, denoiser.encode(denoiser.prompts()[0]), seeds=SEEDS, guidance_scale=1.0, num_inference_steps=3,
           guidance_policy=ConstantGuidance(), hooks=[seen.append])
    assert all(s.eps_uncond is not None for s in seen)


def test_bad_policy_output_and_names_are_one_line_errors(denoiser):
    with pytest.raises(MemharnessError, match="guidance_policy"):
        sample(denoiser, denoiser.encode(denoiser.prompts()[0]), seeds=SEEDS, guidance_scale=G, num_inference_steps=2,
               guidance_policy=_BadPolicy())
    with pytest.raises(FieldError, match="^methods: "):
        make_policy("nope")
    with pytest.raises(FieldError, match="^gamma: "):
        DeltaPolicy(gamma=float("nan"))


class _BadPolicy:
    def reset(self, num_seeds, num_steps):
        pass

    def __call__(self, state):
        return torch.ones(2)
