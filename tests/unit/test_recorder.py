"""The recorder's reductions equal the same quantities recomputed from full float64 latents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memharness.analysis import decomposition_weights
from memharness.models import load_denoiser
from memharness.sampling import sample
from memharness.trace import schema
from memharness.trace.recorder import TrajectoryRecorder
from tests.helpers import small_card

REL = 1e-5


class FullLog:
    """Keeps every vector of the trajectory in float64, the reference the recorder is checked against."""

    def __init__(self):
        self.x_t, self.x0_hat, self.eps_u, self.eps_c = [], [], [], []

    def __call__(self, state):
        n = state.x_t.shape[0]
        self.x_t.append(state.x_t.reshape(n, -1).double().clone())
        self.x0_hat.append(state.x0_hat.reshape(n, -1).double().clone())
        self.eps_c.append(state.eps_cond.reshape(n, -1).double().clone())
        if state.eps_uncond is not None:
            self.eps_u.append(state.eps_uncond.reshape(n, -1).double().clone())


def _record(guidance: float, sampler: str):
    denoiser = load_denoiser(small_card())
    prompt = denoiser.prompts()[0]
    x = denoiser.paired_latent(prompt)
    steps = 12
    recorder = TrajectoryRecorder(x, num_steps=steps, with_uncond=guidance != 1.0, full_latents=True)
    log = FullLog()
    result = sample(denoiser, denoiser.encode(prompt), seeds=range(5), guidance_scale=guidance,
                    sampler=sampler, num_inference_steps=steps, hooks=[recorder, log])
    return recorder.finish(result.x_0), log, result, x.reshape(-1).double()


def _assert_inner_close(got, want, norms):
    # Inner products are judged against the product of the vectors' norms (the scale of ⟨a, b⟩).
    err = np.abs(got - want) / np.maximum(norms, 1e-300)
    assert err.max() < REL, f"max relative error {err.max():.2e}"


@pytest.mark.parametrize(("guidance", "sampler"), [(1.0, "ddim"), (7.5, "ddim"), (7.5, "ddpm")])
def test_gram_matches_float64_recomputation(guidance, sampler):
    arrays, log, result, x = _record(guidance, sampler)
    x_T = result.x_T.reshape(5, -1).double()
    x_0 = result.x_0.reshape(5, -1).double()
    const = {"x_T": x_T, "x_0": x_0, "x": x.expand_as(x_T)}
    pairs = schema.step_pairs(guidance != 1.0)
    assert arrays["gram"].shape == (5, 12, len(pairs))
    for s in range(12):
        vec = {
            "x_t": log.x_t[s],
            "x0_err": log.x0_hat[s] - x,
            "eps_c_res": log.eps_c[s] - x_T,
            **({"eps_u_res": log.eps_u[s] - x_T} if log.eps_u else {}),
            **const,
        }
        for p, (a, b) in enumerate(pairs):
            want = (vec[a] * vec[b]).sum(1).numpy()
            norms = (vec[a].norm(dim=1) * vec[b].norm(dim=1)).numpy()
            _assert_inner_close(arrays["gram"][:, s, p], want, norms)
    for p, (a, b) in enumerate(schema.const_pairs()):
        want = (const[a] * const[b]).sum(1).numpy()
        norms = (const[a].norm(dim=1) * const[b].norm(dim=1)).numpy()
        _assert_inner_close(arrays["gram_final"][:, p], want, norms)
    if guidance == 1.0:
        assert "guidance_norm" not in arrays
    else:  # ‖ε_c − ε_u‖, recorded directly (issue 17)
        want = torch.stack([(c - u).norm(dim=1) for c, u in zip(log.eps_c, log.eps_u, strict=True)], 1).numpy()
        np.testing.assert_allclose(arrays["guidance_norm"], want, rtol=REL, atol=1e-7)


def test_trace_pc1_and_final_cosines_match_full_latents():
    arrays, log, result, x = _record(7.5, "ddim")
    states = torch.stack([*log.x_t, result.x_0.reshape(5, -1).double()], dim=1).numpy()  # (N, S+1, D)
    np.testing.assert_allclose(arrays["latents"].reshape(states.shape), states, rtol=REL, atol=1e-6)

    want_trace = states.var(axis=0, ddof=1).sum(axis=1)
    np.testing.assert_allclose(arrays["trace_cov"], want_trace, rtol=REL)

    x_np = x.numpy()
    for s in range(states.shape[1] - 1):
        delta = states[:, s + 1] - states[:, s]
        for col, centred in enumerate((True, False)):
            d = delta - delta.mean(0) if centred else delta
            _, sing, vt = np.linalg.svd(d, full_matrices=False)
            pc1 = vt[0]
            want_cos = abs(pc1 @ x_np) / np.linalg.norm(x_np)
            assert arrays["pc1_cos_x"][s, col] == pytest.approx(want_cos, rel=1e-4, abs=1e-6)
            assert arrays["pc1_var_ratio"][s, col] == pytest.approx(sing[0] ** 2 / (sing**2).sum(), rel=1e-4)

    final = states[:, -1]
    unit = final / np.linalg.norm(final, axis=1, keepdims=True)
    np.testing.assert_allclose(arrays["final_cos"], unit @ unit.T, rtol=REL, atol=1e-6)


@pytest.mark.parametrize("reference", ["x", "x_0"])
def test_decomposition_weights_from_gram_equal_lstsq_on_latents(reference):
    """Eq 14 / Fig 10: w0, wT from the stored Gram equal np.linalg.lstsq on the full latents."""
    arrays, log, result, x = _record(7.5, "ddim")
    pairs = schema.step_pairs(True)
    const = dict(zip(schema.const_pairs(), arrays["gram_final"].T.astype(np.float64), strict=True))
    gram = arrays["gram"].astype(np.float64)
    w0, wT = decomposition_weights(
        gram[..., pairs.index(("x_t", reference))],
        gram[..., pairs.index(("x_t", "x_T"))],
        const[(reference, reference)][:, None],
        const[("x_T", reference) if reference == "x_0" else ("x_T", "x")][:, None],
        const[("x_T", "x_T")][:, None],
    )
    x_T = result.x_T.reshape(5, -1).double().numpy()
    ref = x.numpy()[None].repeat(5, 0) if reference == "x" else result.x_0.reshape(5, -1).double().numpy()
    for n in range(5):
        basis = np.stack([ref[n], x_T[n]], axis=1)
        for s in range(12):
            want, *_ = np.linalg.lstsq(basis, log.x_t[s][n].numpy(), rcond=None)
            assert w0[n, s] == pytest.approx(want[0], abs=1e-5)
            assert wT[n, s] == pytest.approx(want[1], abs=1e-5)


def test_recorder_rejects_missing_uncond_and_wrong_step_count():
    denoiser = load_denoiser(small_card())
    prompt = denoiser.prompts()[0]
    recorder = TrajectoryRecorder(denoiser.paired_latent(prompt), num_steps=4, with_uncond=True)
    with pytest.raises(ValueError, match="ε_u"):
        sample(denoiser, denoiser.encode(prompt), seeds=[0, 1], guidance_scale=1.0, num_inference_steps=4,
               hooks=[recorder])
    recorder = TrajectoryRecorder(denoiser.paired_latent(prompt), num_steps=5, with_uncond=False)
    result = sample(denoiser, denoiser.encode(prompt), seeds=[0, 1], guidance_scale=1.0, num_inference_steps=4,
                    hooks=[recorder])
    with pytest.raises(ValueError, match="expected 5"):
        recorder.finish(result.x_0)


def _random_trajectory(*, g: float, batches: tuple[int, ...], steps: int, dim: int, seed: int):
    """Random step states in seed batches, ε_c close to ε_u and x̂0 close to x (the cancelling regime)."""
    from memharness.sampling import StepState

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(dim, generator=gen)
    calls, finals = [], []
    for n in batches:
        x_t, states = torch.randn(n, dim, generator=gen), []
        for s in range(steps):
            eps_u = torch.randn(n, dim, generator=gen)
            states.append(StepState(step=s, t=999 - s, alpha_bar=0.5, alpha_bar_prev=0.5, guidance_scale=g, x_t=x_t,
                                    eps_uncond=eps_u if g != 1.0 else None,
                                    eps_cond=eps_u + 1e-3 * torch.randn(n, dim, generator=gen),
                                    x0_hat=x + 1e-2 * torch.randn(n, dim, generator=gen)))
            x_t = 0.9 * x_t + 0.1 * states[-1].x0_hat
        calls.append(states)
        finals.append(x_t)
    return x, calls, torch.cat(finals)


def _reference_arrays(x, calls, x_0, *, with_uncond: bool) -> dict[str, np.ndarray]:
    """What the recorder before issue 17 computed: every vector of the trajectory kept, then float64 sums."""
    f64 = torch.float64
    vec = {name: [] for name in schema.step_vectors(with_uncond)}
    for states in calls:
        x_T = states[0].x_t
        for name, per_batch in vec.items():
            per_batch.append(torch.stack([{
                "x_t": st.x_t, "x0_err": st.x0_hat - x, "eps_c_res": st.eps_cond - x_T,
                "eps_u_res": st.eps_uncond - x_T if with_uncond else None}[name] for st in states], dim=1))
    vec = {name: torch.cat(parts).to(f64) for name, parts in vec.items()}  # (N, S, D)
    const = {"x_T": vec["x_t"][:, 0], "x_0": x_0.to(f64), "x": x.to(f64).expand(x_0.shape[0], -1)}
    full = {**vec, **{k: v[:, None] for k, v in const.items()}}
    gram = torch.stack([(full[a] * full[b]).sum(-1) for a, b in schema.step_pairs(with_uncond)], dim=-1)
    states = torch.cat([vec["x_t"], const["x_0"][:, None]], dim=1)
    deltas = (states[:, 1:] - states[:, :-1]).transpose(0, 1)
    cos, ratio = [], []
    for d in (deltas - deltas.mean(1, keepdim=True), deltas):
        seeds_gram = d @ d.transpose(1, 2)
        eigvals, eigvecs = torch.linalg.eigh(seeds_gram)
        direction = (d.transpose(1, 2) @ eigvecs[:, :, -1:]).squeeze(-1)
        cos.append((direction @ const["x"][0]).abs() / (direction.norm(dim=1) * const["x"][0].norm()))
        ratio.append(eigvals[:, -1] / seeds_gram.diagonal(dim1=1, dim2=2).sum(1))
    unit = const["x_0"] / const["x_0"].norm(dim=1, keepdim=True)
    out = {"gram": gram, "gram_final": torch.stack([(const[a] * const[b]).sum(1) for a, b in schema.const_pairs()], 1),
           "trace_cov": states.var(0).sum(-1), "final_cos": unit @ unit.T,
           "pc1_cos_x": torch.stack(cos, 1), "pc1_var_ratio": torch.stack(ratio, 1)}
    if with_uncond:  # ‖ε_c − ε_u‖ taken directly (issue 17), not rebuilt from the residuals' Gram entries
        out["guidance_norm"] = torch.cat([torch.stack([(st.eps_cond.to(f64) - st.eps_uncond.to(f64)).norm(dim=1)
                                                       for st in states], dim=1) for states in calls])
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize(("guidance", "batches"), [(7.5, (3, 2)), (1.0, (5,)), (7.5, (1, 1, 1))])
def test_recorder_equals_the_full_float64_reference_on_random_trajectories(guidance, batches):
    """Issue 17: the per-step batched product gives what keeping every vector and summing in float64 gave,
    to 1e-6 relative (inner products against the product of their vectors' norms)."""
    x, calls, x_0 = _random_trajectory(g=guidance, batches=batches, steps=6, dim=700, seed=3)
    recorder = TrajectoryRecorder(x, num_steps=6, with_uncond=guidance != 1.0)
    for states in calls:
        for state in states:
            recorder(state)
    got = recorder.finish(x_0)
    want = _reference_arrays(x, calls, x_0, with_uncond=guidance != 1.0)
    assert got.keys() == want.keys()
    pairs = schema.step_pairs(guidance != 1.0)
    scale = {}
    for p, (a, b) in enumerate(pairs):
        if a == b:
            scale[a] = np.sqrt(want["gram"][..., p])
    final = dict(zip(schema.const_pairs(), want["gram_final"].T, strict=True))
    for c in ("x_T", "x_0", "x"):
        scale[c] = np.sqrt(final[(c, c)])[:, None]
    for p, (a, b) in enumerate(pairs):
        _assert_inner_close_rel(got["gram"][..., p], want["gram"][..., p], scale[a] * scale[b])
    for p, (a, b) in enumerate(schema.const_pairs()):
        _assert_inner_close_rel(got["gram_final"][:, p], want["gram_final"][:, p], (scale[a] * scale[b])[:, 0])
    for key in ("trace_cov", "final_cos", "pc1_cos_x", "pc1_var_ratio", "guidance_norm"):
        if key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-7, err_msg=key)


def _assert_inner_close_rel(got, want, norms):
    err = np.abs(got - want) / np.maximum(norms, 1e-300)
    assert err.max() < 1e-6, f"max relative error {err.max():.2e}"


def test_recorder_rejects_a_step_out_of_order():
    x, calls, _ = _random_trajectory(g=7.5, batches=(2,), steps=3, dim=16, seed=0)
    recorder = TrajectoryRecorder(x, num_steps=3, with_uncond=True)
    recorder(calls[0][0])
    with pytest.raises(ValueError, match="step 2 after 1 steps"):
        recorder(calls[0][2])
