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

Standard library only (urllib.request, concurrent.futures) plus Pillow for the decode check.
Each request has its own timeout (no global socket default is touched); the usual proxy
variables (``https_proxy``, ``no_proxy``, ...) apply as they do for urllib.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import math
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from memharness import __version__
from memharness.data.prompts import CATEGORIES
from memharness.errors import MemharnessError
from memharness.trace.safety import check_id
from memharness.trace.store import atomic_write_bytes

MANIFEST = "fetch-manifest.json"
PROMPTS = "prompts.jsonl"
IMAGES = "images"
MANIFEST_FORMAT = "memharness-fetch"
MANIFEST_VERSION = 1
USER_AGENT = f"memharness/{__version__} (training-image fetch for memorization checks)"
MIN_SIDE = 16

# Pillow format → file extension. Image.open is limited to these decoders (no EPS/ghostscript & co);
# MPO (multi-picture JPEG, as phones write) has no opener of its own: the JPEG one returns it.
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
_DECODERS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
_UNTYPED = {None, "", "application/octet-stream", "binary/octet-stream"}
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024


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
                raise MemharnessError(f"--{name} must be {what} of seconds, got {value!r}")

        def integer(name: str, value: Any, low: int, high: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise MemharnessError(f"--{name.replace('_', '-')} must be an integer from {low} to {high}, "
                                      f"got {value!r}")

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


# --------------------------------------------------------------------------- one download
class _Failure(Exception):
    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class _Cancelled(Exception):
    pass


class _KeepAllResponses(urllib.request.HTTPErrorProcessor):
    """Hand every response back as it is: redirects and error statuses are handled here, not by urllib."""

    def http_response(self, request, response):  # noqa: D102 - urllib hook
        return response

    https_response = http_response


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_KeepAllResponses)


def _normalize_url(url: str) -> str | None:
    """An http(s) URL with spaces / non-ASCII percent-encoded and an IDNA host, or None if unusable."""
    if not isinstance(url, str) or any(c in url for c in "\r\n\t\0"):
        return None
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port  # .port raises ValueError when out of range / not a number
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
        userinfo = netloc.rpartition("@")[0]
        netloc = (f"{quote(userinfo, safe=':%')}@" if userinfo else "") + ascii_host + (f":{port}" if port else "")
    safe = "/%:@!$&'()*+,;=-._~"
    return urlunsplit((parts.scheme.lower(), netloc, quote(parts.path, safe=safe),
                       quote(parts.query, safe=safe + "?"), ""))


def _set_read_timeout(response: Any, seconds: float) -> None:
    """Best effort: bound the next socket read by what is left of the attempt's deadline."""
    try:
        response.fp.raw._sock.settimeout(max(seconds, 0.001))
    except (AttributeError, OSError):
        pass


def _media_type(raw: str | None) -> str | None:
    if raw is None:
        return None
    return raw.split(";", 1)[0].strip().lower() or None


def _read_body(response: Any, max_bytes: int, deadline: float) -> bytes:
    parts, total = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Failure("timeout", transient=True)
        _set_read_timeout(response, remaining)
        chunk = response.read1(_CHUNK)  # read() would wait for the whole chunk, past the deadline
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise _Failure(f"larger than {max_bytes} bytes")
        parts.append(chunk)


