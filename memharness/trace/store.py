"""The fixture store: ``fixtures/<model>/`` as data only, and :class:`Fixture`, its verified reader.

Layout::

    manifest.json              schema version, card, scheduler, prompts, runs, scores, sha256 per file
    <sampler>/<prompt>.safetensors   arrays of schema.GROUP_ARRAYS per guidance scale, plus x
    mitigation/<prompt>.safetensors  optional: guidance-policy runs (``memharness mitigate``), per method

Writing is ``trace.writer`` (atomic, resumable prompt by prompt), the manifest ``trace.manifest``, a stacked
(sampler, guidance scale) ``trace.group`` and the zero-copy file reads ``trace.safetensors_view``. Reading
verifies schema version, the manifest's schema (``validate.MANIFEST``), that every file it names lies inside
the folder, checksums, dtypes, shapes and finite magnitudes, and fails with one line naming the file and key.

Nothing recorded is lost: a run's manifest entry appears with its first prompt (a trace killed
before it leaves the fixture as it was), a new run keeps the scores and mitigation runs of the
others, and replacing a run (``--overwrite``) drops only what was computed from it. A run whose
files do not cover every prompt is incomplete (:meth:`Fixture.incomplete_runs`); a fixture with
no complete run cannot be checked (:meth:`Fixture.require_complete_run`). Writers hold the
folder's lock (``safety.FolderLock``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load

from memharness.errors import MemharnessError
from memharness.guidance import uses_unconditional
from memharness.trace import schema, validate
from memharness.trace.group import DEFAULT_COLUMN_CACHE_BYTES, ColumnCache, Group, column_order
from memharness.trace.manifest import MANIFEST, no_fixture, read_manifest
from memharness.trace.safetensors_view import checked_views, read_into
from memharness.trace.safety import contained


@dataclass(frozen=True)
class _GroupLayout:
    """The arrays each prompt file holds for one (sampler, guidance scale), under ``prefix``, with their shapes."""

    sampler: str
    guidance: float
    prefix: str  # schema.guidance_key(g) + "/"
    ids: tuple[str, ...]
    n: int  # seeds
    s: int  # steps
    with_uncond: bool
    pairs: tuple[tuple[str, str], ...]  # schema.step_pairs: the Gram columns
    expected: dict[str, tuple[int, ...]]
    optional: dict[str, tuple[int, ...]]  # arrays older files lack; the group then reads without them

    @property
    def gram_shape(self) -> tuple[int, int, int]:
        return (self.n, self.s, len(self.pairs))


def _stack_prompt(layout: _GroupLayout, i: int, arrays: dict[str, np.ndarray], where: Path,
                  gram_columns: dict[int, np.ndarray], stacked: dict[str, np.ndarray], lacking: set[str]) -> None:
    """Prompt i's checked arrays (``where`` names its file) copied into the group's stacked arrays."""
    prefix = layout.prefix
    for name, shape in {**layout.expected, **layout.optional}.items():
        value = arrays.get(prefix + name)
        if value is None and name in layout.optional:
            lacking.add(name)  # an older file: the whole group reads without it
            continue
        if value is None or value.shape != shape:
            got = None if value is None else value.shape
            raise MemharnessError(
                f"{where}: array {prefix + name} has shape {got}, expected {shape}")
        if name == "gram":
            for k, column in gram_columns.items():
                column[i] = value[..., k]
            continue
        if name not in stacked:
            stacked[name] = np.empty((len(layout.ids), *shape), dtype=value.dtype)
        elif stacked[name].dtype != value.dtype:
            stacked[name] = stacked[name].astype(np.result_type(stacked[name], value))
        stacked[name][i] = value


class Fixture:
    """A verified, read-only fixture."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise no_fixture(self.root)
        self.manifest = read_manifest(self.root)
        self.model: dict[str, Any] = self.manifest["model"]
        self.prompts: list[dict[str, Any]] = self.manifest["prompts"]
        self._cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}  # mitigation arrays (small) only
        self._groups: dict[tuple[str, float], Group] = {}  # claims share groups: stack each once
        budget = os.environ.get("MEMHARNESS_GROUP_CACHE_MB")
        self._columns = ColumnCache(int(float(budget) * 2**20) if budget else DEFAULT_COLUMN_CACHE_BYTES)

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
                data = read_into(path, buffer)
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
            return checked_views(path, data, names)[0]
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
        layout = self._group_layout(sampler, guidance)
        settings = self.runs[sampler]["settings"]
        column_bytes = len(layout.ids) * layout.n * layout.s * 4
        order = column_order(layout.pairs)
        keep = order[:min(len(layout.pairs), self._columns.room_for(column_bytes))]
        self._columns.make_room(len(keep) * column_bytes)
        gram_columns = {k: np.empty((len(layout.ids), layout.n, layout.s), dtype=np.float32) for k in keep}
        stacked, locations = self._read_group_files(layout, gram_columns)
        for k in order[::-1]:  # the most read columns are the most recently used
            if k in gram_columns:
                self._columns.put((sampler, float(guidance), k, "float32"), gram_columns.pop(k))
        return Group(
            sampler=sampler,
            guidance=float(guidance),
            timesteps=np.asarray(settings["timesteps"]),
            seeds=tuple(settings["seeds"]),
            prompt_ids=layout.ids,
            with_uncond=layout.with_uncond,
            arrays=stacked,
            column=self._column_reader(layout, locations),
        )

    def _group_layout(self, sampler: str, guidance: float) -> _GroupLayout:
        """The arrays a group's prompt files must hold, with their shapes; fails if the run or scale is absent."""
        if sampler not in self.runs:
            raise MemharnessError(f"{self.root}: no {sampler!r} run in this fixture")
        settings = self.runs[sampler]["settings"]
        if float(guidance) not in self.guidance_scales(sampler):
            raise MemharnessError(f"{self.root}: run {sampler!r} has no guidance scale {guidance:g}")
        n, s = len(settings["seeds"]), len(settings["timesteps"])
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
        return _GroupLayout(sampler=sampler, guidance=float(guidance), prefix=schema.guidance_key(guidance) + "/",
                            ids=tuple(p["id"] for p in self.prompts), n=n, s=s, with_uncond=with_uncond,
                            pairs=pairs, expected=expected,
                            optional=validate.optional_group_shapes(n, s, with_uncond=with_uncond))

    def _read_group_files(self, layout: _GroupLayout, gram_columns: dict[int, np.ndarray],
                          ) -> tuple[dict[str, np.ndarray], list[tuple[Path, int, int, int]]]:
        """Every prompt file of the group read once, into ``gram_columns`` and stacked small arrays.

        Returns the stacked arrays and, per prompt, the file, the gram's offset in it, its size and mtime."""
        wanted = {layout.prefix + name for name in (*layout.expected, *layout.optional)}
        locations: list[tuple[Path, int, int, int]] = []
        buffer = [bytearray()]  # every file is read into it in turn; what is kept is copied out
        stacked: dict[str, np.ndarray] = {}
        lacking: set[str] = set()
        for i, prompt_id in enumerate(layout.ids):
            entry = self._run_entry(layout.sampler, prompt_id)
            path, data = self._read_checked_bytes(entry, "memharness trace", buffer)
            arrays, offsets = checked_views(path, data, wanted.__contains__)
            if layout.prefix + "gram" in offsets:
                stat = path.stat()
                locations.append((path, offsets[layout.prefix + "gram"], stat.st_size, stat.st_mtime_ns))
            _stack_prompt(layout, i, arrays, self.root / entry["file"], gram_columns, stacked, lacking)
        for name in lacking:
            stacked.pop(name, None)
        return stacked, locations

    def _column_reader(self, layout: _GroupLayout,
                       locations: list[tuple[Path, int, int, int]]) -> Callable[[int], np.ndarray]:
        """Group.column: a Gram column as float64, cast once from the cached float32 or read from the files."""
        group_key = (layout.sampler, layout.guidance)

        def column(index: int) -> np.ndarray:
            key64 = (*group_key, index, "float64")
            value = self._columns.get(key64)
            if value is not None:
                return value
            stored = self._columns.pop((*group_key, index, "float32"))
            value = stored.astype(np.float64) if stored is not None else self._read_gram_column(
                layout, index, locations)
            del stored
            value.setflags(write=False)  # shared by every claim that reads it
            self._columns.put(key64, value)
            return value

        return column

    def _read_gram_column(self, layout: _GroupLayout, index: int,
                          locations: list[tuple[Path, int, int, int]]) -> np.ndarray:
        """One Gram column of a group, (P, N, S) float64, read again from the files verified when the group
        was stacked: only the gram's bytes (no checksum again) unless the file changed since; then in full."""
        sampler, prefix, ids, shape = layout.sampler, layout.prefix, layout.ids, layout.gram_shape
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
