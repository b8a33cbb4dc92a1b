"""A synthetic fixture at the paper's scale, written through the real store.

The arrays are not random numbers of the right shape: they are the exact statistics the
recorder would keep for a *linear Gaussian model* in SD's latent space (D = 4·64·64), so
every claim runs on them and most of them see the paper's mechanism.

Model, per prompt p (a per-prompt spread s_p and norm scale r_p):

- conditional data N(μ_p, (r_p s_p)² I) with ‖μ_p‖² = r_p²(1 − s_p²)·D; the paired training
  latent is one member, x = μ_p + r_p s_p z_p. A small s_p is a memorized prompt (the
  conditional collapses onto x), a large one a normal prompt;
- unconditional data N(0, I) (SD's scaled latents have about unit variance) at t = T; as the noise
  falls, the unconditional prediction blends into the conditional one (weight (ᾱ_t − ᾱ_T)/0.2, capped
  at 1), as a model trained on the same images identifies their mode late in sampling;
- both denoisers are the exact posterior means E[x0 | x_t], guided with CFG (Eq 8) and sampled
  with DDIM (Eq 7) or DDPM (Eq 22) on SD v1.4's schedule, exactly as memharness.sampling steps.

Every vector the recorder sees is then a linear combination of a few Gaussian vectors in
R^D: μ, z, the seeds' x_T and (DDPM) each step's fresh noise. The sampler is run on the
coefficients, and inner products come from the Gram matrix of those basis vectors, drawn
exactly from its Wishart(D, I) distribution (Bartlett decomposition). So the recorded Gram
matrices, tr Cov, PC1 alignments and seed cosines are those of genuine 16,384-dimensional
trajectories, at about 0.15 s per prompt on one CPU core instead of GPU-minutes.

Scores are the latent score (Eq 9 on final latents, ``memharness.scoring.latent``), written
with ``FixtureWriter.write_scores``; the arrays with ``RunWriter.write_prompt``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memharness.models.card import load_card
from memharness.schedule import NoiseSchedule
from memharness.scoring.latent import LATENT_SCORER, latent_scores
from memharness.trace import FixtureWriter, schema

LATENT_SHAPE = (4, 64, 64)  # SD v1.x at 512 px
D = int(np.prod(LATENT_SHAPE))
UNCOND_RAMP = 0.2  # the unconditional follows the prompt's mode fully once ᾱ_t − ᾱ_T ≥ this


@dataclass(frozen=True)
class Scale:
    """The study's size: the paper's is 436 prompts, DDIM 50 seeds and DDPM 10, g ∈ {1, 7.5}, 50 steps."""

    prompts: int = 436
    ddim_seeds: int = 50
    ddpm_seeds: int = 10
    steps: int = 50
    guidance: tuple[float, ...] = (1.0, 7.5)

    def unet_evaluations(self) -> int:
        per_seed = sum(self.steps * (1 if g == 1.0 else 2) for g in self.guidance)
        return self.prompts * per_seed * (self.ddim_seeds + self.ddpm_seeds)


PAPER = Scale()


def _card() -> dict:
    """SD v1.4's card (its scheduler is what the claims read), marked as synthetic."""
    card = load_card("sd14").to_dict()
    card.update(id="synthetic-sd14", title="Synthetic SD v1.4-scale fixture (linear Gaussian model)",
                backend="synthetic")
    card["params"] = {"generator": "benchmarks/synthetic.py", "latent_dim": D}
    return card


