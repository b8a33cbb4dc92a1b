"""One declarative schema for what memharness reads from disk, checked at the door.

Manifests (:data:`MANIFEST`), the prompts a fixture records (:func:`validate_prompts`), model cards
(:data:`CARD`) and safetensors arrays (:func:`check_array`) are described here by small
spec objects; :func:`validate` walks a parsed document against one and raises a one-line
:class:`MemharnessError` naming the file and the key path (``runs.ddim.settings.guidance[0]``).

Limits, chosen far beyond any real fixture and far below what breaks the arithmetic:

- every number is finite with ``|x| ≤ MAX_MAGNITUDE`` (1e15): float64 products of two such
  numbers (inner products, squared norms) stay exact enough and never overflow, while a
  value scaled by 1e30 is refused instead of turning into a FAIL with overflow warnings;
- JSON and YAML documents nest at most ``MAX_DEPTH`` (32) levels (manifests use 6);
- latent shapes have 1–8 axes of 1–65,536 and at most 2**28 elements (SD's is 16,384);
- arrays of floats are float32 or float64 (float16 and integers are refused where floats
  belong; the mitigation switch steps are integers);
- memorization scores are cosine means, within [-1, 1] (with 1e-3 of rounding slack);
- prompt ids follow the one id rule of :mod:`memharness.trace.safety` and are unique.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from memharness.errors import MemharnessError
from memharness.trace.safety import id_problem, relative_problem

MAX_MAGNITUDE = 1e15
MAX_DEPTH = 32
MAX_LATENT_ELEMENTS = 1 << 28
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


class Invalid(Exception):
    """A spec violation at ``where`` (a key path); turned into one MemharnessError by validate()."""

    def __init__(self, where: str, what: str):
        super().__init__(f"{where} {what}")
        self.where, self.what = where, what


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


class Spec:
    def check(self, value: Any, where: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Str(Spec):
    def __init__(self, *, choices: tuple[str, ...] | None = None, nullable: bool = False, max_len: int = 100_000,
                 rule: Callable[[Any], str | None] | None = None):
        self.choices, self.nullable, self.max_len, self.rule = choices, nullable, max_len, rule

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, str):
            raise Invalid(where, "must be a string" + (" or null" if self.nullable else ""))
        if len(value) > self.max_len:
            raise Invalid(where, f"is longer than {self.max_len} characters")
        if self.choices is not None and value not in self.choices:
            raise Invalid(where, f"must be one of {', '.join(self.choices)}, got {value!r}")
        if self.rule is not None:
            problem = self.rule(value)
            if problem is not None:
                raise Invalid(where, problem)


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Num(Spec):
    """A finite real number (not a boolean) within [lo, hi] and |x| ≤ MAX_MAGNITUDE."""

    def __init__(self, lo: float = -MAX_MAGNITUDE, hi: float = MAX_MAGNITUDE, *, nullable: bool = False):
        self.lo, self.hi, self.nullable = lo, hi, nullable

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        if not _real(value):
            raise Invalid(where, "must be a number")
        if not math.isfinite(value):
            raise Invalid(where, f"must be finite, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise Invalid(where, f"must be within [{self.lo:g}, {self.hi:g}], got {value!r}")


class Int(Spec):
    def __init__(self, lo: int = 0, hi: int = 2**63 - 1, *, nullable: bool = False):
        self.lo, self.hi, self.nullable = lo, hi, nullable

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(where, "must be an integer")
        if not self.lo <= value <= self.hi:
            raise Invalid(where, f"must be within [{self.lo}, {self.hi}], got {value!r}")


class Bool(Spec):
    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise Invalid(where, "must be true or false")


class Scalar(Spec):
    """A number, string, boolean or null (card parameters)."""

    def check(self, value: Any, where: str) -> None:
        if value is None or isinstance(value, (bool, str)):
            return
        if _real(value):
            Num().check(value, where)
            return
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                self.check(item, _join(where, i))
            return
        if isinstance(value, dict):
            for key, item in value.items():
                self.check(item, _join(where, str(key)))
            return
        raise Invalid(where, f"has an unsupported type {type(value).__name__}")


class List(Spec):
    def __init__(self, item: Spec, *, min_len: int = 0, max_len: int = 10_000_000, unique: bool = False):
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise Invalid(where, "must be a list")
        if not self.min_len <= len(value) <= self.max_len:
            raise Invalid(where, f"must hold {self.min_len} to {self.max_len} items, got {len(value)}")
        for i, item in enumerate(value):
            self.item.check(item, _join(where, i))
        if self.unique and len(set(map(repr, value))) != len(value):
            raise Invalid(where, "repeats an item")


class Map(Spec):
    """An object with arbitrary keys (checked by ``key``) and values of one spec."""

    def __init__(self, value: Spec, *, key: Callable[[str], str | None] | None = None, min_len: int = 0,
                 nullable: bool = False):
        self.value, self.key, self.min_len, self.nullable = value, key, min_len, nullable

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, dict):
            raise Invalid(where, "must be an object")
        if len(value) < self.min_len:
            raise Invalid(where, f"must hold at least {self.min_len} entries")
        for key, item in value.items():
            if self.key is not None:
                problem = self.key(key)
                if problem is not None:
                    raise Invalid(_join(where, key), f"(a key) {problem}")
            self.value.check(item, _join(where, key))


class Obj(Spec):
    """An object with known keys; ``optional`` keys may be absent; other keys are allowed (forward
    compatible) unless ``closed``."""

    def __init__(self, fields: dict[str, Spec], *, optional: tuple[str, ...] = (), closed: bool = False,
                 extra: Spec | None = None, then: Callable[[dict, str], None] | None = None):
        self.fields, self.optional, self.closed, self.extra, self.then = fields, optional, closed, extra, then

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(where, "must be an object")
        for key, spec in self.fields.items():
            if key not in value:
                if key in self.optional:
                    continue
                raise Invalid(_join(where, key), "is missing")
            spec.check(value[key], _join(where, key))
        for key in value:
            if key not in self.fields:
                if self.closed:
                    raise Invalid(_join(where, str(key)), "is not a known key")
                if self.extra is not None:
                    self.extra.check(value[key], _join(where, str(key)))
        if self.then is not None:
            self.then(value, where)


# --------------------------------------------------------------------------- depth
def depth_problem(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why ``value`` nests too deeply, or None (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return f"nests deeper than {limit} levels"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def validate(document: Any, spec: Spec, source: str, *, advice: str = "") -> None:
    """Check ``document`` (parsed JSON/YAML from ``source``) against ``spec``; one line on failure."""
    problem = depth_problem(document)
    if problem is not None:
        raise MemharnessError(f"{source}: {problem}{advice}")
    try:
        spec.check(document, "")
    except Invalid as exc:
        where = f"key '{exc.where}'" if exc.where else "the document"
        raise MemharnessError(f"{source}: {where} {exc.what}{advice}") from None


# --------------------------------------------------------------------------- shared pieces
CATEGORIES = ("MV", "TV", "RV", "N")
KINDS = ("memorized", "normal")
SHA256 = Str(rule=lambda s: None if len(s) == 64 and all(c in "0123456789abcdef" for c in s)
             else "must be 64 lowercase hex digits (a sha256)")
ID = Str(rule=id_problem)
FILE_ENTRY = Obj({"file": Str(rule=relative_problem), "sha256": SHA256})


def _latent_shape_rule(value: list, where: str) -> None:
    if math.prod(value) > MAX_LATENT_ELEMENTS:
        raise Invalid(where, f"has {math.prod(value):,} elements, more than {MAX_LATENT_ELEMENTS:,}")


class LatentShape(List):
    def __init__(self):
        super().__init__(Int(1, 65_536), min_len=1, max_len=8)

    def check(self, value: Any, where: str) -> None:
        super().check(value, where)
        _latent_shape_rule(value, where)


SCHEDULER = Obj({
    "num_train_timesteps": Int(1, 100_000),
    "beta_start": Num(0.0, 1.0),
    "beta_end": Num(0.0, 1.0),
    "beta_schedule": Str(),
}, optional=("num_train_timesteps", "beta_start", "beta_end", "beta_schedule"), extra=Scalar())

CARD = Obj({
    "id": ID,
    "title": Str(max_len=1000),
    "backend": Str(max_len=100),
    "latent_shape": LatentShape(),
    "prediction_type": Str(max_len=100),
    "scheduler": SCHEDULER,
    "params": Map(Scalar(), nullable=True),
    "trace": Map(Map(Scalar()), nullable=True),
}, optional=("params", "trace"))
"""A model card (``cards/<id>.yaml``), and the ``model`` section of a manifest."""

PROMPT = Obj({
    "id": ID,
    "text": Str(),
    "kind": Str(choices=KINDS, nullable=True),
    "image": Str(nullable=True, max_len=4096),
    "category": Str(choices=CATEGORIES, nullable=True),
    "duplicates": Int(0, 10**9, nullable=True),  # copies of the paired image in training (zoo organisms)
}, optional=("kind", "image", "category", "duplicates"))


def _unique_ids(prompts: list, where: str) -> None:
    seen: set[str] = set()
    for i, prompt in enumerate(prompts):
        if prompt["id"] in seen:
            raise Invalid(_join(_join(where, i), "id"), f"repeats {prompt['id']!r}")
        seen.add(prompt["id"])


def _run_settings_rule(settings: dict, where: str) -> None:
    if len(settings["timesteps"]) != settings["num_inference_steps"]:
        raise Invalid(_join(where, "timesteps"), f"must hold num_inference_steps = {settings['num_inference_steps']} "
                                                 f"items, got {len(settings['timesteps'])}")


RUN_SETTINGS = Obj({
    "sampler": Str(max_len=100),
    "num_inference_steps": Int(1, 100_000),
    "timesteps": List(Int(0, 1_000_000), min_len=1, max_len=100_000),
    "guidance": List(Num(0.0, 1e6), min_len=1, max_len=1000, unique=True),
    "seeds": List(Int(0, 2**63 - 1), min_len=2, max_len=1_000_000, unique=True),
    "full_latents": Bool(),
}, optional=("sampler", "full_latents"), then=_run_settings_rule)

SCORE = Obj({"train": Num(-1.001, 1.001), "generate": Num(-1.001, 1.001), "score": Num(-1.001, 1.001)},
            optional=("train", "generate"))

MANIFEST = Obj({
    "schema_version": Int(),
    "harness_version": Str(max_len=100),
    "model": CARD,
    "prompt_set": Obj({"name": Str(max_len=1000), "sha256": SHA256}),
    "prompts": List(PROMPT, min_len=1, max_len=1_000_000),
    "runs": Map(Obj({"settings": RUN_SETTINGS, "files": Map(FILE_ENTRY, key=id_problem)}), key=id_problem),
    "scores": Obj({"scorer": Str(max_len=1000), "threshold": Num(-1, 1), "preprocess": Scalar(),
                   "values": Map(Map(Map(SCORE)))}, optional=("threshold", "preprocess")),
    "mitigation": Obj({
        "settings": Obj({"sampler": Str(), "guidance": Num(0.0, 1e6), "num_inference_steps": Int(1, 100_000),
                         "timesteps": List(Int(0, 1_000_000), max_len=100_000),
                         "seeds": List(Int(0, 2**63 - 1), min_len=1, max_len=1_000_000),
                         "methods": Map(Map(Scalar()), min_len=1)},
                        optional=("sampler", "guidance", "num_inference_steps", "timesteps")),
        "scorer": Str(),
        "files": Map(FILE_ENTRY, key=id_problem),
        "scores": Obj({"scorer": Str(), "values": Map(Map(SCORE))}),
    }, optional=("scorer", "scores")),
}, optional=("harness_version", "scores", "mitigation"),
    then=lambda m, where: _unique_ids(m["prompts"], "prompts"))
"""A fixture's manifest.json (schema version 1)."""

