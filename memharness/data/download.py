"""One HTTP(S) download attempt of a training image: redirects, status, content type, size, deadline.

Standard library only (urllib.request). Each attempt has its own deadline (no global socket
default is touched); the usual proxy variables (``https_proxy``, ``no_proxy``, ...) apply as they
do for urllib. What is done with the bytes (decode check, files, manifest) is
:mod:`memharness.data.fetch`.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from memharness import __version__

USER_AGENT = f"memharness/{__version__} (training-image fetch for memorization checks)"

_UNTYPED = {None, "", "application/octet-stream", "binary/octet-stream"}
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024


class ItemFailure(Exception):
    """Why one item failed, in a few words, and whether another attempt could succeed."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class _KeepAllResponses(urllib.request.HTTPErrorProcessor):
    """Hand every response back as it is: redirects and error statuses are handled here, not by urllib."""

    def http_response(self, request, response):  # noqa: D102 - urllib hook
        return response

    https_response = http_response


def opener() -> urllib.request.OpenerDirector:
    """A urllib opener that leaves redirects and error statuses to :func:`download`."""
    return urllib.request.build_opener(_KeepAllResponses)


def normalize_url(url: str) -> str | None:
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
            raise ItemFailure("timeout", transient=True)
        _set_read_timeout(response, remaining)
        chunk = response.read1(_CHUNK)  # read() would wait for the whole chunk, past the deadline
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise ItemFailure(f"larger than {max_bytes} bytes")
        parts.append(chunk)


def download(opener: urllib.request.OpenerDirector, url: str, *, timeout: float, max_redirects: int,
             max_bytes: int) -> tuple[bytes, str | None]:
    """One attempt: follow redirects, check status, type and size; (body, media type) or ItemFailure.

    ``timeout`` bounds the whole attempt (connect, headers, body, redirects included).
    """
    deadline = time.monotonic() + timeout
    current = url
    for _hop in range(max_redirects + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ItemFailure("timeout", transient=True)
        request = urllib.request.Request(current, headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5"})
        with opener.open(request, timeout=remaining) as response:
            status = response.status
            if status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise ItemFailure(f"HTTP {status} without Location")
                following = normalize_url(urljoin(current, location.strip()))
                if following is None:
                    raise ItemFailure("invalid redirect URL")
                current = following
                continue
            if status != 200:
                raise ItemFailure(f"HTTP {status}", transient=status >= 500 or status in (408, 429))
            media = _media_type(response.headers.get("Content-Type"))
            if media not in _UNTYPED and not media.startswith("image/"):
                raise ItemFailure(f"not an image (content-type {media})")
            if media == "image/svg+xml":
                raise ItemFailure(f"not a raster image (content-type {media})")
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > max_bytes:
                raise ItemFailure(f"larger than {max_bytes} bytes")
            return _read_body(response, max_bytes, deadline), media
    raise ItemFailure("too many redirects")


def classify(exc: BaseException) -> ItemFailure:
    """A network exception → a short reason, transient (worth retrying) or not."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
        if "unknown url type" in text:
            return ItemFailure("invalid URL")
        return ItemFailure(f"connection error ({text})", transient=True)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return ItemFailure("timeout", transient=True)
    if isinstance(exc, ConnectionRefusedError):
        return ItemFailure("connection refused", transient=True)
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe, RemoteDisconnected
        return ItemFailure("connection closed by server", transient=True)
    if isinstance(exc, http.client.IncompleteRead):
        return ItemFailure("connection closed mid-body", transient=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ItemFailure("TLS certificate error")
    if isinstance(exc, ssl.SSLError):
        return ItemFailure("TLS error")
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return ItemFailure("DNS lookup failed (temporary)", transient=True)
        return ItemFailure("host not found")
    if isinstance(exc, (http.client.InvalidURL, UnicodeError, ValueError)):
        return ItemFailure("invalid URL")
    if isinstance(exc, http.client.HTTPException):
        return ItemFailure("bad HTTP response")
    if isinstance(exc, OSError):
        return ItemFailure(f"connection error ({exc.strerror or type(exc).__name__})", transient=True)
    raise exc
