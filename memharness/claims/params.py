"""Typed claim parameters: each check declares its own, and a claim file's values are validated here.

A declaration names the type, the default and the allowed values; the default lives only in the
declaration. An unknown key, a wrong type or a value out of range is a MemharnessError naming the
claim file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memharness.errors import MemharnessError
from memharness.schedule import SAMPLERS  # noqa: F401  (the claim files' sampler names)


@dataclass(frozen=True)
class Param:
    """One claim parameter: ``kind`` is float, int, str, bool, list or dict."""

    kind: type
    default: Any
    low: float | None = None  # inclusive bounds for numbers (and list items of numbers)
    high: float | None = None
    choices: tuple[Any, ...] | None = None  # allowed values (of str, or of list items)
    item: type | None = None  # the type of a list's items
    nullable: bool = False
    doc: str = ""

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        name = self.kind.__name__
        kind = (f"a list of {self.item.__name__}" if self.kind is list and self.item
                else f"{'an' if name[0] in 'aeiou' else 'a'} {name}")
        if self.low is not None and self.high is not None:
            return f"{kind} in [{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{kind} ≥ {self.low:g}"
        if self.high is not None:
            return f"{kind} ≤ {self.high:g}"
        return kind


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar(param: Param, kind: type, value: Any) -> Any:
    """value as ``kind``, or raise ValueError."""
    if kind is float:
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError
        value = float(value)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
    elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError
    if kind in (int, float):
        if (param.low is not None and value < param.low) or (param.high is not None and value > param.high):
            raise ValueError
    if param.choices is not None and value not in param.choices:
        raise ValueError
    return value


def coerce(param: Param, value: Any) -> Any:
    """The value, validated and converted to the declared type; ValueError when it does not fit."""
    if value is None:
        if param.nullable:
            return None
        raise ValueError
    if param.kind is list:
        if not isinstance(value, list) or not value:
            raise ValueError
        return [_scalar(param, param.item, v) if param.item else v for v in value]
    if param.kind is dict:
        if not isinstance(value, dict):
            raise ValueError
        return value
    return _scalar(param, param.kind, value)


def resolve(declared: Mapping[str, Param], given: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Declared defaults overridden by the claim file's values, each validated."""
    values = {name: p.default for name, p in declared.items()}
    for key, value in given.items():
        if key not in declared:
            known = ", ".join(sorted(declared))
            raise MemharnessError(f"{source}: parameters.{key}: unknown parameter (this claim takes: {known})")
        try:
            values[key] = coerce(declared[key], value)
        except ValueError:
            raise MemharnessError(f"{source}: parameters.{key}: {value!r} is not {declared[key].describe()}") from None
    return values
