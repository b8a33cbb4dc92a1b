"""Download the paired training images of a prompt set.

The paper could retrieve 436 of Webster's 500 LAION URLs; the rest are gone, moved or
now serve something else. ``fetch_images`` downloads what is still there into ``out/``::

    images/<id>.<ext>        the bytes as served (ext from the decoded format: jpg, png, webp, ...)
    fetch-manifest.json      every item's FetchResult plus totals, rewritten after each finished item
    prompts.jsonl            (``write_prompt_file``) the ok items, for ``memharness trace --prompts``

An image is kept only after HTTP 200, a Content-Type that is ``image/*`` (or missing /
octet-stream), a body within ``max_bytes`` and a full decode by Pillow of at least 16×16
pixels; anything else is a failed item with a short reason ("HTTP 404", "timeout after 4
attempts", ...). Timeouts, 5xx (and 408/429) and connection errors are retried with
exponential backoff; other failures are final. A re-run skips items recorded as ok whose
file still has the recorded sha256 and tries the failed ones again.

Standard library only (concurrent.futures) plus Pillow for the decode check; one HTTP attempt
(redirects, status, type, size, deadline) is :mod:`memharness.data.download`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from memharness.data.download import ItemFailure, classify, download, normalize_url, opener
from memharness.data.prompts import CATEGORIES
from memharness.errors import FieldError, MemharnessError
from memharness.trace.safety import atomic_write_bytes, check_id

MANIFEST = "fetch-manifest.json"
PROMPTS = "prompts.jsonl"
IMAGES = "images"
MANIFEST_FORMAT = "memharness-fetch"
MANIFEST_VERSION = 1
MIN_SIDE = 16

# Pillow format → file extension. Image.open is limited to these decoders (no EPS/ghostscript & co);
# MPO (multi-picture JPEG, as phones write) has no opener of its own: the JPEG one returns it.
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
_DECODERS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]


# --------------------------------------------------------------------------- public types
@dataclass(frozen=True)
class FetchItem:
    """One image to download: ``id`` names the file (``images/<id>.<ext>``) and the prompt."""

    id: str
    url: str
    text: str = ""
    category: str | None = None


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """How to download; each field is named after the CLI option that sets it."""

    timeout: float = 15.0  # seconds per attempt (connect + headers + body, redirects included)
    retries: int = 3  # attempts after the first, for transient failures only
    backoff: float = 1.0  # seconds before the first retry, doubled for each further one
    max_bytes: int = 20_000_000  # size cap; reading stops beyond it
    concurrency: int = 8  # simultaneous downloads
    max_redirects: int = 5

    def __post_init__(self) -> None:
        def number(name: str, value: Any, *, positive: bool) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (positive and value == 0):
                what = "a positive number" if positive else "a number ≥ 0"
                raise FieldError(name, f"must be {what} of seconds, got {value!r}")

        def integer(name: str, value: Any, low: int, high: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise FieldError(name, f"must be an integer from {low} to {high}, got {value!r}")

        number("timeout", self.timeout, positive=True)
        number("backoff", self.backoff, positive=False)
        integer("retries", self.retries, 0, 10)
        integer("max_bytes", self.max_bytes, 1, 1 << 40)
        integer("concurrency", self.concurrency, 1, 64)
        integer("max_redirects", self.max_redirects, 0, 30)


@dataclass
class FetchResult:
    """What happened to one item. ``file`` is relative to the output folder; ``reason`` is None when ok."""

    id: str
    url: str
    status: str  # "ok" | "failed"
    reason: str | None = None
    file: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    content_type: str | None = None
    attempts: int = 0


# --------------------------------------------------------------------------- one item
class _Cancelled(Exception):
    pass


def _decode(body: bytes) -> str:
    """The file extension of a fully decodable image of at least MIN_SIDE×MIN_SIDE, or ItemFailure."""
    from PIL import Image, ImageFile

    if ImageFile.LOAD_TRUNCATED_IMAGES:  # fetch_images turns it off; someone turned it back on meanwhile
        raise ItemFailure("cannot check for truncated images (PIL ImageFile.LOAD_TRUNCATED_IMAGES is on)")
    try:
        with Image.open(io.BytesIO(body), formats=_DECODERS) as img:
            img.load()
            fmt, (width, height) = img.format, img.size
    except Image.DecompressionBombError:
        raise ItemFailure("image has too many pixels (decompression bomb check)") from None
    except Exception:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        raise ItemFailure("truncated or undecodable image") from None
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ItemFailure(f"image too small ({width}x{height})")
    return _EXTENSIONS[fmt]


def _fetch_one(item: FetchItem, out: Path, options: FetchOptions, url_opener: urllib.request.OpenerDirector,
               stop: threading.Event) -> FetchResult:
    """Download, retry transient failures with exponential backoff, check the decode, write the file."""
    result = FetchResult(id=item.id, url=item.url, status="failed")
    url = normalize_url(item.url)
    if url is None:
        result.reason = "invalid URL"
        return result
    while True:
        if stop.is_set():
            raise _Cancelled
        result.attempts += 1
        try:
            try:
                body, media = download(url_opener, url, timeout=options.timeout,
                                       max_redirects=options.max_redirects, max_bytes=options.max_bytes)
            except ItemFailure:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by classify, which re-raises what it does not know
                raise classify(exc) from None
            ext = _decode(body)
        except ItemFailure as failure:
            if failure.transient and result.attempts <= options.retries:
                if stop.wait(options.backoff * 2 ** (result.attempts - 1)):
                    raise _Cancelled from None
                continue
            result.reason = failure.reason
            if failure.transient:
                result.reason += f" after {result.attempts} attempt{'s' if result.attempts > 1 else ''}"
            return result
        relative = f"{IMAGES}/{item.id}.{ext}"
        atomic_write_bytes(out / relative, body)
        result.status, result.file, result.content_type = "ok", relative, media
        result.sha256, result.bytes = hashlib.sha256(body).hexdigest(), len(body)
        return result


# --------------------------------------------------------------------------- manifest
def _manifest_bytes(entries: Mapping[str, dict[str, Any]]) -> bytes:
    statuses = [entry["status"] for entry in entries.values()]
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "items": dict(entries),
        "totals": {"ok": statuses.count("ok"), "failed": statuses.count("failed")},
    }
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Entries of a previous run by id (well-formed ones only; the others are simply fetched again)."""
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MemharnessError(f"{path}: not valid JSON; delete it to fetch everything again") from None
    if not (isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT
            and isinstance(manifest.get("items"), dict)):
        raise FieldError("out", f"{path} is not a memharness fetch manifest; choose another folder or delete the file")
    if manifest.get("version") != MANIFEST_VERSION:
        raise MemharnessError(f"{path}: fetch manifest version {manifest.get('version')!r}, this memharness "
                              f"writes {MANIFEST_VERSION}; delete it to fetch everything again")
    names = {f.name for f in fields(FetchResult)}
    entries = {}
    for key, entry in manifest["items"].items():
        if isinstance(entry, dict) and set(entry) == names and entry.get("id") == key \
                and entry.get("status") in ("ok", "failed"):
            entries[key] = entry
    return entries


