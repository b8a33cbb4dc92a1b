"""The recorder: reduces one prompt's N-seed trajectory to the fixture's statistics.

It is a step hook (see ``memharness.sampling``). Each step costs one batched product: the step's
vectors V = [x_t, x̂0 − x, (ε_u − x_T), ε_c − x_T] against [V, x_T, x], in float64 from the working
dtype's values (a (seeds, 6, D) temporary of one step, never of the whole trajectory). At g ≠ 1 it also
takes ‖ε_c − ε_u‖ directly (difference in the working dtype, norm summed in float64): rebuilt from the
Gram entries it would cancel where ε_c ≈ ε_u (late steps; Wen et al.'s magnitude, §4). The pairs with
x_0 and the across-seed statistics wait for ``finish``, which again works one step at a time. Vectors
stay on the model's device in the working dtype; only the reduced arrays (numpy, float32) leave it.
Seeds may arrive in batches (one sampler call per batch): each call starts again at step 0, and
``finish`` joins the batches in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from memharness.sampling import StepState
from memharness.trace import schema

F64 = torch.float64


@dataclass
class _SeedBatch:
    """One sampler call's seeds: their step vectors (kept for the pairs with x_0 and the across-seed
    statistics) and the Gram entries known so far."""

    vectors: torch.Tensor  # (n, S, K, D), working dtype; vector 0 is x_t
    gram: torch.Tensor  # (n, S, P) float64; the pairs with x_0 are filled by finish
    guidance_norm: torch.Tensor | None  # (n, S) float64 ‖ε_c − ε_u‖, None without ε_u
    steps: int = 0


class TrajectoryRecorder:
    def __init__(self, x_train: torch.Tensor, *, num_steps: int, with_uncond: bool, full_latents: bool = False):
        self.x = x_train.reshape(-1)
        self.num_steps = num_steps
        self.with_uncond = with_uncond
        self.full_latents = full_latents
        self._batches: list[_SeedBatch] = []
        names = schema.step_vectors(with_uncond)
        # Columns of the per-step product: the step vectors, then x_T and x; x_0 is not known yet.
        column = {name: i for i, name in enumerate((*names, "x_T", "x"))}
        self._now: list[tuple[int, int, int]] = []  # (pair, row, column) filled by the step's product
        self._at_end: list[tuple[int, int]] = []  # (pair, row) of the pairs ⟨step vector, x_0⟩
        for p, (a, b) in enumerate(schema.step_pairs(with_uncond)):
            if b == "x_0":
                self._at_end.append((p, names.index(a)))
            else:
                self._now.append((p, names.index(a), column[b]))

    def __call__(self, state: StepState) -> None:
        n = state.x_t.shape[0]
        store = F64 if state.x_t.dtype == F64 else torch.float32
        if state.step == 0:
            shape = (n, self.num_steps, len(schema.step_vectors(self.with_uncond)), state.x_t[0].numel())
            self._batches.append(_SeedBatch(
                vectors=torch.empty(shape, dtype=store, device=state.x_t.device),
                gram=torch.zeros((n, self.num_steps, len(schema.step_pairs(self.with_uncond))), dtype=F64,
                                 device=state.x_t.device),
                guidance_norm=torch.zeros((n, self.num_steps), dtype=F64, device=state.x_t.device)
                if self.with_uncond else None))
        batch = self._batches[-1]
        if state.step != batch.steps or state.step >= self.num_steps:
            raise ValueError(f"recorder saw step {state.step} after {batch.steps} steps, expected {self.num_steps}")
        x = self.x.to(device=state.x_t.device, dtype=store)
        vec = batch.vectors[:, state.step]  # (n, K, D), filled in place
        vec[:, 0] = state.x_t.reshape(n, -1)
        x_T = batch.vectors[:, 0, 0]
        vec[:, 1] = state.x0_hat.reshape(n, -1).to(store) - x
        if self.with_uncond:
            if state.eps_uncond is None:
                raise ValueError("recorder expects ε_u at every step when with_uncond is set")
            eps_u = state.eps_uncond.reshape(n, -1).to(store)
            vec[:, 2] = eps_u - x_T
            gap = state.eps_cond.reshape(n, -1).to(store) - eps_u
            batch.guidance_norm[:, state.step] = torch.linalg.vector_norm(gap, dim=1, dtype=F64)
        vec[:, -1] = state.eps_cond.reshape(n, -1).to(store) - x_T
        basis = torch.cat([vec, x_T[:, None], x.expand(n, 1, -1)], dim=1).to(F64)  # (n, K+2, D)
        products = torch.bmm(basis[:, :vec.shape[1]], basis.transpose(1, 2))  # (n, K, K+2)
        pairs, rows, cols = (list(c) for c in zip(*self._now, strict=True))
        batch.gram[:, state.step, pairs] = products[:, rows, cols]
        batch.steps += 1

    def finish(self, x_0: torch.Tensor) -> dict[str, np.ndarray]:
        """All arrays of schema.GROUP_ARRAYS for this trajectory, given the final latents of all seeds."""
        steps = {batch.steps for batch in self._batches}
        if steps != {self.num_steps}:
            raise ValueError(f"recorder saw {sorted(steps)} steps, expected {self.num_steps}")
        n = x_0.shape[0]
        if n != sum(batch.vectors.shape[0] for batch in self._batches):
            raise ValueError(f"recorder saw {sum(b.vectors.shape[0] for b in self._batches)} seeds, x_0 has {n}")
        x_final = x_0.reshape(n, -1).to(F64)
        x = self.x.to(device=x_final.device, dtype=F64)
        gram = torch.cat([batch.gram for batch in self._batches])
        self._fill_x0_pairs(gram, x_final)
        const = {"x_T": self._state(0).to(F64), "x_0": x_final, "x": x.expand(n, -1)}
        gram_final = torch.stack([(const[a] * const[b]).sum(1) for a, b in schema.const_pairs()], dim=1)
        last = x_final.to(self._batches[0].vectors.dtype)

        def state(index: int) -> torch.Tensor:  # x_T … x_0
            return self._state(index) if index < self.num_steps else last

        out = {
            "gram": gram,
            "gram_final": gram_final,
            "trace_cov": trace_of_covariance(state, self.num_steps + 1),
            "final_cos": cosine_matrix(x_final),
        }
        out["pc1_cos_x"], out["pc1_var_ratio"] = pc1_alignment(state, self.num_steps + 1, x)
        if self.with_uncond:
            out["guidance_norm"] = torch.cat([batch.guidance_norm for batch in self._batches])
        if self.full_latents:
            states = torch.stack([state(s) for s in range(self.num_steps + 1)], dim=1)
            out["latents"] = states.reshape(n, self.num_steps + 1, *x_0.shape[1:])
        return {key: value.detach().cpu().numpy().astype(np.float32) for key, value in out.items()}

    def _state(self, step: int) -> torch.Tensor:
        """x_t of ``step`` for all seeds, (N, D) in the working dtype (a view when seeds came in one batch)."""
        parts = [batch.vectors[:, step, 0] for batch in self._batches]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _fill_x0_pairs(self, gram: torch.Tensor, x_final: torch.Tensor) -> None:
        """⟨step vector, x_0⟩ of every step: one batched product per step, per seed batch."""
        pairs, rows = (list(c) for c in zip(*self._at_end, strict=True))
        start = 0
        for batch in self._batches:
            seeds = slice(start, start + batch.vectors.shape[0])
            start = seeds.stop
            x0 = x_final[seeds, :, None]  # (n, D, 1)
            for s in range(self.num_steps):
                gram[seeds, s, pairs] = torch.bmm(batch.vectors[:, s, rows].to(F64), x0)[..., 0]


StateFn = Callable[[int], torch.Tensor]  # state index 0 … S (x_T … x_0) → (N, D)


def trace_of_covariance(state: StateFn, count: int) -> torch.Tensor:
    """tr Cov_seeds(x_t) per state, unbiased (N−1) (Fig 7), one state at a time in float64."""
    out = []
    for s in range(count):
        x_s = state(s).to(F64)
        centred = x_s - x_s.mean(0, keepdim=True)
        out.append((centred * centred).sum() / max(x_s.shape[0] - 1, 1))
    return torch.stack(out)


def cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(torch.finfo(vectors.dtype).tiny)
    return unit @ unit.T


def pc1_alignment(state: StateFn, count: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|cos(PC1(Δx_t), x)| and PC1's variance fraction per step (Fig 8): (S, 2) each, S = count − 1.

    Δx_t = x_{t−1} − x_t across seeds (N, D). PC1 comes from the N×N Gram matrix
    (cheap when N ≪ D). Column 0: centred PCA (Δx minus its seed mean), column 1:
    uncentred; the paper does not say which, so both are kept and the claim chooses.
    One step at a time in float64: no float64 copy of the whole trajectory.
    """
    x = x.to(F64)
    tiny = torch.finfo(F64).tiny
    cos, ratio = [], []
    for s in range(count - 1):
        delta = state(s + 1).to(F64) - state(s).to(F64)  # (N, D)
        d = torch.stack([delta - delta.mean(0, keepdim=True), delta])  # centred, uncentred
        gram = d @ d.transpose(1, 2)  # (2, N, N)
        eigvals, eigvecs = torch.linalg.eigh(gram)  # ascending eigenvalues
        direction = (d.transpose(1, 2) @ eigvecs[:, :, -1:]).squeeze(-1)  # (2, D), PC1 up to scale
        # No spread at all gives a zero direction: cosine and variance fraction 0, not NaN.
        cos.append((direction @ x).abs() / (direction.norm(dim=1) * x.norm()).clamp_min(tiny))
        ratio.append(eigvals[:, -1] / gram.diagonal(dim1=1, dim2=2).sum(1).clamp_min(tiny))
    return torch.stack(cos), torch.stack(ratio)
