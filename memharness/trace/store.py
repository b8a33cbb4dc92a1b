"""The fixture store: ``fixtures/<model>/`` as data only.

Layout::

    manifest.json              schema version, card, scheduler, prompts, runs, scores, sha256 per file
    <sampler>/<prompt>.safetensors   arrays of schema.GROUP_ARRAYS per guidance scale, plus x
    mitigation/<prompt>.safetensors  optional: guidance-policy runs (``memharness mitigate``), per method

Every write goes to a temporary file in the same folder and is renamed into
place, so an interrupted trace leaves whole files; the manifest is rewritten
after each prompt, which makes tracing resumable prompt by prompt. Reading
verifies schema version, the manifest's schema (``validate.MANIFEST``), that every file it
names lies inside the folder, checksums, dtypes, shapes and finite magnitudes, and fails with
one line naming the file and key.

Nothing recorded is lost: a run's manifest entry appears with its first prompt (a trace killed
before it leaves the fixture as it was), a new run keeps the scores and mitigation runs of the
others, and replacing a run (``--overwrite``) drops only what was computed from it. A run whose
files do not cover every prompt is incomplete (:meth:`Fixture.incomplete_runs`); a fixture with
no complete run cannot be checked (:meth:`Fixture.require_complete_run`). Writers hold the
folder's lock (``safety.FolderLock``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from memharness import __version__
from memharness.analysis import guidance_magnitude
from memharness.errors import MemharnessError
from memharness.guidance import uses_unconditional
from memharness.trace import schema, validate
from memharness.trace.safety import atomic_write_bytes, check_id, contained

MANIFEST = "manifest.json"


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def prompt_set_hash(prompts: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()


def _no_fixture(root: Path) -> MemharnessError:
    return MemharnessError(
        f"{root}: no fixture here ({MANIFEST} missing); record one with "
        f"`memharness trace --model MODEL --out {root}` or pass --fixtures DIR"
    )


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise _no_fixture(root)
    try:
        manifest = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MemharnessError(f"{path}: not valid JSON; the file is damaged, re-record the fixture") from None
    except RecursionError:
        raise MemharnessError(f"{path}: nests deeper than {validate.MAX_DEPTH} levels; the file is damaged, "
                              "re-record the fixture") from None
    except OSError as exc:
        raise MemharnessError(f"{path}: cannot read it ({exc.strerror})") from None
    if not isinstance(manifest, dict):
        raise MemharnessError(f"{path}: not a fixture manifest (expected a JSON object)")
    version = manifest.get("schema_version")
    if version != schema.SCHEMA_VERSION:
        raise MemharnessError(
            f"{path}: fixture schema version {version!r}, this memharness reads {schema.SCHEMA_VERSION}; "
            "re-record the fixture with this version's `memharness trace`"
        )
    _validate_manifest(manifest, path)
    return manifest


def _validate_manifest(manifest: dict[str, Any], path: Path) -> None:
    """Structure of a manifest, so damage shows as one line naming the key, not a KeyError later."""

    def bad(where: str, what: str) -> MemharnessError:
        return MemharnessError(f"{path}: {where} {what}; the manifest is damaged, re-record the fixture")

    validate.validate(manifest, validate.MANIFEST, str(path), advice="; the manifest is damaged, re-record the fixture")
    for key, kind in (("model", dict), ("prompts", list), ("runs", dict), ("prompt_set", dict)):
        if key not in manifest:
            raise bad(f"key {key!r}", "is missing")
        if not isinstance(manifest[key], kind):
            raise bad(f"key {key!r}", f"must be a JSON {'object' if kind is dict else 'array'}")
    ids = []
    for i, prompt in enumerate(manifest["prompts"]):
        if not (isinstance(prompt, dict) and isinstance(prompt.get("id"), str)):
            raise bad(f"prompts[{i}]", "needs a string 'id'")
        ids.append(prompt["id"])
    for name, run in manifest["runs"].items():
        if not (isinstance(run, dict) and isinstance(run.get("settings"), dict) and isinstance(run.get("files"), dict)):
            raise bad(f"runs.{name}", "needs the objects 'settings' and 'files'")
        for key in ("timesteps", "guidance", "seeds"):
            if not isinstance(run["settings"].get(key), list):
                raise bad(f"runs.{name}.settings.{key}", "must be a list")
        for pid, entry in run["files"].items():
            if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)
                    and isinstance(entry.get("sha256"), str)):
                raise bad(f"runs.{name}.files.{pid}", "needs string 'file' and 'sha256'")
    scores = manifest.get("scores")
    if scores is not None:
        if not (isinstance(scores, dict) and isinstance(scores.get("values"), dict)):
            raise bad("key 'scores'", "needs an object 'values'")
        for run_name, by_g in scores["values"].items():
            for gkey, by_prompt in (by_g or {}).items():
                for pid in ids:
                    entry = by_prompt.get(pid) if isinstance(by_prompt, dict) else None
                    value = entry.get("score") if isinstance(entry, dict) else None
                    if not isinstance(value, (int, float)) or not np.isfinite(value):
                        raise bad(f"scores.values.{run_name}.{gkey}.{pid}", "needs a finite 'score'")
    mitigation = manifest.get("mitigation")
    if mitigation is not None:
        if not (isinstance(mitigation, dict) and isinstance(mitigation.get("settings"), dict)
                and isinstance(mitigation.get("files"), dict)):
            raise bad("key 'mitigation'", "needs the objects 'settings' and 'files'")
        if not (isinstance(mitigation["settings"].get("seeds"), list)
                and isinstance(mitigation["settings"].get("methods"), dict)):
            raise bad("mitigation.settings", "needs the list 'seeds' and the object 'methods'")
        for pid, entry in mitigation["files"].items():
            if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)
                    and isinstance(entry.get("sha256"), str)):
                raise bad(f"mitigation.files.{pid}", "needs string 'file' and 'sha256'")


class FixtureWriter:
    """Creates or extends a fixture; one run (sampler) at a time."""

    def __init__(self, root: Path, *, model: dict[str, Any], prompts: list[dict[str, Any]], prompt_set: str):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise MemharnessError(f"{self.root}: exists and is not a folder; choose another --out")
        validate.validate_prompts(prompts, "prompts")
        validate.validate(model, validate.CARD, f"model card {model.get('id')!r}")  # its id names report folders
        digest = prompt_set_hash(prompts)
        if (self.root / MANIFEST).exists():
            self.manifest = read_manifest(self.root)
            if self.manifest["model"] != model or self.manifest["prompt_set"]["sha256"] != digest:
                raise MemharnessError(
                    f"{self.root}: holds a fixture of another model card or prompt set; "
                    "choose another --out or delete the folder"
                )
        else:
            self.manifest = {
                "schema_version": schema.SCHEMA_VERSION,
                "harness_version": __version__,
                "model": model,
                "prompt_set": {"name": prompt_set, "sha256": digest},
                "prompts": prompts,
                "runs": {},
            }
        self.manifest["harness_version"] = __version__

    def _save(self) -> None:
        atomic_write_bytes(self.root / MANIFEST, _manifest_bytes(self.manifest))

    def begin_run(self, sampler: str, settings: dict[str, Any], *, overwrite: bool = False) -> RunWriter:
        runs = self.manifest["runs"]
        existing = runs.get(sampler)
        if existing is not None and existing["settings"] != settings:
            if not overwrite:
                raise MemharnessError(
                    f"{self.root}: run {sampler!r} was recorded with other settings; "
                    "pass --overwrite to replace it or choose another --out"
                )
            existing = None
        if existing is None:
            replaced = sampler in runs
            runs[sampler] = {"settings": settings, "files": {}}
            if replaced:  # --overwrite: what was computed from the old run goes, nothing else
                values = (self.manifest.get("scores") or {}).get("values", {})
                values.pop(sampler, None)
                if "scores" in self.manifest and not values:
                    self.manifest.pop("scores")
                if (self.manifest.get("mitigation") or {}).get("settings", {}).get("sampler") == sampler:
                    self.manifest.pop("mitigation")  # mitigation runs pair with the old run's seeds
            # Not saved yet: the run appears in the manifest with its first prompt, so a trace that
            # fails or is killed before it leaves the fixture as it was.
        return RunWriter(self, sampler)

    def write_scores(self, scores: dict[str, Any]) -> None:
        self.manifest["scores"] = scores
        self._save()

    def write_section(self, key: str, value: dict[str, Any] | None) -> None:
        """Set (None: remove) a top-level manifest section such as "mitigation", atomically."""
        if value is None:
            self.manifest.pop(key, None)
        else:
            self.manifest[key] = value
        self._save()


class RunWriter:
    def __init__(self, fixture: FixtureWriter, sampler: str):
        self.fixture, self.sampler = fixture, sampler
        self.run = fixture.manifest["runs"][sampler]

    def is_done(self, prompt_id: str) -> bool:
        entry = self.run["files"].get(prompt_id)
        if entry is None:
            return False
        path = contained(self.fixture.root, entry["file"], f"{self.fixture.root / MANIFEST}: runs.{self.sampler}")
        return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]

    def write_prompt(self, prompt_id: str, x: np.ndarray, groups: dict[float, dict[str, np.ndarray]]) -> None:
        tensors = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        for g, arrays in groups.items():
            for name, value in arrays.items():
                if not np.all(np.isfinite(value)):
                    raise MemharnessError(f"prompt {prompt_id}: {name} at g={g:g} is not finite; the model diverged")
                tensors[f"{schema.guidance_key(g)}/{name}"] = np.ascontiguousarray(value)
        self.adopt_prompt(prompt_id, st_save(tensors))

    def adopt_prompt(self, prompt_id: str, data: bytes) -> None:
        """Store one prompt's safetensors bytes (written here, or by a shard) and record its checksum."""
        check_id(prompt_id, f"prompt {prompt_id!r}")
        check_id(self.sampler, f"run {self.sampler!r}")
        rel = f"{self.sampler}/{prompt_id}.safetensors"
        atomic_write_bytes(self.fixture.root / rel, data)
        self.run["files"][prompt_id] = {"file": rel, "sha256": hashlib.sha256(data).hexdigest()}
        self.fixture._save()