def _download(opener: urllib.request.OpenerDirector, url: str, options: FetchOptions) -> tuple[bytes, str | None]:
    """One attempt: follow redirects, check status, type and size; (body, media type) or _Failure."""
    deadline = time.monotonic() + options.timeout
    current = url
    for _hop in range(options.max_redirects + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Failure("timeout", transient=True)
        request = urllib.request.Request(current, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5"})
        with opener.open(request, timeout=remaining) as response:
            status = response.status
            if status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise _Failure(f"HTTP {status} without Location")
                following = _normalize_url(urljoin(current, location.strip()))
                if following is None:
                    raise _Failure("invalid redirect URL")
                current = following
                continue
            if status != 200:
                raise _Failure(f"HTTP {status}", transient=status >= 500 or status in (408, 429))
            media = _media_type(response.headers.get("Content-Type"))
            if media not in _UNTYPED and not media.startswith("image/"):
                raise _Failure(f"not an image (content-type {media})")
            if media == "image/svg+xml":
                raise _Failure(f"not a raster image (content-type {media})")
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > options.max_bytes:
                raise _Failure(f"larger than {options.max_bytes} bytes")
            return _read_body(response, options.max_bytes, deadline), media
    raise _Failure("too many redirects")


def _classify(exc: BaseException) -> _Failure:
    """A network exception → a short reason, transient (worth retrying) or not."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
        if "unknown url type" in text:
            return _Failure("invalid URL")
        return _Failure(f"connection error ({text})", transient=True)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return _Failure("timeout", transient=True)
    if isinstance(exc, ConnectionRefusedError):
        return _Failure("connection refused", transient=True)
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe, RemoteDisconnected
        return _Failure("connection closed by server", transient=True)
    if isinstance(exc, http.client.IncompleteRead):
        return _Failure("connection closed mid-body", transient=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Failure("TLS certificate error")
    if isinstance(exc, ssl.SSLError):
        return _Failure("TLS error")
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return _Failure("DNS lookup failed (temporary)", transient=True)
        return _Failure("host not found")
    if isinstance(exc, (http.client.InvalidURL, UnicodeError, ValueError)):
        return _Failure("invalid URL")
    if isinstance(exc, http.client.HTTPException):
        return _Failure("bad HTTP response")
    if isinstance(exc, OSError):
        return _Failure(f"connection error ({exc.strerror or type(exc).__name__})", transient=True)
    raise exc


def _decode(body: bytes) -> str:
    """The file extension of a fully decodable image of at least MIN_SIDE×MIN_SIDE, or _Failure."""
    from PIL import Image, ImageFile

    if ImageFile.LOAD_TRUNCATED_IMAGES:  # fetch_images turns it off; someone turned it back on meanwhile
        raise _Failure("cannot check for truncated images (PIL ImageFile.LOAD_TRUNCATED_IMAGES is on)")
    try:
        with Image.open(io.BytesIO(body), formats=_DECODERS) as img:
            img.load()
            fmt, (width, height) = img.format, img.size
    except Image.DecompressionBombError:
        raise _Failure("image has too many pixels (decompression bomb check)") from None
    except Exception:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        raise _Failure("truncated or undecodable image") from None
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _Failure(f"image too small ({width}x{height})")
    return _EXTENSIONS[fmt]


def _fetch_one(item: FetchItem, out: Path, options: FetchOptions, opener: urllib.request.OpenerDirector,
               stop: threading.Event) -> FetchResult:
    result = FetchResult(id=item.id, url=item.url, status="failed")
    url = _normalize_url(item.url)
    if url is None:
        result.reason = "invalid URL"
        return result
    while True:
        if stop.is_set():
            raise _Cancelled
        result.attempts += 1
        try:
            try:
                body, media = _download(opener, url, options)
            except _Failure:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by _classify, which re-raises what it does not know
                raise _classify(exc) from None
            ext = _decode(body)
        except _Failure as failure:
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
        raise MemharnessError(f"{path}: not a memharness fetch manifest; pass another --out or delete the file")
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
    from PIL import ImageFile

    if not isinstance(options, FetchOptions):
        raise MemharnessError(f"options must be FetchOptions, got {type(options).__name__}")
    items = list(items)
    _check_items(items)
    out = Path(out)
    manifest_path = out / MANIFEST
    entries = _read_manifest(manifest_path)
    results: dict[str, FetchResult] = {}
    todo = []
    for item in items:
        entry = entries.get(item.id)
        if _still_ok(item, entry, out):
            results[item.id] = FetchResult(**entry)
        else:
            todo.append(item)

    total, done = len(items), 0
    for item in items:
        if item.id in results and progress is not None:
            done += 1
            progress(done, total, results[item.id])
    done = len(results)
    if not todo:
        return [results[item.id] for item in items]

    def record(result: FetchResult) -> None:
        previous = entries.get(result.id)
        if (result.status == "ok" and previous and previous.get("file") != result.file
                and _own_file(result.id, previous.get("file"))):
            (out / previous["file"]).unlink(missing_ok=True)  # same id, another format than last time
        entries[result.id] = asdict(result)
        results[result.id] = result
        atomic_write_bytes(manifest_path, _manifest_bytes(entries))

    truncated_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated downloads must fail the decode check
    stop = threading.Event()
    opener = _opener()
    pool = ThreadPoolExecutor(max_workers=min(options.concurrency, len(todo)), thread_name_prefix="memharness-fetch")
    try:
        pending: set[Future] = {pool.submit(_fetch_one, item, out, options, opener, stop) for item in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                record(result)
                done += 1
                if progress is not None:
                    progress(done, total, result)
    except BaseException:
        stop.set()  # retries and backoff sleeps stop; downloads in flight end within their timeout
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_flag
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
