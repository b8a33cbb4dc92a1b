"""Mitigating memorization while sampling: per-seed guidance policies (App H, Jain et al.),
mitigation runs recorded into fixtures, and generation with real-time detection.

Names load lazily: importing the package (the CLI's parsers do) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from memharness.mitigation.constants import DEFAULT_GAMMA, DEFAULT_METHODS, DEFAULT_TRANSITION_T, MITIGATION_METHODS

_LAZY = {
    "POLICIES": "policies",
    "ConstantGuidance": "policies",
    "DeltaPolicy": "policies",
    "JainDynamic": "policies",
    "JainStatic": "policies",
    "Policy": "policies",
    "make_policy": "policies",
    "MitigationSettings": "record",
    "mitigate_prompt": "record",
    "record_mitigation": "record",
    "Generation": "generation",
    "generate": "generation",
    "generate_mitigated": "generation",
    "write_generation": "generation",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = ["DEFAULT_GAMMA", "DEFAULT_METHODS", "DEFAULT_TRANSITION_T", "MITIGATION_METHODS", *_LAZY]