# How much stacked Gram data (float32 columns as stored, float64 columns as read) a Fixture keeps; beyond it the
# least recently used columns go and are read again from the files when asked for. At the paper's scale (436
# prompts) everything fits; at 10x it bounds memory. MEMHARNESS_GROUP_CACHE_MB overrides it.
DEFAULT_COLUMN_CACHE_BYTES = 512 * 2**20

# Gram columns in the order they are kept when not all fit in the cache at stacking time: the ones the claims
# read over every step first (the x̂0 error, x_t against x_T, x and x_0), the first-step residuals after.
_PAIR_PRIORITY = (("x0_err", "x0_err"), ("x0_err", "x"), ("x_t", "x_T"), ("x_t", "x"), ("x_t", "x_0"),
                  ("x_t", "x_t"), ("x_t", "x0_err"), ("x0_err", "x_T"))


class _ColumnCache:
    """Least-recently-used store of Gram columns, keyed (sampler, g, column, dtype), bounded in bytes."""

    def __init__(self, budget: int):
        self.budget = budget
        self.entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple) -> np.ndarray | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def pop(self, key: tuple) -> np.ndarray | None:
        value = self.entries.pop(key, None)
        if value is not None:
            self.bytes -= value.nbytes
        return value

    def make_room(self, nbytes: int) -> None:
        while self.entries and self.bytes + nbytes > self.budget:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.nbytes

    def put(self, key: tuple, value: np.ndarray) -> None:
        self.pop(key)
        self.make_room(value.nbytes)
        self.entries[key] = value
        self.bytes += value.nbytes

    def room_for(self, nbytes: int) -> int:
        """How many columns of nbytes fit, after evicting everything older if need be."""
        return self.budget // nbytes if nbytes else 0


