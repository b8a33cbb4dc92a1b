"""The paper's quantities as pure functions of fixture arrays (no I/O, no torch)."""

from memharness.analysis.decomposition import decomposition_weights
from memharness.analysis.overestimation import guidance_slope, overestimation_factor, x0_hat_norm2

__all__ = ["decomposition_weights", "guidance_slope", "overestimation_factor", "x0_hat_norm2"]
