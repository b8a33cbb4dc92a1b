"""Writing a fixture: create or extend ``fixtures/<model>/``, one run (sampler) and one prompt at a time.

Every write goes to a temporary file in the same folder and is renamed into place, so an interrupted
trace leaves whole files; the manifest is rewritten after each prompt, which makes tracing resumable
prompt by prompt. A run's manifest entry appears with its first prompt, a new run keeps the scores and
mitigation runs of the others, and replacing a run (``--overwrite``) drops only what was computed from it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as st_save

from memharness import __version__
from memharness.errors import FieldError, MemharnessError
from memharness.trace import schema, validate
from memharness.trace.manifest import MANIFEST, manifest_bytes, prompt_set_hash, read_manifest
from memharness.trace.safety import atomic_write_bytes, check_id, contained


class FixtureWriter:
    """Creates or extends a fixture; one run (sampler) at a time."""

    def __init__(self, root: Path, *, model: dict[str, Any], prompts: list[dict[str, Any]], prompt_set: str):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise FieldError("out", "exists and is not a folder; choose another", value=self.root)
        validate.validate_prompts(prompts, "prompts")
        validate.validate(model, validate.CARD, f"model card {model.get('id')!r}")  # its id names report folders
        digest = prompt_set_hash(prompts)
        if (self.root / MANIFEST).exists():
            self.manifest = read_manifest(self.root)
            if self.manifest["model"] != model or self.manifest["prompt_set"]["sha256"] != digest:
                raise FieldError("out", "holds a fixture of another model card or prompt set; "
                                        "choose another folder or delete this one", value=self.root)
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
        atomic_write_bytes(self.root / MANIFEST, manifest_bytes(self.manifest))

    def begin_run(self, sampler: str, settings: dict[str, Any], *, overwrite: bool = False) -> RunWriter:
        runs = self.manifest["runs"]
        existing = runs.get(sampler)
        if existing is not None and existing["settings"] != settings:
            if not overwrite:
                raise FieldError("out", f"run {sampler!r} was recorded with other settings; pass {{overwrite}} to "
                                        "replace it or choose another folder", value=self.root, mentions=("overwrite",))
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