def _prompt_parameters(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(memorized flag, spread s, norm scale r) per prompt: every other prompt memorized."""
    memorized = np.arange(n) % 2 == 0
    s = np.where(memorized, rng.uniform(0.02, 0.3, n), rng.uniform(0.8, 0.99, n))
    r = rng.uniform(0.8, 1.2, n)
    return memorized, s, r


def wishart_gram(k: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Gram matrix of k iid N(0, I_dim) vectors, drawn exactly (Bartlett: W = L Lᵀ)."""
    lower = np.tril(rng.standard_normal((k, k)), -1)
    lower[np.diag_indices(k)] = np.sqrt(rng.chisquare(dim - np.arange(k)))
    return lower @ lower.T


def coefficient_trajectory(schedule: NoiseSchedule, timesteps: np.ndarray, *, sampler: str, g: float,
                           s: float, r: float) -> dict[str, np.ndarray]:
    """Coefficients of every recorded vector on one seed's basis [u_μ, u_z, x_T, ξ_1 … ξ_S] (unit Gaussians).

    Returns x_t (S+1, K) for the states x_T … x_0, and x0_err, eps_u_res, eps_c_res (S, K), x (K,).
    The arithmetic is memharness.sampling's, applied to coefficients (every step is linear).
    """
    steps = len(timesteps)
    k = 3 + (steps if sampler == "ddpm" else 0)
    mu = np.zeros(k)
    mu[0] = r * np.sqrt(1 - s * s)
    x = mu.copy()
    x[1] = r * s
    x_T = np.zeros(k)
    x_T[2] = 1.0
    var_c = (r * s) ** 2
    c = x_T.copy()
    ab_T = schedule.alpha_bar(int(timesteps[0]))
    out = {name: np.empty((steps, k)) for name in ("x0_err", "eps_u_res", "eps_c_res")}
    states = np.empty((steps + 1, k))
    for i, t in enumerate(timesteps):
        ab = schedule.alpha_bar(int(t))
        abp = schedule.alpha_bar_prev(int(t), steps, sampler=sampler)
        x0_c = mu + np.sqrt(ab) * var_c / (ab * var_c + 1 - ab) * (c - np.sqrt(ab) * mu)  # E[x0 | x_t, prompt]
        # The unconditional: blind to the prompt at t = T (E[x0 | x_t] under N(0, I)); as the noise falls
        # it identifies the prompt's mode too (it was trained on the same images), so guidance fades late.
        blend = min(max((ab - ab_T) / UNCOND_RAMP, 0.0), 1.0)
        x0_u = (1 - blend) * np.sqrt(ab) * c + blend * x0_c
        eps_c = (c - np.sqrt(ab) * x0_c) / np.sqrt(1 - ab)
        eps_u = (c - np.sqrt(ab) * x0_u) / np.sqrt(1 - ab)
        eps = eps_c if g == 1.0 else eps_u + g * (eps_c - eps_u)
        x0 = (c - np.sqrt(1 - ab) * eps) / np.sqrt(ab)
        states[i] = c
        out["x0_err"][i] = x0 - x
        out["eps_u_res"][i] = eps_u - x_T
        out["eps_c_res"][i] = eps_c - x_T
        if sampler == "ddim":
            c = np.sqrt(abp) * x0 + np.sqrt(1 - abp) * eps
        else:
            alpha_t = ab / abp
            beta_t = 1 - alpha_t
            c = (np.sqrt(abp) * beta_t / (1 - ab)) * x0 + (np.sqrt(alpha_t) * (1 - abp) / (1 - ab)) * c
            c[3 + i] += np.sqrt(max((1 - abp) / (1 - ab) * beta_t, 1e-20))  # σ_t ξ (t > 0 at every step)
    states[steps] = c
    return {"x_t": states, **out, "x": x}


def _guidance_norm(coef: dict[str, np.ndarray], sub: np.ndarray) -> np.ndarray:
    """‖ε_c − ε_u‖ per seed and step, (N, S): the norm of the coefficients' difference, taken directly as the
    recorder takes it (not rebuilt from the residuals' Gram entries, which cancel where ε_c ≈ ε_u)."""
    gap = coef["eps_c_res"] - coef["eps_u_res"]  # (S, K)
    return np.sqrt(np.maximum(((gap @ sub) * gap).sum(-1), 0.0))  # sub: (N, K, K) per-seed basis Gram


def group_arrays(coef: dict[str, np.ndarray], gram: np.ndarray, seed_index: list[np.ndarray], *,
                 with_uncond: bool) -> dict[str, np.ndarray]:
    """schema.GROUP_ARRAYS of one (prompt, sampler, g) from coefficients and the basis Gram ``gram``.

    seed_index[n]: the rows of ``gram`` that are seed n's basis [u_μ, u_z, x_T^n, ξ^n…].
    """
    n_seeds, steps = len(seed_index), coef["x0_err"].shape[0]
    used = np.unique(np.concatenate(seed_index))  # this run's part of the basis
    gram = gram[np.ix_(used, used)]
    seed_index = [np.searchsorted(used, ix) for ix in seed_index]
    sub = np.stack([gram[np.ix_(ix, ix)] for ix in seed_index])  # (N, K, K)
    vectors = {"x_t": coef["x_t"][:steps], "x0_err": coef["x0_err"], "eps_c_res": coef["eps_c_res"]}
    if with_uncond:
        vectors["eps_u_res"] = coef["eps_u_res"]
    k = coef["x"].size
    const = {"x_T": np.eye(k)[2], "x_0": coef["x_t"][steps], "x": coef["x"]}
    times_g = {name: v @ sub for name, v in vectors.items()}  # v·G per seed: (N, S, K)
    pairs = schema.step_pairs(with_uncond)
    out_gram = np.empty((n_seeds, steps, len(pairs)))
    for p, (a, b) in enumerate(pairs):
        out_gram[:, :, p] = (times_g[a] * (vectors[b] if b in vectors else const[b])).sum(-1)
    const_g = {name: v @ sub for name, v in const.items()}  # (N, K)
    gram_final = np.stack([(const_g[a] * const[b]).sum(-1) for a, b in schema.const_pairs()], axis=1)

    # Cross-seed statistics need every seed's vectors on one basis.
    full = np.zeros((n_seeds, steps + 1, gram.shape[0]))
    for n, ix in enumerate(seed_index):
        full[n][:, ix] = coef["x_t"]
    x_full = np.zeros(gram.shape[0])
    x_full[seed_index[0][:2]] = coef["x"][:2]
    full_g = (full.reshape(-1, full.shape[-1]) @ gram).reshape(full.shape)  # every state times G, once
    centred, centred_g = full - full.mean(0, keepdims=True), full_g - full_g.mean(0, keepdims=True)
    trace_cov = (centred_g * centred).sum((0, 2)) / max(n_seeds - 1, 1)
    final, final_g = full[:, steps], full_g[:, steps]
    final_gram = final_g @ final.T
    norms = np.sqrt(np.diag(final_gram))
    final_cos = final_gram / np.outer(norms, norms)
    deltas = (full[:, 1:] - full[:, :-1]).transpose(1, 0, 2)  # (S, N, K)
    deltas_g = (full_g[:, 1:] - full_g[:, :-1]).transpose(1, 0, 2)
    x_norm = np.sqrt(x_full @ gram @ x_full)
    cos, ratio = [], []
    tiny = np.finfo(float).tiny
    centred_d = (deltas - deltas.mean(1, keepdims=True), deltas_g - deltas_g.mean(1, keepdims=True))
    for d, d_g in (centred_d, (deltas, deltas_g)):  # centred, uncentred PCA (the recorder's order)
        seeds_gram = d_g @ d.transpose(0, 2, 1)
        eigvals, eigvecs = np.linalg.eigh(seeds_gram)
        top = eigvecs[:, :, -1:]  # (S, N, 1)
        direction, dir_g = (top * d).sum(1), (top * d_g).sum(1)  # PC1 up to scale (the recorder's dᵀv)
        dir_norm = np.sqrt(np.maximum((dir_g * direction).sum(-1), 0.0))
        cos.append(np.abs(dir_g @ x_full) / np.maximum(dir_norm * x_norm, tiny))
        ratio.append(eigvals[:, -1] / np.maximum(np.trace(seeds_gram, axis1=1, axis2=2), tiny))
    arrays = {
        "gram": out_gram,
        "gram_final": gram_final,
        "trace_cov": trace_cov,
        "pc1_cos_x": np.stack(cos, axis=1),
        "pc1_var_ratio": np.stack(ratio, axis=1),
        "final_cos": final_cos,
        **({"guidance_norm": _guidance_norm(coef, sub)} if with_uncond else {}),
    }
    return {name: value.astype(np.float32) for name, value in arrays.items()}


@dataclass(frozen=True)
class FixtureStats:
    root: Path
    bytes_on_disk: int
    files: int
    seconds: float
    memorized: int
    prompts: int
    per_run_bytes: dict[str, int]


def _seed_index(scale: Scale) -> tuple[int, dict[str, list[np.ndarray]]]:
    """One basis per prompt, shared by both runs as a real trace shares seeds: [u_μ, u_z, x_T of every
    seed, then each DDPM seed's S step noises]; returns its size and each run's rows per seed."""
    n_xt = max(scale.ddim_seeds, scale.ddpm_seeds)
    return 2 + n_xt + scale.ddpm_seeds * scale.steps, {
        "ddim": [np.array([0, 1, 2 + n]) for n in range(scale.ddim_seeds)],
        "ddpm": [np.concatenate([[0, 1, 2 + n], 2 + n_xt + n * scale.steps + np.arange(scale.steps)])
                 for n in range(scale.ddpm_seeds)],
    }


def prompt_arrays(scale: Scale, seed: int, index: int, spread: float, norm: float):
    """One prompt's stored x, its groups per run and guidance scale, and their latent scores."""
    rng = np.random.default_rng([seed, index])
    schedule = NoiseSchedule.from_config(_card()["scheduler"])
    timesteps = schedule.timesteps(scale.steps)
    basis, seed_index = _seed_index(scale)
    gram = wishart_gram(basis, D, rng)
    pairs = schema.const_pairs()
    runs, scores = {}, {}
    for sampler in ("ddim", "ddpm"):
        runs[sampler], scores[sampler] = {}, {}
        for g in scale.guidance:
            coef = coefficient_trajectory(schedule, timesteps, sampler=sampler, g=g, s=spread, r=norm)
            arrays = group_arrays(coef, gram, seed_index[sampler], with_uncond=g != 1.0)
            runs[sampler][float(g)] = arrays
            final = arrays["gram_final"].astype(np.float64)[None]  # (1, N, 6), as score_fixture_latent reads it
            train, generate, score = latent_scores(final[..., pairs.index(("x_0", "x"))],
                                                   final[..., pairs.index(("x_0", "x_0"))],
                                                   final[..., pairs.index(("x", "x"))],
                                                   arrays["final_cos"].astype(np.float64)[None])
            scores[sampler][schema.guidance_key(g)] = {
                "train": float(train[0]), "generate": float(generate[0]), "score": float(score[0])}
    # The stored x: a latent-shaped Gaussian array with the norm the Gram gives it.
    x = rng.standard_normal(LATENT_SHAPE)
    x_norm2 = float(runs["ddim"][float(scale.guidance[0])]["gram_final"][0, pairs.index(("x", "x"))])
    return (x * np.sqrt(x_norm2 / (x * x).sum())).astype(np.float32), runs, scores


def write_synthetic_fixture(root: Path, scale: Scale = PAPER, *, seed: int = 0) -> FixtureStats:
    """Write the fixture of ``scale`` to ``root`` (DDIM and DDPM runs, latent scores); returns its size."""
    started = time.perf_counter()
    card = _card()
    timesteps = NoiseSchedule.from_config(card["scheduler"]).timesteps(scale.steps)
    memorized, spread, norm = _prompt_parameters(scale.prompts, np.random.default_rng(seed))
    prompts = [{"id": f"p{i:03d}", "text": f"synthetic prompt {i}", "image": None, "category": None,
                "kind": "memorized" if memorized[i] else "normal"} for i in range(scale.prompts)]
    writer = FixtureWriter(Path(root), model=card, prompts=prompts, prompt_set="synthetic")
    runs = {}
    for sampler, n_seeds in (("ddim", scale.ddim_seeds), ("ddpm", scale.ddpm_seeds)):
        runs[sampler] = writer.begin_run(sampler, {
            "sampler": sampler, "num_inference_steps": scale.steps, "timesteps": [int(t) for t in timesteps],
            "guidance": [float(g) for g in scale.guidance], "seeds": list(range(n_seeds)), "full_latents": False,
        })
    scores: dict[str, dict[str, dict[str, dict[str, float]]]] = {
        sampler: {schema.guidance_key(g): {} for g in scale.guidance} for sampler in runs}
    for i, prompt in enumerate(prompts):
        x, groups, prompt_scores = prompt_arrays(scale, seed, i, float(spread[i]), float(norm[i]))
        for sampler, run in runs.items():
            run.write_prompt(prompt["id"], x, groups[sampler])
            for key, value in prompt_scores[sampler].items():
                scores[sampler][key][prompt["id"]] = value
    writer.write_scores({"scorer": LATENT_SCORER, "values": scores})
    files = [p for p in Path(root).rglob("*") if p.is_file()]
    per_run = {sampler: sum(p.stat().st_size for p in (Path(root) / sampler).glob("*.safetensors"))
               for sampler in runs}
    labels = [scores["ddim"][schema.guidance_key(7.5)][p["id"]]["score"] >= 0.75 for p in prompts] \
        if 7.5 in scale.guidance else list(memorized)
    return FixtureStats(root=Path(root), bytes_on_disk=sum(p.stat().st_size for p in files), files=len(files),
                        seconds=time.perf_counter() - started, memorized=int(sum(labels)), prompts=len(prompts),
                        per_run_bytes=per_run)
