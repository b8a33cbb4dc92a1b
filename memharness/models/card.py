"""Model cards: what a model is, read from ``cards/<id>.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from memharness.errors import FieldError, MemharnessError

_REQUIRED = ("id", "title", "backend", "latent_shape", "prediction_type", "scheduler")


@dataclass(frozen=True)
class ModelCard:
    id: str
    title: str
    backend: str
    latent_shape: tuple[int, ...]
    prediction_type: str
    scheduler: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str) -> ModelCard:
        if not isinstance(data, dict):
            raise MemharnessError(f"{source}: a model card must be a mapping")
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise MemharnessError(f"{source}: model card lacks key {missing[0]!r}")
        shape = data["latent_shape"]
        if not (isinstance(shape, list) and shape
                and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            raise MemharnessError(f"{source}: latent_shape must be a list of positive integers, got {shape!r}")
        for key in ("scheduler", "params", "trace"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise MemharnessError(f"{source}: {key} must be a mapping")
        if not isinstance(data["scheduler"], dict):
            raise MemharnessError(f"{source}: scheduler must be a mapping")
        from memharness.trace.validate import CARD, validate

        validate(data, CARD, source)  # types, ranges, an id usable as a folder name, a bounded latent shape
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            backend=str(data["backend"]),
            latent_shape=tuple(shape),
            prediction_type=str(data["prediction_type"]),
            scheduler=dict(data["scheduler"]),
            params=dict(data.get("params") or {}),
            trace=dict(data.get("trace") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "backend": self.backend,
            "latent_shape": list(self.latent_shape),
            "prediction_type": self.prediction_type,
            "scheduler": dict(self.scheduler),
            "params": dict(self.params),
            "trace": dict(self.trace),
        }


def _cards_dir():
    return resources.files("memharness.models") / "cards"


def available_cards() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in _cards_dir().iterdir() if p.name.endswith(".yaml"))


def load_card(name_or_path: str) -> ModelCard:
    """A shipped card by id (``analytic``) or a card file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError:
            raise MemharnessError(f"{path}: not UTF-8 text") from None
    else:
        entry = _cards_dir() / f"{name_or_path}.yaml"
        if not entry.is_file():
            known = ", ".join(available_cards())
            raise FieldError("model", f"unknown model {name_or_path!r}; known models: {known}")
        text, source = entry.read_text(), f"cards/{name_or_path}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MemharnessError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    except RecursionError:
        raise MemharnessError(f"{source}: nests too deeply") from None
    return ModelCard.from_mapping(data, source=source)
