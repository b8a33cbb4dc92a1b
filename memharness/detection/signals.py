"""Per-generation detector signals from a fixture group: δ(t) per reference (App H) and ‖ε_c − ε_u‖ (§4).

Every signal is per prompt, seed and *step state* x_t (the input of each of the S steps, x_T
first): a flag raised there can still change that step, which is what real-time detection is
for (App H); the final x_0 has no step left to act on and is not scored. Arrays are (P, N, S).

Only fixture → array plumbing lives here; the math is ``memharness.analysis.detection``.
This module imports no claim code, so claim checks and the ``detect`` command can share it.
"""

from __future__ import annotations

import numpy as np

from memharness.analysis import (
    decomposition_weights,
    delta,
    detection_step,
    online_weights,
)
from memharness.errors import MemharnessError
from memharness.schedule import NoiseSchedule
from memharness.trace.group import Group
from memharness.trace.store import Fixture

REFERENCES = ("online", "final", "train")
_OFFLINE = {"train": "x", "final": "x_0"}  # App H's offline references: Fig 10a,b,e,f and Fig 10c,d,g,h


def latent_size(fixture: Fixture) -> int:
    """d, the number of latent entries, from the card's latent_shape."""
    return int(np.prod(fixture.model["latent_shape"]))


def default_rho2(fixture: Fixture) -> float:
    """ρ² = d: the squared norm of a unit-variance latent (SD's latents times the VAE scaling factor,
    and the centred, unit-variance data of the analytic and digits organisms). A card constant, so
    it is known in real time, unlike ‖x‖ of the unknown training latent."""
    return float(latent_size(fixture))


def reference_weights(group: Group, reference: str, *, rho2: float) -> tuple[np.ndarray, np.ndarray]:
    """Eq 14's (w0, wT) of every step state against (reference, x_T): (P, N, S)."""
    xt_T, T_T = group.inner("x_t", "x_T"), group.inner_final("x_T", "x_T")[..., None]
    if reference == "online":
        # r = x̂0(t) = x0_err + x, expanded into recorded inner products (schema: x0_err = x̂0 − x)
        x_x = group.inner_final("x", "x")[..., None]
        r_r = group.inner("x0_err", "x0_err") + 2.0 * group.inner("x0_err", "x") + x_x
        xt_r = group.inner("x_t", "x0_err") + group.inner("x_t", "x")
        r_T = group.inner("x0_err", "x_T") + group.inner_final("x", "x_T")[..., None]
        return online_weights(xt_r, xt_T, r_r, r_T, T_T, rho2)
    if reference not in _OFFLINE:
        raise MemharnessError(f"reference {reference!r}: use one of {', '.join(REFERENCES)}")
    a = _OFFLINE[reference]
    return decomposition_weights(group.inner("x_t", a), xt_T, group.inner_final(a, a)[..., None],
                                 group.inner_final(a, "x_T")[..., None], T_T)


def delta_states(group: Group, schedule: NoiseSchedule, reference: str, *, rho2: float) -> np.ndarray:
    """δ(t) (App H) at every step state: (P, N, S)."""
    w0, wT = reference_weights(group, reference, rho2=rho2)
    sqrt_ab, sqrt_1m = schedule.theoretical_weights(group.timesteps, sampler=group.sampler)
    return delta(w0, wT, sqrt_ab, sqrt_1m)


def window_score(delta_per_state: np.ndarray, *, first_state: int, window: int) -> np.ndarray:
    """The detector score: max δ over states first_state..window (inclusive, clipped to the last step)."""
    return delta_per_state[..., first_state : window + 1].max(axis=-1)


def censored_steps(delta_per_state: np.ndarray, *, gamma: float, first_state: int) -> np.ndarray:
    """App H's detection step per generation; a generation never flagged counts as S, the number of
    steps (flagged after the end at the earliest), so misses raise the mean instead of vanishing."""
    steps = detection_step(delta_per_state, gamma=gamma, first_state=first_state)
    return np.where(steps < 0, delta_per_state.shape[-1], steps)


def guidance_magnitudes(group: Group) -> np.ndarray:
    """‖ε_c − ε_u‖ per step (Wen et al.; §4): (P, N, S). Needs ε_u, i.e. g ≠ 1. Recorded directly by
    newer traces, rebuilt from the Gram entries for older fixtures (``Group.guidance_norms``)."""
    return group.guidance_norms()