def _own_file(item_id: str, relative: Any) -> bool:
    """Whether a recorded path is one this module writes for the id (never touch anything else)."""
    if not isinstance(relative, str):
        return False
    path = Path(relative)
    return path.parent == Path(IMAGES) and path.stem == item_id and path.suffix[1:] in _EXTENSIONS.values()


def _still_ok(item: FetchItem, entry: dict[str, Any] | None, out: Path) -> bool:
    if not entry or entry["status"] != "ok" or entry["url"] != item.url or not _own_file(item.id, entry["file"]):
        return False
    path = out / entry["file"]
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    except OSError:
        return False


# --------------------------------------------------------------------------- entry points
def _check_items(items: Sequence[FetchItem]) -> None:
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, FetchItem):
            raise MemharnessError(f"items[{i}]: expected a FetchItem, got {type(item).__name__}")
        check_id(item.id, f"items[{i}]")  # the one id rule of prompt ids, model ids and file names
        folded = item.id.casefold()  # images/A.jpg and images/a.jpg are one file on case-insensitive disks
        if folded in seen:
            raise MemharnessError(f"items[{i}]: id {item.id!r} repeats {seen[folded]!r}")
        seen[folded] = item.id
        if not isinstance(item.url, str):
            raise MemharnessError(f"items[{i}] ({item.id}): url must be a string")
        if not isinstance(item.text, str):
            raise MemharnessError(f"items[{i}] ({item.id}): text must be a string")
        if item.category not in (None, "", *CATEGORIES):
            raise MemharnessError(f"items[{i}] ({item.id}): category must be one of {', '.join(CATEGORIES)}")


