"""Per-seed guidance policies for ``memharness.sampling.sample(..., guidance_policy=...)``.

Each policy returns g per seed at every step, before Eq 8 (ε̃ = ε_u + g(ε_c − ε_u)) is applied,
and records per seed the step from which its guidance changed (``switch_step``, −1: never):

- ``constant``      the nominal g throughout (the behaviour without a policy);
- ``delta``         App H: from state 1 on, δ(t) of the online reference (x̂0(t) at the nominal g,
                    rescaled to the data norm ρ; ``memharness.analysis.detection``) is computed per
                    seed; once δ > −γ the seed runs with g = 0 (ε_u alone) from that step on.
                    switch_step is the detection step, the state index of ``detection_step``;
- ``jain-static``   Jain et al. (2025), static transition point: g = ``pre_guidance`` (0) while
                    t > ``transition_t``, the nominal g from the first step with t ≤ ``transition_t`` on;
- ``jain-static-neg`` the same with opposite guidance before the transition, ``pre_guidance`` = −2
                    (Jain et al. use 0 or −2);
- ``jain-dynamic-min`` Jain et al. (2025), dynamic transition point as their
                    ``generate_test_dataset_dtp.py`` decides it: g = 1 (ε_c alone) until a *strict
                    interior* minimum of ‖ε_c − ε_u‖ over steps, m[k−2] > m[k−1] < m[k]; it is known at
                    step k, so switch_step = k, the first step with the nominal g. A sequence that only
                    falls, or rises from step 0 on, never switches (g = 1 throughout);
- ``jain-dynamic``  memharness's first reading of the same method (rule ``first-rise``), kept because
                    the shipped fixtures recorded it: the nominal g from the first step at which
                    ‖ε_c − ε_u‖ rises (m[k+1] > m[k], as ``first_local_minimum``; switch_step = k + 1),
                    which on the analytic and digits models is step 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from memharness.analysis.detection import delta as delta_of_weights
from memharness.analysis.detection import online_weights
from memharness.errors import FieldError, MemharnessError
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
            raise FieldError("gamma", f"must be a finite number, got {gamma!r}")
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
    """Jain et al.: g = ``pre_guidance`` while t > ``transition_t``, the nominal g afterwards.

    Jain et al. use ``pre_guidance`` 0 (no guidance, ε_u alone) or −2 (opposite guidance). The
    manifest records ``pre_guidance`` only when it is not 0 (fixtures recorded before it existed
    used 0).
    """

    name = "jain-static"

    def __init__(self, *, transition_t: int = DEFAULT_TRANSITION_T, pre_guidance: float = 0.0) -> None:
        super().__init__()
        if isinstance(transition_t, bool) or not isinstance(transition_t, int) or transition_t < 0:
            raise FieldError("transition", f"a timestep ≥ 0 is needed, got {transition_t!r}")
        if not math.isfinite(pre_guidance):
            raise MemharnessError(f"pre_guidance: must be finite, got {pre_guidance!r}")
        self.transition_t = transition_t
        self.pre_guidance = float(pre_guidance)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transition_t": self.transition_t}
        if self.pre_guidance != 0.0:
            out["pre_guidance"] = self.pre_guidance
        return out

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        g = self._nominal(state)
        if state.t > self.transition_t:
            return torch.full_like(g, self.pre_guidance)
        self.switch_step[self.switch_step < 0] = state.step
        return g


DYNAMIC_RULES = ("interior-minimum", "first-rise")


class JainDynamic(Policy):
    """Jain et al.: g = ``start_guidance`` (1) until the transition point, then the nominal g.

    ``rule`` ``interior-minimum`` (Jain et al.'s ``generate_test_dataset_dtp.py``): the transition
    is at step k once m[k−2] > m[k−1] < m[k] for m = ‖ε_c − ε_u‖ of the seed, a strict interior
    minimum; ``first-rise`` (memharness's first reading): at step k once m[k] > m[k−1]. The
    manifest records ``rule`` only for ``interior-minimum`` (fixtures recorded before it existed
    used ``first-rise``). ``magnitude`` (N, S) holds ‖ε_c − ε_u‖ of every step.
    """

    name = "jain-dynamic"

    def __init__(self, *, start_guidance: float = 1.0, rule: str = "interior-minimum") -> None:
        super().__init__()
        if not math.isfinite(start_guidance):
            raise MemharnessError(f"start_guidance: must be finite, got {start_guidance!r}")
        if rule not in DYNAMIC_RULES:
            raise MemharnessError(f"rule: one of {', '.join(DYNAMIC_RULES)}, got {rule!r}")
        self.start_guidance = float(start_guidance)
        self.rule = rule
        self.magnitude = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_guidance": self.start_guidance}
        if self.rule != "first-rise":
            out["rule"] = self.rule
        return out

    def reset(self, num_seeds: int, num_steps: int) -> None:
        super().reset(num_seeds, num_steps)
        self.magnitude = np.full((num_seeds, num_steps), np.nan)

    def __call__(self, state: PolicyInput) -> torch.Tensor:
        m = (_flat(state.eps_cond) - _flat(state.eps_uncond)).norm(dim=1).cpu().numpy()
        k = state.step
        self.magnitude[:, k] = m
        if self.rule == "first-rise" and k > 0:
            found = m > self.magnitude[:, k - 1]  # minimum at step k − 1
        elif self.rule == "interior-minimum" and k > 1:
            before, low = self.magnitude[:, k - 2], self.magnitude[:, k - 1]
            found = (before > low) & (low < m)  # strict interior minimum at step k − 1
        else:
            found = np.zeros(len(m), dtype=bool)
        self.switch_step[found & (self.switch_step < 0)] = k
        g = self._nominal(state)
        g[torch.from_numpy(self.switch_step < 0)] = self.start_guidance
        return g


# Method name → (policy class, fixed options). Options given to make_policy are added to these.
POLICIES: dict[str, tuple[type[Policy], dict[str, Any]]] = {
    "constant": (ConstantGuidance, {}),
    "delta": (DeltaPolicy, {}),
    "jain-static": (JainStatic, {}),
    "jain-static-neg": (JainStatic, {"pre_guidance": -2.0}),
    "jain-dynamic": (JainDynamic, {"rule": "first-rise"}),
    "jain-dynamic-min": (JainDynamic, {"rule": "interior-minimum"}),
}
assert set(MITIGATION_METHODS) <= set(POLICIES)


def make_policy(name: str, **params: Any) -> Policy:
    """A policy by name; params are its keyword options (e.g. gamma=0.2 for ``delta``)."""
    entry = POLICIES.get(name)
    if entry is None:
        raise FieldError("methods", f"unknown method {name!r}; choose from {', '.join(POLICIES)}")
    cls, fixed = entry
    policy = cls(**{**fixed, **params})
    policy.name = name
    return policy
