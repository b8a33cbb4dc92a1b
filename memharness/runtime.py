"""How a command runs: torch's thread count, and the provenance a fixture records.

Threads. torch's default (one thread per logical CPU) runs 2.5–8× slower than one thread on a
loaded 2-core machine: the threads wait on each other and on the other jobs. The default here
is the number of physical cores, and one per process under ``accelerate launch`` / ``torchrun``
(several processes already share the cores). ``--threads N`` overrides it.

Provenance. Every newly written run of a fixture carries ``runs.<sampler>.provenance``: the
memharness, torch, diffusers and transformers versions, dtype, device, seeds per UNet batch,
torch threads, a sha256 of the model weights, the command line and the date (UTC). It is not
part of the run's settings (a resumed trace compares those), and fixtures written before it
existed read as before.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from pathlib import Path
from typing import Any

from memharness.errors import FieldError

# Weight files whose bytes define a diffusers model (a folder may hold both .bin and .safetensors).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def physical_cores() -> int:
    """Physical cores this process may use (logical CPUs over threads per core), at least 1."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        import psutil

        logical, physical = psutil.cpu_count(logical=True), psutil.cpu_count(logical=False)
        if logical and physical and logical > physical:
            usable = max(1, usable * physical // logical)  # hyper-threads share a core's units
    except Exception:  # psutil missing or unable to tell: the usable logical CPUs
        pass
    return max(1, usable)


def default_threads() -> int:
    """One per process when launched as several processes, else the physical cores."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return 1
    return physical_cores()


def set_threads(requested: int | None) -> int:
    """Set torch's intra-op threads (``--threads N``, or the default); returns the number set."""
    import torch

    n = default_threads() if requested is None else int(requested)
    if n < 1:
        raise FieldError("threads", f"must be ≥ 1, got {n}")
    torch.set_num_threads(n)
    return n


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _versions() -> dict[str, str]:
    from importlib import metadata

    from memharness import __version__

    out = {"memharness": __version__}
    for name in ("torch", "diffusers", "transformers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def weights_sha256(path: str | Path | None) -> str | None:
    """sha256 of a weights file; for a folder, of the sorted "<relative path> <sha256>" lines of its
    weight files (the folder's config files aside). None when there is nothing to hash."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        return None
    lines = [f"{p.relative_to(path).as_posix()} {_file_sha256(p)}"
             for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
    if not lines:
        return None
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(denoiser: Any, *, command: str, batch_size: int | None, threads: int | None) -> dict[str, Any]:
    """What made a run: versions, dtype, device, batch size, threads, weights hash, command, date."""
    record: dict[str, Any] = {"versions": _versions()}
    dtype = getattr(denoiser, "dtype", None)
    if dtype is not None:
        record["dtype"] = str(dtype).replace("torch.", "")
    device = getattr(denoiser, "device", None)
    if device is not None:
        record["device"] = str(device)
    record["batch_size"] = batch_size  # None: all seeds of a prompt in one UNet batch
    if threads is not None:
        record["torch_threads"] = int(threads)
    digest = getattr(denoiser, "weights_sha256", None)
    if callable(digest):
        digest = digest()
    if digest is None:
        digest = (getattr(denoiser, "card", None) and denoiser.card.params.get("weights_sha256")) or None
    if digest:
        record["weights_sha256"] = str(digest)
    record["command"] = command
    record["date"] = utc_now()
    return record


def provenance_line(manifest: dict[str, Any]) -> str | None:
    """One line on how a fixture's runs were recorded, or None when its manifest predates provenance."""
    records = {name: run.get("provenance") for name, run in manifest.get("runs", {}).items()
               if isinstance(run, dict) and isinstance(run.get("provenance"), dict)}
    if not records:
        return None
    dates = ", ".join(f"{name} {record.get('date', '?')}" for name, record in records.items())
    first = next(iter(records.values()))
    versions = first.get("versions") if isinstance(first.get("versions"), dict) else {}
    order = ["memharness", "torch", "diffusers", "transformers"]
    names = sorted(versions, key=lambda name: (order.index(name) if name in order else len(order), name))
    parts = [", ".join(f"{name} {versions[name]}" for name in names)]
    if first.get("dtype") or first.get("device"):
        parts.append(f"{first.get('dtype', '?')} on {first.get('device', '?')}")
    batch = first.get("batch_size")
    parts.append("all seeds in one UNet batch" if batch is None else f"{batch} seeds per UNet batch")
    if first.get("processes"):
        parts.append(f"{first['processes']} processes")
    if first.get("torch_threads"):
        parts.append(f"{first['torch_threads']} torch thread{'s' if first['torch_threads'] != 1 else ''}")
    if first.get("weights_sha256"):
        parts.append(f"weights sha256 {str(first['weights_sha256'])[:12]}")
    keys = ("versions", "dtype", "device", "batch_size", "torch_threads", "weights_sha256")
    same = all({k: r.get(k) for k in keys} == {k: first.get(k) for k in keys} for r in records.values())
    resumed = sum(len(r.get("resumed") or []) for r in records.values())
    line = f"recorded: {dates}; " + "; ".join(p for p in parts if p)
    if not same:
        line += " (for the first run; the others differ, see the manifest)"
    if resumed:
        line += f"; resumed {resumed} time{'s' if resumed != 1 else ''}"
    return line