def _still_fetched(items: Sequence[FetchItem], entries: Mapping[str, dict[str, Any]],
                   out: Path) -> dict[str, FetchResult]:
    """The previous run's results, by id, of the items whose file is still there as recorded."""
    return {item.id: FetchResult(**entries[item.id]) for item in items
            if _still_ok(item, entries.get(item.id), out)}


def _record(result: FetchResult, entries: dict[str, dict[str, Any]], out: Path) -> None:
    """Put one finished item into the manifest and rewrite it, so an interrupted run keeps it."""
    previous = entries.get(result.id)
    if (result.status == "ok" and previous and previous.get("file") != result.file
            and _own_file(result.id, previous.get("file"))):
        (out / previous["file"]).unlink(missing_ok=True)  # same id, another format than last time
    entries[result.id] = asdict(result)
    atomic_write_bytes(out / MANIFEST, _manifest_bytes(entries))


def _fetch_all(todo: Sequence[FetchItem], out: Path, options: FetchOptions,
               finished: Callable[[FetchResult], None]) -> None:
    """Download ``todo`` on a thread pool; ``finished(result)`` runs in this thread as each item ends.

    Pillow's LOAD_TRUNCATED_IMAGES is off meanwhile (truncated downloads must fail the decode
    check) and restored after; any exception (Ctrl-C included) stops retries and backoff sleeps.
    """
    from PIL import ImageFile

    truncated_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    stop = threading.Event()
    url_opener = opener()
    pool = ThreadPoolExecutor(max_workers=min(options.concurrency, len(todo)), thread_name_prefix="memharness-fetch")
    try:
        pending: set[Future] = {pool.submit(_fetch_one, item, out, options, url_opener, stop) for item in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finished(future.result())
    except BaseException:
        stop.set()  # retries and backoff sleeps stop; downloads in flight end within their timeout
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_flag


def fetch_images(
    items: Sequence[FetchItem],
    out: Path,
    *,
    options: FetchOptions = FetchOptions(),  # noqa: B008 - frozen, so sharing the default is safe
    progress: Callable[[int, int, FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Download every item's image into ``out/images``; results in the items' order.

    ``progress(done, total, result)`` is called in the calling thread as each item finishes (items
    skipped as already fetched first). The manifest is rewritten after every finished item, so an
    interrupted run (Ctrl-C) keeps everything finished so far; a re-run picks up from there.
    """
    if not isinstance(options, FetchOptions):
        raise MemharnessError(f"options must be FetchOptions, got {type(options).__name__}")
    items = list(items)
    _check_items(items)
    out = Path(out)
    entries = _read_manifest(out / MANIFEST)
    results = _still_fetched(items, entries, out)
    todo = [item for item in items if item.id not in results]

    total, done = len(items), 0
    for item in items:
        if item.id in results and progress is not None:
            done += 1
            progress(done, total, results[item.id])
    done = len(results)
    if not todo:
        return [results[item.id] for item in items]

    def finished(result: FetchResult) -> None:
        nonlocal done
        _record(result, entries, out)
        results[result.id] = result
        done += 1
        if progress is not None:
            progress(done, total, result)

    _fetch_all(todo, out, options, finished)
    return [results[item.id] for item in items]


def write_prompt_file(out: Path, items: Sequence[FetchItem], results: Sequence[FetchResult]) -> Path:
    """``out/prompts.jsonl`` for the ok items, in the items' order, for ``memharness trace --prompts``."""
    out = Path(out)
    by_id = {result.id: result for result in results}
    lines = []
    for item in items:
        result = by_id.get(item.id)
        if result is None or result.status != "ok" or not result.file:
            continue
        row: dict[str, Any] = {"id": item.id, "text": item.text, "image": result.file}
        if item.category:
            row["category"] = item.category
        lines.append(json.dumps(row, ensure_ascii=False))
    if not lines:
        raise MemharnessError(f"{out}: none of the {len(list(items))} images was fetched; no prompt file written "
                              f"(reasons in {out / MANIFEST})")
    path = out / PROMPTS
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


__all__ = ["FetchItem", "FetchOptions", "FetchResult", "fetch_images", "write_prompt_file", "MANIFEST", "PROMPTS"]
