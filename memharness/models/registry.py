"""Model backends by name. A card's ``backend`` picks one; its module is imported only when a
model of that backend is loaded (torch, diffusers), so listing cards stays cheap.

A backend is a Denoiser class (``memharness.models.base``) with a ``from_card`` constructor and
the capability flags the protocol declares; the harness asks those flags, never the backend's name.
"""

from __future__ import annotations

import importlib

from memharness.errors import MemharnessError

# name → "module:Class", imported on first use.
_BACKENDS: dict[str, str] = {
    "analytic": "memharness.models.analytic:AnalyticDenoiser",
    "diffusers": "memharness.models.diffusers_sd:DiffusersDenoiser",
    "zoo": "memharness.models.digits:DigitsDenoiser",
}


def register_backend(name: str, target: str) -> None:
    """Make ``backend: name`` in a card load the Denoiser class at ``target`` ("module:Class")."""
    module, _, attribute = target.partition(":")
    if not name or not module or not attribute:
        raise MemharnessError(f"backend {name!r}: give a name and a 'module:Class' target, got {target!r}")
    _BACKENDS[name] = target


def known_backends() -> tuple[str, ...]:
    return tuple(sorted(_BACKENDS))


def backend_class(name: str, *, card_id: str | None = None) -> type:
    """The Denoiser class registered as ``name`` (imports its module)."""
    target = _BACKENDS.get(name)
    if target is None:
        where = f"card {card_id}: " if card_id else ""
        raise MemharnessError(f"{where}unknown backend {name!r}; known: {', '.join(known_backends())}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