@dataclass(frozen=True)
class Group:
    """One (sampler, guidance scale) across all prompts of a fixture, arrays stacked on axis 0 (P).

    ``arrays`` holds the small per-group arrays (gram_final, trace_cov, pc1_cos_x, pc1_var_ratio,
    final_cos, and guidance_norm where every prompt file has it) as stored. The per-step Gram matrix is
    kept column by column (one column per pair, (P, N, S)): :meth:`inner` casts a column to float64 once
    and keeps the cast, read-only, in the fixture's bounded column cache; a column no longer cached is
    read again from the fixture's files.
    """

    sampler: str
    guidance: float
    timesteps: np.ndarray  # (S,)
    seeds: tuple[int, ...]
    prompt_ids: tuple[str, ...]
    with_uncond: bool
    arrays: dict[str, np.ndarray]
    column: Callable[[int], np.ndarray] | None = field(default=None, repr=False, compare=False)
    _final64: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def _gram_column(self, index: int) -> np.ndarray:
        if self.column is not None:
            return self.column(index)
        return self.arrays["gram"][..., index].astype(np.float64)  # a Group built by hand, with a whole gram

    def inner(self, a: str, b: str) -> np.ndarray:
        """⟨a, b⟩ per prompt, seed and step: (P, N, S), float64, read-only. One of a, b must be a step vector."""
        pairs = schema.step_pairs(self.with_uncond)
        for key in ((a, b), (b, a)):
            if key in pairs:
                return self._gram_column(pairs.index(key))
        raise MemharnessError(f"fixture {self.sampler} g={self.guidance:g}: no inner product ⟨{a}, {b}⟩ recorded")

    def inner_final(self, a: str, b: str) -> np.ndarray:
        """⟨a, b⟩ among x_T, x_0, x per prompt and seed: (P, N), float64, read-only."""
        pairs = schema.const_pairs()
        for key in ((a, b), (b, a)):
            if key in pairs:
                index = pairs.index(key)
                if index not in self._final64:  # cast once: (P, N) per pair is small
                    value = self.arrays["gram_final"][..., index].astype(np.float64)
                    value.setflags(write=False)
                    self._final64[index] = value
                return self._final64[index]
        raise MemharnessError(f"fixture: no final inner product ⟨{a}, {b}⟩ recorded")

    def guidance_norms(self) -> np.ndarray:
        """‖ε_c − ε_u‖ per prompt, seed and step (Wen et al.'s magnitude; §4): (P, N, S), float64. Needs ε_u (g ≠ 1).

        The recorded ``guidance_norm`` where the fixture has it; older fixtures lack it, and it is rebuilt from
        the Gram entries as ‖r_c − r_u‖ (r = ε − x_T), which cancels where ε_c ≈ ε_u (late steps)."""
        if not self.with_uncond:
            raise MemharnessError(f"fixture {self.sampler} g={self.guidance:g}: ε_u is not recorded at g = 1; "
                                  "use a run with g ≠ 1")
        recorded = self.arrays.get("guidance_norm")
        if recorded is not None:
            return recorded.astype(np.float64)
        return guidance_magnitude(self.inner("eps_c_res", "eps_c_res"), self.inner("eps_u_res", "eps_u_res"),
                                  self.inner("eps_u_res", "eps_c_res"))

    def inner_states(self, a_state: str, b: str) -> np.ndarray:
        """⟨x_state, b⟩ for all S+1 states x_T … x_0, with b in x_T, x_0, x: (P, N, S+1)."""
        del a_state  # the state vector is x_t by construction; kept for readable call sites
        return np.concatenate([self.inner("x_t", b), self.inner_final("x_0", b)[..., None]], axis=-1)

    def norm2_states(self) -> np.ndarray:
        """‖x_state‖² for all S+1 states: (P, N, S+1)."""
        return np.concatenate([self.inner("x_t", "x_t"), self.inner_final("x_0", "x_0")[..., None]], axis=-1)


