"""What a fixture holds: the vector basis of the recorded Gram matrices and the array names.

Per seed and denoising step the recorder keeps the inner products among

    x_t      the input state of the step
    x0_err   x̂0(t) − x          (Eq 10's error; Fig 1)
    eps_u_res  ε_u − x_T        (Fig 5c, 13a; absent at g == 1, where ε_u is not computed)
    eps_c_res  ε_c − x_T        (Fig 5d, 13b)
    x_T, x_0, x                 initial noise, final latent, paired training latent

This residual basis spans the same space as {x_t, x̂0, ε_u, ε_c, x_T, x_0, x} but stores
the paper's near-zero quantities (‖x̂0−x‖² under overfitting, ‖ε_u−x_T‖²) directly,
so float32 storage keeps them accurate instead of cancelling large numbers. For the same
reason ‖ε_c − ε_u‖ (``guidance_norm``) is stored as such: rebuilt from the Gram entries
(‖r_c‖² − 2⟨r_c, r_u⟩ + ‖r_u‖², r = ε − x_T) it cancels at late steps, where ε_c ≈ ε_u.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

STEP_VECTORS = ("x_t", "x0_err", "eps_u_res", "eps_c_res")
CONST_VECTORS = ("x_T", "x_0", "x")


def step_vectors(with_uncond: bool) -> tuple[str, ...]:
    return STEP_VECTORS if with_uncond else tuple(v for v in STEP_VECTORS if v != "eps_u_res")


def step_pairs(with_uncond: bool) -> tuple[tuple[str, str], ...]:
    """Pairs stored per step in ``gram``: every pair with at least one step vector."""
    vs = step_vectors(with_uncond)
    within = [(a, b) for i, a in enumerate(vs) for b in vs[i:]]
    across = [(a, b) for a in vs for b in CONST_VECTORS]
    return tuple(within + across)


def const_pairs() -> tuple[tuple[str, str], ...]:
    """Pairs stored once per seed in ``gram_final``."""
    vs = CONST_VECTORS
    return tuple((a, b) for i, a in enumerate(vs) for b in vs[i:])


def guidance_key(g: float) -> str:
    """Array-name prefix of one guidance scale: 7.5 → 'g7.5', 1.0 → 'g1'."""
    return f"g{float(g):g}"


# Arrays per (prompt, sampler, guidance scale); shapes with N seeds, S steps, D = latent size.
GROUP_ARRAYS = {
    "gram": "(N, S, P) inner products of step_pairs, float32",
    "gram_final": "(N, 6) inner products of const_pairs",
    "trace_cov": "(S+1,) tr Cov of x_t across seeds, states x_T … x_0 (Fig 7)",
    "pc1_cos_x": "(S, 2) |cos(PC1 of Δx, x)|, columns: centred, uncentred PCA (Fig 8)",
    "pc1_var_ratio": "(S, 2) variance fraction of that PC1",
    "final_cos": "(N, N) cosine between final latents of seeds",
    "guidance_norm": "(N, S) ‖ε_c − ε_u‖₂ per seed and step, computed directly (Wen et al.'s magnitude, §4; "
                     "Eq 11 at t = T); only at g ≠ 1, optional (fixtures recorded before issue 17 lack it)",
    "latents": "(N, S+1, *latent_shape) full trajectory, only with --full-latents",
}
