"""Per-seed guidance policies for ``memharness.sampling.sample(..., guidance_policy=...)``.

Each policy returns g per seed at every step, before Eq 8 (ε̃ = ε_u + g(ε_c − ε_u)) is applied,
and records per seed the step from which its guidance changed (``switch_step``, −1: never):

- ``constant``      the nominal g throughout (the behaviour without a policy);
- ``delta``         App H: from state 1 on, δ(t) of the online reference (x̂0(t) at the nominal g,
                    rescaled to the data norm ρ; ``memharness.analysis.detection``) is computed per
                    seed; once δ > −γ the seed runs with g = 0 (ε_u alone) from that step on.
                    switch_step is the detection step, the state index of ``detection_step``;
- ``jain-static``   Jain et al. (2025), static transition point: g = 0 while t > ``transition_t``,
                    the nominal g from the first step with t ≤ ``transition_t`` on;
- ``jain-dynamic``  Jain et al. (2025), dynamic transition point: g = 1 (ε_c alone) until the first
                    local minimum over steps of ‖ε_c − ε_u‖ of the seed, the nominal g after it. The
                    minimum at step k is known at step k+1 (m[k+1] > m[k], as ``first_local_minimum``),
                    so switch_step = k + 1, the first step with the nominal g.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from memharness.analysis.detection import delta as delta_of_weights
from memharness.analysis.detection import online_weights
from memharness.errors import MemharnessError
from memharness.mitigation.constants import DEFAULT_GAMMA, DEFAULT_TRANSITION_T, MITIGATION_METHODS
from memharness.sampling import PolicyInput


def _flat(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], -1).to(torch.float64)


class Policy:
    """Base: per-seed state over one ``sample`` call; ``switch_step`` (N,) int64 after the call."""

    name = "policy"

    def __init__(self) -> None:
        self.switch_step = np.full(0, -1, dtype=np.int64)

    def reset(self, num_seeds: int, num_steps: int) -> None:
        self.switch_step = np.full(num_seeds, -1, dtype=np.int64)

    def params(self) -> dict[str, Any]:
        """Settings as the fixture's manifest records them."""
        return {}

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        raise NotImplementedError

    def _nominal(self, state: PolicyInput) -> torch.Tensor:
        return torch.full((state.x_t.shape[0],), float(state.guidance_scale), dtype=torch.float64)


class ConstantGuidance(Policy):
    """The nominal g for every seed and step."""

    name = "constant"

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        return self._nominal(state)


class DeltaPolicy(Policy):
    """App H: g = 0 from the first state (≥ ``first_state``) where δ(t) > −γ, per seed.

    ``rho2``: ρ², the squared data norm the online reference is rescaled to (None: d, the latent
    size, for unit-variance latents). ``mitigate=False`` only detects (g stays nominal).
    ``delta_per_step`` (N, S) holds δ of every step (NaN before ``first_state``).
    """

    name = "delta"

    def __init__(self, *, gamma: float = DEFAULT_GAMMA, rho2: float | None = None, first_state: int = 1,
                 mitigate: bool = True) -> None:
        super().__init__()
        if not math.isfinite(gamma):  # App H's γ > 0; a negative γ asks for δ > |γ|
            raise MemharnessError(f"--gamma: must be a finite number, got {gamma!r}")
        if rho2 is not None and not (math.isfinite(rho2) and rho2 > 0):
            raise MemharnessError(f"rho2: must be a finite number > 0, got {rho2!r}")
        if first_state < 1:
            raise MemharnessError(f"first_state: must be ≥ 1 (δ(T) is the same for every prompt), got {first_state}")
        self.gamma, self.rho2, self.first_state, self.mitigate = float(gamma), rho2, int(first_state), mitigate
        self.delta_per_step = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "rho2": self.rho2, "first_state": self.first_state}

    def reset(self, num_seeds: int, num_steps: int) -> None:
        super().reset(num_seeds, num_steps)
        self.delta_per_step = np.full((num_seeds, num_steps), np.nan)

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        g = self._nominal(state)
        if state.step >= self.first_state:
            x_t, x_T, r = _flat(state.x_t), _flat(state.x_T), _flat(state.x0_hat)
            rho2 = float(self.rho2) if self.rho2 is not None else float(x_t.shape[1])  # ρ² = d by default

            def dot(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
                return (a * b).sum(1).cpu().numpy()

            w0, wT = online_weights(dot(x_t, r), dot(x_t, x_T), dot(r, r), dot(r, x_T), dot(x_T, x_T), rho2)
            value = delta_of_weights(w0, wT, math.sqrt(state.alpha_bar), math.sqrt(1.0 - state.alpha_bar))
            self.delta_per_step[:, state.step] = value
            fired = (value > -self.gamma) & (self.switch_step < 0)  # App H: δ > −γ flags memorization
            self.switch_step[fired] = state.step
        if self.mitigate:
            g[torch.from_numpy(self.switch_step >= 0)] = 0.0  # App H: ε_u alone from the detection step on
        return g


class JainStatic(Policy):
    """Jain et al.: g = 0 while t > ``transition_t``, the nominal g afterwards."""

    name = "jain-static"

    def __init__(self, *, transition_t: int = DEFAULT_TRANSITION_T) -> None:
        super().__init__()
        if isinstance(transition_t, bool) or not isinstance(transition_t, int) or transition_t < 0:
            raise MemharnessError(f"--transition: a timestep ≥ 0 is needed, got {transition_t!r}")
        self.transition_t = transition_t

    def params(self) -> dict[str, Any]:
        return {"transition_t": self.transition_t}

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        g = self._nominal(state)
        if state.t > self.transition_t:
            return torch.zeros_like(g)
        self.switch_step[self.switch_step < 0] = state.step
        return g


class JainDynamic(Policy):
    """Jain et al.: g = ``start_guidance`` (1) until the first local minimum of ‖ε_c − ε_u‖, then nominal.

    ``magnitude`` (N, S) holds ‖ε_c − ε_u‖ of every step.
    """

    name = "jain-dynamic"

    def __init__(self, *, start_guidance: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(start_guidance):
            raise MemharnessError(f"start_guidance: must be finite, got {start_guidance!r}")
        self.start_guidance = float(start_guidance)
        self.magnitude = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        return {"start_guidance": self.start_guidance}

    def reset(self, num_seeds: int, num_steps: int) -> None:
        super().reset(num_seeds, num_steps)
        self.magnitude = np.full((num_seeds, num_steps), np.nan)

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        m = (_flat(state.eps_cond) - _flat(state.eps_uncond)).norm(dim=1).cpu().numpy()
        self.magnitude[:, state.step] = m
        if state.step > 0:
            rose = (m > self.magnitude[:, state.step - 1]) & (self.switch_step < 0)  # minimum at step − 1
            self.switch_step[rose] = state.step
        g = self._nominal(state)
        g[torch.from_numpy(self.switch_step < 0)] = self.start_guidance
        return g


POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (ConstantGuidance, DeltaPolicy, JainStatic, JainDynamic)
}
assert set(MITIGATION_METHODS) <= set(POLICIES)


def make_policy(name: str, **params: Any) -> Policy:
    """A policy by name; params are its keyword options (e.g. gamma=0.2 for ``delta``)."""
    cls = POLICIES.get(name)
    if cls is None:
        raise MemharnessError(f"--methods: unknown method {name!r}; choose from {', '.join(POLICIES)}")
    return cls(**params)
