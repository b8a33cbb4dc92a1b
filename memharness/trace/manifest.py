"""The fixture manifest (``manifest.json``): its bytes, the prompt set's hash, and a read that validates it.

A manifest names the schema version, model card, scheduler, prompts, runs, scores and the sha256 of every
file; damage shows as one line naming the file and key (``validate.MANIFEST`` plus the checks here that
the readers rely on), never as a KeyError later.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from memharness.errors import FieldError, MemharnessError
from memharness.trace import schema, validate

MANIFEST = "manifest.json"


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def prompt_set_hash(prompts: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()


def no_fixture(root: Path) -> FieldError:
    return FieldError("fixtures", f"no fixture here ({MANIFEST} missing); record one with "
                                  f"`memharness trace --model MODEL --out {root}` or give another folder", value=root)


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise no_fixture(root)
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
