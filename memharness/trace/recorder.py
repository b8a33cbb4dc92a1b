"""The recorder: reduces one prompt's N-seed trajectory to the fixture's statistics.

It is a step hook (see ``memharness.sampling``). Vectors stay on the model's
device; reductions run in float64 once the final latent x_0 is known, and
only the reduced arrays (numpy, float32) leave the device. Seeds may arrive in
batches (one sampler call per batch): each call starts again at step 0, and
``finish`` joins the batches in order.
"""

from __future__ import annotations

import numpy as np
import torch

from memharness.sampling import StepState
from memharness.trace import schema


class TrajectoryRecorder:
    def __init__(self, x_train: torch.Tensor, *, num_steps: int, with_uncond: bool, full_latents: bool = False):
        self.x = x_train.reshape(-1)
        self.num_steps = num_steps
        self.with_uncond = with_uncond
        self.full_latents = full_latents
        self._batches: list[dict[str, list[torch.Tensor]]] = []  # per seed batch: vector name → per-step (n, D)

    def __call__(self, state: StepState) -> None:
        if state.step == 0:
            self._batches.append({name: [] for name in ("states", *schema.step_vectors(self.with_uncond))})
        batch = self._batches[-1]
        n = state.x_t.shape[0]
        store = torch.float64 if state.x_t.dtype == torch.float64 else torch.float32
        x_t = state.x_t.reshape(n, -1).to(store)
        x_T = batch["states"][0] if batch["states"] else x_t
        x = self.x.to(device=x_t.device, dtype=store)
        batch["states"].append(x_t.clone())
        batch["x_t"] = batch["states"]
        batch["x0_err"].append(state.x0_hat.reshape(n, -1).to(store) - x)
        if self.with_uncond:
            if state.eps_uncond is None:
                raise ValueError("recorder expects ε_u at every step when with_uncond is set")
            batch["eps_u_res"].append(state.eps_uncond.reshape(n, -1).to(store) - x_T)
        batch["eps_c_res"].append(state.eps_cond.reshape(n, -1).to(store) - x_T)

    def _joined(self, name: str, step: int) -> torch.Tensor:
        return torch.cat([batch[name][step] for batch in self._batches])

    def finish(self, x_0: torch.Tensor) -> dict[str, np.ndarray]:
        """All arrays of schema.GROUP_ARRAYS for this trajectory, given the final latents of all seeds."""
        steps = {len(batch["states"]) for batch in self._batches}
        if steps != {self.num_steps}:
            raise ValueError(f"recorder saw {sorted(steps)} steps, expected {self.num_steps}")
        f64 = torch.float64
        n = x_0.shape[0]
        x_final = x_0.reshape(n, -1).to(f64)
        per_step = [self._joined("states", s) for s in range(self.num_steps)]
        states = torch.stack([*per_step, x_final.to(per_step[0].dtype)], dim=1)  # (N, S+1, D)
        const = {
            "x_T": states[:, 0].to(f64),
            "x_0": x_final,
            "x": self.x.to(device=x_final.device, dtype=f64).expand(n, -1),
        }
        step_names = schema.step_vectors(self.with_uncond)
        # Everything stays on the device until the final arrays: one copy to the host per array.
        gram = torch.empty((n, self.num_steps, len(schema.step_pairs(self.with_uncond))), dtype=f64,
                           device=x_final.device)
        for s in range(self.num_steps):
            vec = {name: self._joined(name, s).to(f64) for name in step_names} | const
            for p, (a, b) in enumerate(schema.step_pairs(self.with_uncond)):
                gram[:, s, p] = (vec[a] * vec[b]).sum(1)
        gram_final = torch.stack([(const[a] * const[b]).sum(1) for a, b in schema.const_pairs()], dim=1)

        out = {
            "gram": gram,
            "gram_final": gram_final,
            "trace_cov": trace_of_covariance(states),
            "final_cos": cosine_matrix(x_final),
        }
        cos, ratio = pc1_alignment(states, const["x"][0])
        out["pc1_cos_x"], out["pc1_var_ratio"] = cos, ratio
        if self.full_latents:
            out["latents"] = states.reshape(n, self.num_steps + 1, *x_0.shape[1:])
        return {key: value.detach().cpu().numpy().astype(np.float32) for key, value in out.items()}


def trace_of_covariance(states: torch.Tensor) -> torch.Tensor:
    """tr Cov_seeds(x_t) per state, unbiased (N−1) (Fig 7); states (N, S+1, D)."""
    states = states.to(torch.float64)
    centred = states - states.mean(0, keepdim=True)
    return (centred * centred).sum((0, 2)) / max(states.shape[0] - 1, 1)


def cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(torch.finfo(vectors.dtype).tiny)
    return unit @ unit.T


def pc1_alignment(states: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|cos(PC1(Δx_t), x)| and PC1's variance fraction per step (Fig 8).

    Δx_t = x_{t−1} − x_t across seeds (N, D). PC1 comes from the N×N Gram matrix
    (cheap when N ≪ D). Column 0: centred PCA (Δx minus its seed mean), column 1:
    uncentred; the paper does not say which, so both are kept and the claim chooses.
    """
    deltas = (states[:, 1:] - states[:, :-1]).to(torch.float64).transpose(0, 1)  # (S, N, D)
    x = x.to(torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    cos, ratio = [], []
    for d in (deltas - deltas.mean(1, keepdim=True), deltas):  # centred, uncentred
        gram = d @ d.transpose(1, 2)  # (S, N, N)
        eigvals, eigvecs = torch.linalg.eigh(gram)  # batched over steps; ascending eigenvalues
        direction = (d.transpose(1, 2) @ eigvecs[:, :, -1:]).squeeze(-1)  # (S, D), PC1 up to scale
        # No spread at all gives a zero direction: cosine and variance fraction 0, not NaN.
        cos.append((direction @ x).abs() / (direction.norm(dim=1) * x.norm()).clamp_min(tiny))
        ratio.append(eigvals[:, -1] / gram.diagonal(dim1=1, dim2=2).sum(1).clamp_min(tiny))
    return torch.stack(cos, dim=1), torch.stack(ratio, dim=1)
