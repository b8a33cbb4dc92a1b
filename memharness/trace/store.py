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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from memharness import __version__
from memharness.errors import MemharnessError
from memharness.trace import schema, validate
from memharness.trace.safety import check_id, contained

MANIFEST = "manifest.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; fixtures are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


@dataclass(frozen=True)
class Group:
    """One (sampler, guidance scale) across all prompts of a fixture, arrays stacked on axis 0 (P)."""

    sampler: str
    guidance: float
    timesteps: np.ndarray  # (S,)
    seeds: tuple[int, ...]
    prompt_ids: tuple[str, ...]
    with_uncond: bool
    arrays: dict[str, np.ndarray]

    def inner(self, a: str, b: str) -> np.ndarray:
        """⟨a, b⟩ per prompt, seed and step: (P, N, S). One of a, b must be a step vector."""
        pairs = schema.step_pairs(self.with_uncond)
        for key in ((a, b), (b, a)):
            if key in pairs:
                return self.arrays["gram"][..., pairs.index(key)].astype(np.float64)
        raise MemharnessError(f"fixture {self.sampler} g={self.guidance:g}: no inner product ⟨{a}, {b}⟩ recorded")

    def inner_final(self, a: str, b: str) -> np.ndarray:
        """⟨a, b⟩ among x_T, x_0, x per prompt and seed: (P, N)."""
        pairs = schema.const_pairs()
        for key in ((a, b), (b, a)):
            if key in pairs:
                return self.arrays["gram_final"][..., pairs.index(key)].astype(np.float64)
        raise MemharnessError(f"fixture: no final inner product ⟨{a}, {b}⟩ recorded")

    def inner_states(self, a_state: str, b: str) -> np.ndarray:
        """⟨x_state, b⟩ for all S+1 states x_T … x_0, with b in x_T, x_0, x: (P, N, S+1)."""
        del a_state  # the state vector is x_t by construction; kept for readable call sites
        return np.concatenate([self.inner("x_t", b), self.inner_final("x_0", b)[..., None]], axis=-1)

    def norm2_states(self) -> np.ndarray:
        """‖x_state‖² for all S+1 states: (P, N, S+1)."""
        return np.concatenate([self.inner("x_t", "x_t"), self.inner_final("x_0", "x_0")[..., None]], axis=-1)


class Fixture:
    """A verified, read-only fixture."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise _no_fixture(self.root)
        self.manifest = read_manifest(self.root)
        self.model: dict[str, Any] = self.manifest["model"]
        self.prompts: list[dict[str, Any]] = self.manifest["prompts"]
        self._cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        self._groups: dict[tuple[str, float], Group] = {}  # claims share groups: stack each once

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

    def guidance_scales(self, sampler: str) -> list[float]:
        return [float(g) for g in self.runs[sampler]["settings"]["guidance"]] if sampler in self.runs else []

    def _load_prompt(self, sampler: str, prompt_id: str) -> dict[str, np.ndarray]:
        key = (sampler, prompt_id)
        if key in self._cache:
            return self._cache[key]
        entry = self.runs[sampler]["files"].get(prompt_id)
        if entry is None:
            raise MemharnessError(
                f"{self.root}: run {sampler!r} lacks prompt {prompt_id!r} (interrupted trace?); "
                "run the same `memharness trace` command again to finish it"
            )
        self._cache[key] = self._read_verified(entry, "memharness trace")
        return self._cache[key]

    def _read_verified(self, entry: dict[str, Any], command: str) -> dict[str, np.ndarray]:
        """A manifest file entry's arrays, checked: present, checksum, safetensors, finite."""
        path = contained(self.root, entry["file"], f"{self.root / MANIFEST}: file entry")
        if not path.is_file():
            raise MemharnessError(f"{path}: missing; re-run `{command}` to record it")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MemharnessError(f"{path}: cannot read it ({exc.strerror})") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise MemharnessError(f"{path}: checksum mismatch (changed or truncated); re-run `{command}`")
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
        if sampler not in self.runs:
            raise MemharnessError(f"{self.root}: no {sampler!r} run in this fixture")
        settings = self.runs[sampler]["settings"]
        if float(guidance) not in self.guidance_scales(sampler):
            raise MemharnessError(f"{self.root}: run {sampler!r} has no guidance scale {guidance:g}")
        n, s = len(settings["seeds"]), len(settings["timesteps"])
        prefix = schema.guidance_key(guidance) + "/"
        with_uncond = float(guidance) != 1.0
        expected = {
            "gram": (n, s, len(schema.step_pairs(with_uncond))),
            "gram_final": (n, len(schema.const_pairs())),
            "trace_cov": (s + 1,),
            "pc1_cos_x": (s, 2),
            "pc1_var_ratio": (s, 2),
            "final_cos": (n, n),
        }
        stacked: dict[str, list[np.ndarray]] = {name: [] for name in expected}
        ids = tuple(p["id"] for p in self.prompts)
        for prompt_id in ids:
            arrays = self._load_prompt(sampler, prompt_id)
            for name, shape in expected.items():
                value = arrays.get(prefix + name)
                if value is None or value.shape != shape:
                    got = None if value is None else value.shape
                    raise MemharnessError(
                        f"{self.root / self.runs[sampler]['files'][prompt_id]['file']}: "
                        f"array {prefix + name} has shape {got}, expected {shape}"
                    )
                stacked[name].append(value)
        return Group(
            sampler=sampler,
            guidance=float(guidance),
            timesteps=np.asarray(settings["timesteps"]),
            seeds=tuple(settings["seeds"]),
            prompt_ids=ids,
            with_uncond=with_uncond,
            arrays={name: np.stack(values) for name, values in stacked.items()},
        )

    def verify(self) -> None:
        """Load every group once: checksums, shapes and finiteness of the whole fixture."""
        for sampler in self.runs:
            for g in self.guidance_scales(sampler):
                self.group(sampler, g)
        if self.mitigation is not None:
            for prompt in self.prompts:
                self.mitigation_arrays(prompt["id"])