_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16,
              "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def _st_header(data: bytes | memoryview) -> tuple[int, dict[str, Any]]:
    """The safetensors header of ``data``: (offset of the data section, {name: entry}); ValueError if malformed."""
    if len(data) < 8:
        raise ValueError("file shorter than its header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("header length beyond the end of the file")
    header = json.loads(bytes(data[8:8 + size]))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    header.pop("__metadata__", None)
    start = 8 + size
    for name, entry in header.items():
        if not (isinstance(entry, dict) and entry.get("dtype") in _ST_DTYPES
                and isinstance(entry.get("shape"), list) and isinstance(entry.get("data_offsets"), list)
                and len(entry["data_offsets"]) == 2):
            raise ValueError(f"bad header entry {name!r}")
        lo, hi = entry["data_offsets"]
        count = int(np.prod(entry["shape"], dtype=np.int64))
        itemsize = np.dtype(_ST_DTYPES[entry["dtype"]]).itemsize
        if not (0 <= lo <= hi <= len(data) - start and hi - lo == count * itemsize):
            raise ValueError(f"data offsets of {name!r} out of bounds or not its size")
    return start, header


def _st_array(data: bytes | memoryview, start: int, entry: dict[str, Any]) -> np.ndarray:
    """One array of a safetensors buffer, without copying it."""
    lo, hi = entry["data_offsets"]
    dtype = np.dtype(_ST_DTYPES[entry["dtype"]]).newbyteorder("<")
    value = np.frombuffer(data, dtype=dtype, count=(hi - lo) // dtype.itemsize, offset=start + lo)
    return value.reshape(entry["shape"])


class Fixture:
    """A verified, read-only fixture."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise _no_fixture(self.root)
        self.manifest = read_manifest(self.root)
        self.model: dict[str, Any] = self.manifest["model"]
        self.prompts: list[dict[str, Any]] = self.manifest["prompts"]
        self._cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}  # mitigation arrays (small) only
        self._groups: dict[tuple[str, float], Group] = {}  # claims share groups: stack each once
        budget = os.environ.get("MEMHARNESS_GROUP_CACHE_MB")
        self._columns = _ColumnCache(int(float(budget) * 2**20) if budget else DEFAULT_COLUMN_CACHE_BYTES)

    @property
    def runs(self) -> dict[str, Any]:
        return self.manifest["runs"]

    def incomplete_runs(self) -> list[str]:
        """Runs whose files do not cover every prompt (an interrupted trace)."""
        ids = {p["id"] for p in self.prompts}
        return [name for name, run in self.runs.items() if not ids <= set(run["files"])]

    def require_complete_run(self) -> None:
        """Fail (one line) unless at least one run covers every prompt: nothing to check otherwise."""
        incomplete = self.incomplete_runs()
        if len(incomplete) < len(self.runs):
            return
        if not self.runs:
            raise MemharnessError(f"{self.root}: no complete run (the fixture holds no run); record one with "
                                  "`memharness trace`")
        name = incomplete[0]
        done = len(set(self.runs[name]["files"]) & {p["id"] for p in self.prompts})
        raise MemharnessError(f"{self.root}: no complete run (run {name!r} has {done} of {len(self.prompts)} "
                              "prompts); run the same `memharness trace` command again to finish it")

    @property
    def scores(self) -> dict[str, Any] | None:
        return self.manifest.get("scores")

    def scores_for(self, sampler: str, g: float) -> dict[str, Any] | None:
        """The memorization scores of the (sampler, g) generations, {prompt id: {score, train, ...}}; None if unscored.

        The one place that knows the manifest keys scales as schema.guidance_key(g) ("g7.5")."""
        by_scale = ((self.scores or {}).get("values") or {}).get(sampler) or {}
        return by_scale.get(schema.guidance_key(g)) or None

    def guidance_scales(self, sampler: str) -> list[float]:
        return [float(g) for g in self.runs[sampler]["settings"]["guidance"]] if sampler in self.runs else []

    def _run_entry(self, sampler: str, prompt_id: str) -> dict[str, Any]:
        entry = self.runs[sampler]["files"].get(prompt_id)
        if entry is None:
            raise MemharnessError(
                f"{self.root}: run {sampler!r} lacks prompt {prompt_id!r} (interrupted trace?); "
                "run the same `memharness trace` command again to finish it"
            )
        return entry

    def _load_prompt(self, sampler: str, prompt_id: str) -> dict[str, np.ndarray]:
        """One prompt's arrays, read and verified each time (not cached: groups hold what the claims read)."""
        return self._read_verified(self._run_entry(sampler, prompt_id), "memharness trace")

    def _read_checked_bytes(self, entry: dict[str, Any], command: str,
                            buffer: list[bytearray] | None = None) -> tuple[Path, bytes | memoryview]:
        """A manifest file entry's bytes, checked: present and its checksum. With ``buffer`` (one bytearray,
        replaced by a larger one when a file does not fit), the bytes are read into it and a view of them is
        returned; the next read overwrites it."""
        path = contained(self.root, entry["file"], f"{self.root / MANIFEST}: file entry")
        if not path.is_file():
            raise MemharnessError(f"{path}: missing; re-run `{command}` to record it")
        try:
            if buffer is None:
                data = path.read_bytes()
            else:
                with open(path, "rb", buffering=0) as handle:
                    size = os.fstat(handle.fileno()).st_size
                    if len(buffer[0]) <= size:
                        buffer[0] = bytearray(size + 1)  # a new one: views of the old stay valid
                    view = memoryview(buffer[0])
                    got = 0
                    while True:  # to the end of the file, even if it grew since fstat
                        n = handle.readinto(view[got:])
                        if not n:
                            break
                        got += n
                        if got == len(view):
                            buffer[0] = bytearray(2 * got)
                            buffer[0][:got] = view
                            view = memoryview(buffer[0])
                    data = view[:got]
        except OSError as exc:
            raise MemharnessError(f"{path}: cannot read it ({exc.strerror})") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise MemharnessError(f"{path}: checksum mismatch (changed or truncated); re-run `{command}`")
        return path, data

    def _read_verified(self, entry: dict[str, Any], command: str,
                       names: Callable[[str], bool] | None = None) -> dict[str, np.ndarray]:
        """A manifest file entry's arrays, checked: present, checksum, safetensors, finite.

        With ``names``, only the arrays it accepts are returned and checked, as read-only views of the
        file's bytes (no copy); the checksum still covers the whole file.
        """
        path, data = self._read_checked_bytes(entry, command)
        if names is not None:
            return self._arrays_of(path, data, names)[0]
        try:
            arrays = st_load(data)
        except (SafetensorError, ValueError) as exc:
            raise MemharnessError(f"{path}: not a readable safetensors file ({exc})") from None
        for name, value in arrays.items():
            validate.check_array(name, value, str(path))
        return arrays

    def prompt_arrays(self, sampler: str, prompt_id: str) -> dict[str, np.ndarray]:
        """One prompt's verified arrays of a run (x and every guidance scale's), as stored."""
        if sampler not in self.runs:
            raise MemharnessError(f"{self.root}: no {sampler!r} run in this fixture")
        return self._load_prompt(sampler, prompt_id)

    @property
    def mitigation(self) -> dict[str, Any] | None:
        """The "mitigation" section (``memharness mitigate``), or None."""
        return self.manifest.get("mitigation")

    def mitigation_arrays(self, prompt_id: str) -> dict[str, np.ndarray]:
        """One prompt's mitigation arrays, verified: per method <m>/switch_step, <m>/train_cos (N,),
        <m>/latent_score (3,) = Eq 9's (train, generate, score) on latents."""
        section = self.mitigation
        if section is None:
            raise MemharnessError(f"{self.root}: no mitigation runs; record them with `memharness mitigate`")
        key = ("mitigation", prompt_id)
        if key in self._cache:
            return self._cache[key]
        entry = section["files"].get(prompt_id)
        if entry is None:
            raise MemharnessError(
                f"{self.root}: the mitigation runs lack prompt {prompt_id!r} (interrupted?); "
                "run the same `memharness mitigate` command again to finish them"
            )
        arrays = self._read_verified(entry, "memharness mitigate")
        n = len(section["settings"]["seeds"])
        for method in section["settings"]["methods"]:
            for name, shape in (("switch_step", (n,)), ("train_cos", (n,)), ("latent_score", (3,))):
                value = arrays.get(f"{method}/{name}")
                if value is None or value.shape != shape:
                    got = None if value is None else value.shape
                    raise MemharnessError(f"{self.root / entry['file']}: array {method}/{name} has shape {got}, "
                                          f"expected {shape}")
        self._cache[key] = arrays
        return arrays

    def group(self, sampler: str, guidance: float) -> Group:
        key = (sampler, float(guidance))
        if key not in self._groups:
            self._groups[key] = self._stack_group(sampler, float(guidance))
        return self._groups[key]

    def _stack_group(self, sampler: str, guidance: float) -> Group:
        """Read the group's arrays of every prompt file straight into preallocated stacked arrays.

        Each file is read and verified once (checksum of the whole file; dtype, shape and finiteness of
        this group's arrays); the paired latent x and the other guidance scales' arrays are not copied.
        The Gram matrix is split into one float32 column per pair, kept (most read first) as far as the
        column cache allows; columns left out are read again from the files when asked for.
        """
        if sampler not in self.runs:
            raise MemharnessError(f"{self.root}: no {sampler!r} run in this fixture")
        settings = self.runs[sampler]["settings"]
        if float(guidance) not in self.guidance_scales(sampler):
            raise MemharnessError(f"{self.root}: run {sampler!r} has no guidance scale {guidance:g}")
        n, s = len(settings["seeds"]), len(settings["timesteps"])
        prefix = schema.guidance_key(guidance) + "/"
        with_uncond = uses_unconditional(guidance)
        pairs = schema.step_pairs(with_uncond)
        expected = {
            "gram": (n, s, len(pairs)),
            "gram_final": (n, len(schema.const_pairs())),
            "trace_cov": (s + 1,),
            "pc1_cos_x": (s, 2),
            "pc1_var_ratio": (s, 2),
            "final_cos": (n, n),
        }
        optional = validate.optional_group_shapes(n, s, with_uncond=with_uncond)
        ids = tuple(p["id"] for p in self.prompts)
        count = len(ids)
        wanted = {prefix + name for name in (*expected, *optional)}
        column_bytes = count * n * s * 4
        order = sorted(range(len(pairs)), key=lambda k: next(
            (i for i, pair in enumerate(_PAIR_PRIORITY) if pair in (pairs[k], pairs[k][::-1])), len(_PAIR_PRIORITY)))
        keep = order[:min(len(pairs), self._columns.room_for(column_bytes))]
        self._columns.make_room(len(keep) * column_bytes)
        locations: list[tuple[Path, int, int, int]] = []  # per prompt: file, gram's offset, size and mtime
        buffer = [bytearray()]  # every file is read into it in turn; what is kept is copied out
        gram_columns = {k: np.empty((count, n, s), dtype=np.float32) for k in keep}
        stacked: dict[str, np.ndarray] = {}
        lacking: set[str] = set()
        for i, prompt_id in enumerate(ids):
            entry = self._run_entry(sampler, prompt_id)
            path, data = self._read_checked_bytes(entry, "memharness trace", buffer)
            arrays, offsets = self._arrays_of(path, data, wanted.__contains__)
            if prefix + "gram" in offsets:
                stat = path.stat()
                locations.append((path, offsets[prefix + "gram"], stat.st_size, stat.st_mtime_ns))
            for name, shape in {**expected, **optional}.items():
                value = arrays.get(prefix + name)
                if value is None and name in optional:
                    lacking.add(name)  # an older file: the whole group reads without it
                    continue
                if value is None or value.shape != shape:
                    got = None if value is None else value.shape
                    raise MemharnessError(
                        f"{self.root / entry['file']}: array {prefix + name} has shape {got}, expected {shape}")
                if name == "gram":
                    for k, column in gram_columns.items():
                        column[i] = value[..., k]
                    continue
                if name not in stacked:
                    stacked[name] = np.empty((count, *shape), dtype=value.dtype)
                elif stacked[name].dtype != value.dtype:
                    stacked[name] = stacked[name].astype(np.result_type(stacked[name], value))
                stacked[name][i] = value
        for name in lacking:
            stacked.pop(name, None)
        group_key = (sampler, float(guidance))
        for k in order[::-1]:  # the most read columns are the most recently used
            if k in gram_columns:
                self._columns.put((*group_key, k, "float32"), gram_columns.pop(k))

        def column(index: int) -> np.ndarray:
            key64 = (*group_key, index, "float64")
            value = self._columns.get(key64)
            if value is not None:
                return value
            stored = self._columns.pop((*group_key, index, "float32"))
            value = stored.astype(np.float64) if stored is not None else self._read_gram_column(
                sampler, prefix, ids, index, (n, s, len(pairs)), locations)
            del stored
            value.setflags(write=False)  # shared by every claim that reads it
            self._columns.put(key64, value)
            return value

        return Group(
            sampler=sampler,
            guidance=float(guidance),
            timesteps=np.asarray(settings["timesteps"]),
            seeds=tuple(settings["seeds"]),
            prompt_ids=ids,
            with_uncond=with_uncond,
            arrays=stacked,
            column=column,
        )

    def _arrays_of(self, path: Path, data: bytes | memoryview,
                   names: Callable[[str], bool]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """The accepted arrays of a checked file's bytes, as views, checked; and their offsets in the file."""
        try:
            start, header = _st_header(data)
        except (ValueError, UnicodeDecodeError, struct.error) as exc:
            raise MemharnessError(f"{path}: not a readable safetensors file ({exc})") from None
        arrays = {name: _st_array(data, start, item) for name, item in header.items() if names(name)}
        for name, value in arrays.items():
            validate.check_array(name, value, str(path))
        return arrays, {name: start + header[name]["data_offsets"][0] for name in arrays}

    def _read_gram_column(self, sampler: str, prefix: str, ids: tuple[str, ...], index: int,
                          shape: tuple[int, int, int], locations: list[tuple[Path, int, int, int]]) -> np.ndarray:
        """One Gram column of a group, (P, N, S) float64, read again from the files verified when the group
        was stacked: only the gram's bytes (no checksum again) unless the file changed since; then in full."""
        out = np.empty((len(ids), *shape[:2]), dtype=np.float64)
        nbytes = int(np.prod(shape)) * 4
        for i, prompt_id in enumerate(ids):
            path, offset, size, mtime = locations[i]
            value = None
            try:
                with open(path, "rb") as handle:
                    stat = os.fstat(handle.fileno())
                    if (stat.st_size, stat.st_mtime_ns) == (size, mtime):
                        data = os.pread(handle.fileno(), nbytes, offset)
                        if len(data) == nbytes:
                            value = np.frombuffer(data, dtype="<f4").reshape(shape)
            except OSError:
                pass
            if value is None:  # changed or unreadable since: the full, verified read says what is wrong
                arrays = self._read_verified(self._run_entry(sampler, prompt_id), "memharness trace",
                                             names=(prefix + "gram").__eq__)
                value = arrays.get(prefix + "gram")
                if value is None or value.shape != shape:
                    raise MemharnessError(f"{self.root / self.runs[sampler]['files'][prompt_id]['file']}: "
                                          f"array {prefix}gram changed while it was read; re-run `memharness trace`")
            out[i] = value[..., index]
        return out

    def verify(self) -> None:
        """Load every group once: checksums, shapes and finiteness of the whole fixture (the paired latent x,
        which groups skip, is checked file by file)."""
        for sampler in self.runs:
            for g in self.guidance_scales(sampler):
                self.group(sampler, g)
            for prompt in self.prompts:
                self._read_verified(self._run_entry(sampler, prompt["id"]), "memharness trace",
                                    names="x".__eq__)
        if self.mitigation is not None:
            for prompt in self.prompts:
                self.mitigation_arrays(prompt["id"])