PROMPTS = Obj({"prompts": MANIFEST.fields["prompts"]}, then=lambda m, where: _unique_ids(m["prompts"], "prompts"))


def validate_prompts(prompts: list, source: str) -> None:
    """The prompts a fixture is about to record (ids that are file names, unique)."""
    validate({"prompts": prompts}, PROMPTS, source)




# --------------------------------------------------------------------------- arrays
def optional_group_shapes(seeds: int, steps: int, *, with_uncond: bool) -> dict[str, tuple[int, ...]]:
    """Shapes of the group arrays a prompt file may lack (fixtures recorded before them; readers fall back):
    guidance_norm, ‖ε_c − ε_u‖ per seed and step, exists only where ε_u does (g ≠ 1)."""
    return {"guidance_norm": (seeds, steps)} if with_uncond else {}


def check_array(name: str, value: np.ndarray, source: str) -> None:
    """Dtype and magnitude of one stored array: floats are float32/float64, switch steps integers;
    every value finite and within ±MAX_MAGNITUDE."""
    integer = name.endswith("switch_step")
    allowed = INT_DTYPES if integer else FLOAT_DTYPES
    if value.dtype not in allowed:
        raise MemharnessError(f"{source}: array {name} has dtype {value.dtype}, expected "
                              f"{' or '.join(str(d) for d in allowed)}; re-record this prompt")
    if integer:
        return
    if not np.all(np.isfinite(value)):
        raise MemharnessError(f"{source}: array {name} contains NaN or infinity; re-record this prompt")
    if value.size and float(np.max(np.abs(value))) > MAX_MAGNITUDE:
        raise MemharnessError(f"{source}: array {name} holds values beyond ±{MAX_MAGNITUDE:g}; the file is damaged, "
                              "re-record this prompt")
