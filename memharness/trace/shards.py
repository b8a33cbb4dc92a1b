"""Several processes, one fixture: shard prompts over ranks, merge the shards on the main process.

Under ``accelerate launch -m memharness trace ...`` (or torchrun) rank r of W traces prompts
r, r+W, r+2W, … into its own shard fixture ``<out>/.shards/rank-r-of-W``; each shard resumes on
its own. Once all ranks are done the main process verifies every shard file against its
shard's checksums and adopts it into ``<out>``, whose manifest then equals a one-process run's.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from memharness.errors import MemharnessError
from memharness.trace.manifest import MANIFEST, read_manifest
from memharness.trace.writer import FixtureWriter

T = TypeVar("T")
SHARDS = ".shards"


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Round-robin: rank r gets items r, r+W, … (balanced when costs are alike)."""
    return list(items[rank::world])


def shard_dir(out: Path, rank: int, world: int) -> Path:
    return Path(out) / SHARDS / f"rank-{rank}-of-{world}"


def merge_shards(
    out: Path, world: int, *, sampler: str, model: dict[str, Any], prompts: list[dict[str, Any]],
    prompt_set: str, overwrite: bool = False, provenance: dict[str, Any] | None = None,
) -> FixtureWriter:
    """Adopt every shard's prompt files into the fixture at ``out``, verified; then drop the shards.
    ``provenance`` (``memharness.runtime.provenance``) goes into the merged run, as ``trace`` records it."""
    out = Path(out)
    for rank in range(world):  # a rank that wrote nothing: not the user's --fixtures, so not no_fixture's words
        if not (shard_dir(out, rank, world) / MANIFEST).is_file():
            raise MemharnessError(f"{shard_dir(out, rank, world)}: rank {rank} recorded no shard; trace again")
    manifests = [read_manifest(shard_dir(out, rank, world)) for rank in range(world)]
    if any(m["runs"].get(sampler, {}).get("settings") != manifests[0]["runs"][sampler]["settings"]
           for m in manifests):
        raise MemharnessError(f"{out / SHARDS}: shards were traced with different settings; delete the folder")
    writer = FixtureWriter(out, model=model, prompts=prompts, prompt_set=prompt_set)
    run = writer.begin_run(sampler, manifests[0]["runs"][sampler]["settings"], overwrite=overwrite)
    if provenance is not None:
        from memharness.trace.tracer import _record_provenance

        _record_provenance(run.run, provenance)
    for rank, manifest in enumerate(manifests):
        for prompt_id, entry in manifest["runs"][sampler]["files"].items():
            path = shard_dir(out, rank, world) / entry["file"]
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise MemharnessError(f"{path}: checksum mismatch while merging shards; trace again")
            run.adopt_prompt(prompt_id, data)
    missing = [p["id"] for p in prompts if p["id"] not in run.run["files"]]
    if missing:
        raise MemharnessError(f"{out}: after merging, {len(missing)} prompts are missing (first {missing[0]!r})")
    shutil.rmtree(out / SHARDS)
    return writer
