"""Classifier-free guidance (Eq 8): which scales g need the unconditional prediction ε_u.

ε̃ = ε_u + g (ε_c − ε_u). At g = 1 this is ε_c alone, so only the conditional pass runs (as in
diffusers), ε_u is not computed and a fixture records no ε_u statistics; every other g, including
g < 1 (which diffusers would treat as 1), runs both passes.
"""

from __future__ import annotations


def uses_unconditional(guidance_scale: float) -> bool:
    """Whether sampling at ``guidance_scale`` computes ε_u (and a fixture records it)."""
    return float(guidance_scale) != 1.0


def passes_per_step(guidance_scale: float) -> int:
    """Denoiser passes per step at ``guidance_scale``: 2 with ε_u, else 1."""
    return 2 if uses_unconditional(guidance_scale) else 1
