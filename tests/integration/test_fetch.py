"""memharness.data.fetch against a local HTTP server on 127.0.0.1 (nothing else is contacted)."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from memharness.cli.runtime import error_text
from memharness.data.fetch import (
    MANIFEST,
    FetchItem,
    FetchOptions,
    FetchResult,
    fetch_images,
    write_prompt_file,
)
from memharness.data.prompts import load_prompt_file
from memharness.errors import FieldError, MemharnessError


def _image(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    gradient = Image.linear_gradient("L").resize(size)
    img = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient))
    buffer = io.BytesIO()
    img.save(buffer, fmt)
    return buffer.getvalue()


JPEG, PNG, TINY = _image("JPEG"), _image("PNG"), _image("PNG", (8, 8))
MAX_BYTES = 50_000
SLEEP = 1.0  # how long /slow keeps the client waiting; well past TIMEOUT
TIMEOUT = 0.3


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.user_agents: set[str] = set()
        self.active = self.max_active = 0
        self.later_available = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; bodies without Content-Length end at close

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        state: _State = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.counts[path] += 1
            state.times[path].append(time.monotonic())
            state.user_agents.add(self.headers.get("User-Agent", ""))
            state.active += 1
            state.max_active = max(state.max_active, state.active)
        try:
            self._route(path, state)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout, size cap): expected
        finally:
            with state.lock:
                state.active -= 1

    def _send(self, code: int, body: bytes = b"", ctype: str | None = "image/jpeg", length: int | None = -1,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(len(body) if length == -1 else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _route(self, path: str, state: _State) -> None:
        if path == "/good.jpg":
            self._send(200, JPEG)
        elif path == "/good.png":
            self._send(200, PNG, "image/png")
        elif path == "/octet":
            self._send(200, JPEG, "application/octet-stream")
        elif path == "/untyped":
            self._send(200, PNG, None)
        elif path == "/tiny.png":
            self._send(200, TINY, "image/png")
        elif path == "/missing":
            self._send(404, b"not found", "text/plain")
        elif path == "/later":
            self._send(200, PNG, "image/png") if state.later_available else self._send(404, b"", "text/plain")
        elif path == "/slow":
            time.sleep(SLEEP)
            self._send(200, JPEG)
        elif path == "/drip":  # headers at once, then the body far slower than the per-attempt timeout allows
            self._send(200, b"", length=len(JPEG))
            for start in range(0, 200, 10):  # bounded: at most 20 × 0.1 s
                self.wfile.write(JPEG[start:start + 10])
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/page":
            self._send(200, b"<html><body>gone</body></html>", "text/html; charset=utf-8")
        elif path == "/truncated.jpg":
            self._send(200, JPEG[: len(JPEG) // 2])
        elif path == "/huge":
            self._send(200, b"\xff" * 4096, length=10**9)
        elif path == "/huge-stream":  # no Content-Length; more than MAX_BYTES, bounded
            self._send(200, b"", length=None)
            for _ in range(40):
                self.wfile.write(b"\xff" * 8192)
        elif path == "/loop":
            self._send(302, b"", "text/plain", headers={"Location": "/loop"})
        elif path == "/redirect":
            self._send(302, b"", "text/plain", headers={"Location": "/good.jpg"})
        elif path == "/redirect-ftp":
            self._send(302, b"", "text/plain", headers={"Location": "ftp://example.invalid/x.jpg"})
        elif path == "/flaky":
            first = state.counts[path] == 1
            self._send(503, b"busy", "text/plain") if first else self._send(200, JPEG)
        elif path == "/down":
            self._send(503, b"busy", "text/plain")
        elif path.startswith("/slowish/"):
            time.sleep(0.15)
            self._send(200, JPEG)
        else:
            self._send(500, b"unknown test path", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that hang up early are part of the tests


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _options(**overrides) -> FetchOptions:
    settings = dict(timeout=TIMEOUT, retries=1, backoff=0.01, max_bytes=MAX_BYTES, concurrency=4, max_redirects=3)
    return FetchOptions(**{**settings, **overrides})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


# --------------------------------------------------------------------------- every outcome in one run
def test_every_outcome(server, tmp_path):
    base = server.base
    cases = {  # id: (url, expected status, expected reason, expected extension)
        "jpg": (f"{base}/good.jpg", "ok", None, "jpg"),
        "png": (f"{base}/good.png", "ok", None, "png"),
        "octet": (f"{base}/octet", "ok", None, "jpg"),
        "untyped": (f"{base}/untyped", "ok", None, "png"),
        "redirect": (f"{base}/redirect", "ok", None, "jpg"),
        "flaky": (f"{base}/flaky", "ok", None, "jpg"),
        "missing": (f"{base}/missing", "failed", "HTTP 404", None),
        "slow": (f"{base}/slow", "failed", "timeout after 2 attempts", None),
        "drip": (f"{base}/drip", "failed", "timeout after 2 attempts", None),
        "page": (f"{base}/page", "failed", "not an image (content-type text/html)", None),
        "truncated": (f"{base}/truncated.jpg", "failed", "truncated or undecodable image", None),
        "huge": (f"{base}/huge", "failed", f"larger than {MAX_BYTES} bytes", None),
        "huge-stream": (f"{base}/huge-stream", "failed", f"larger than {MAX_BYTES} bytes", None),
        "loop": (f"{base}/loop", "failed", "too many redirects", None),
        "redirect-ftp": (f"{base}/redirect-ftp", "failed", "invalid redirect URL", None),
        "down": (f"{base}/down", "failed", "HTTP 503 after 2 attempts", None),
        "tiny": (f"{base}/tiny.png", "failed", "image too small (8x8)", None),
        "refused": (f"http://127.0.0.1:{_closed_port()}/x.jpg", "failed", "connection refused after 2 attempts", None),
        "ftp": ("ftp://127.0.0.1/x.jpg", "failed", "invalid URL", None),
        "nonsense": ("not a url", "failed", "invalid URL", None),
    }
    items = [FetchItem(id=key, url=url, text=f"prompt {key}", category="MV" if key == "jpg" else None)
             for key, (url, *_rest) in cases.items()]
    out = tmp_path / "webster"
    seen = []

    def progress(done: int, total: int, result: FetchResult) -> None:
        assert total == len(items)
        seen.append(done)
        assert len(_manifest(out)["items"]) == done  # written after every finished item

    start = time.monotonic()
    results = fetch_images(items, out, options=_options(), progress=progress)
    assert time.monotonic() - start < 3  # /slow and /drip end at the per-attempt timeout, not the server's pace
    assert seen == list(range(1, len(items) + 1))

    assert [r.id for r in results] == list(cases)
    for result in results:
        url, status, reason, ext = cases[result.id]
        assert (result.status, result.reason) == (status, reason), result
        assert result.url == url
        if status == "ok":
            assert result.file == f"images/{result.id}.{ext}"
            data = (out / result.file).read_bytes()
            assert result.sha256 == hashlib.sha256(data).hexdigest() and result.bytes == len(data)
            assert data == (JPEG if ext == "jpg" else PNG)
        else:
            assert result.file is result.sha256 is result.bytes is None
    by_id = {r.id: r for r in results}
    assert by_id["jpg"].content_type == "image/jpeg" and by_id["png"].content_type == "image/png"
    assert by_id["octet"].content_type == "application/octet-stream" and by_id["untyped"].content_type is None
    assert by_id["flaky"].attempts == 2 and by_id["jpg"].attempts == 1 and by_id["missing"].attempts == 1
    assert by_id["slow"].attempts == 2 and by_id["ftp"].attempts == 0

    # files only for ok items, nothing half-written
    ok = sorted(r.file for r in results if r.status == "ok")
    assert sorted(f"images/{p.name}" for p in (out / "images").iterdir()) == ok

    # the server saw: no retries of permanent failures, the size cap before reading, the redirect limit
    counts = server.state.counts
    assert counts["/missing"] == counts["/page"] == counts["/truncated.jpg"] == counts["/huge"] == 1
    assert counts["/slow"] == counts["/down"] == counts["/flaky"] == 2
    assert counts["/loop"] == 4  # the first request and max_redirects=3 redirects
    assert all(agent.startswith("memharness/") for agent in server.state.user_agents)

    manifest = _manifest(out)
    assert manifest["totals"] == {"ok": 6, "failed": len(cases) - 6}
    assert manifest["format"] == "memharness-fetch" and manifest["version"] == 1
    assert manifest["items"] == {r.id: vars(r) for r in results}
    text = (out / MANIFEST).read_text()
    assert text == json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    path = write_prompt_file(out, items, results)
    assert path == out / "prompts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [
        {"id": key, "text": f"prompt {key}", "image": f"images/{key}.{cases[key][3]}", **({"category": "MV"}
                                                                                        if key == "jpg" else {})}
        for key in ("jpg", "png", "octet", "untyped", "redirect", "flaky")
    ]
    prompts = load_prompt_file(path)
    assert [p.id for p in prompts] == [row["id"] for row in rows]
    assert prompts[0].category == "MV"
    for prompt in prompts:
        assert Path(prompt.image).is_file()
        with Image.open(prompt.image) as img:
            assert img.size == (64, 48)


# --------------------------------------------------------------------------- resumption
def test_rerun_skips_ok_items_and_retries_failed(server, tmp_path):
    base = server.base
    items = [FetchItem("a", f"{base}/good.jpg", "A"), FetchItem("b", f"{base}/good.png", "B"),
             FetchItem("c", f"{base}/missing", "C"), FetchItem("d", f"{base}/later", "D")]
    out = tmp_path / "out"
    first = fetch_images(items, out, options=_options())
    assert [r.status for r in first] == ["ok", "ok", "failed", "failed"]
    counts = server.state.counts
    assert counts == Counter({"/good.jpg": 1, "/good.png": 1, "/missing": 1, "/later": 1})

    server.state.later_available = True
    calls = []
    second = fetch_images(items, out, options=_options(), progress=lambda done, total, r: calls.append(r.id))
    assert counts == Counter({"/good.jpg": 1, "/good.png": 1, "/missing": 2, "/later": 2})  # ok ones not requested
    assert sorted(calls) == ["a", "b", "c", "d"]
    assert [r.status for r in second] == ["ok", "ok", "failed", "ok"]
    assert second[:2] == first[:2]
    assert _manifest(out)["totals"] == {"ok": 3, "failed": 1}
    rows = [json.loads(line) for line in write_prompt_file(out, items, second).read_text().splitlines()]
    assert [row["id"] for row in rows] == ["a", "b", "d"]

    # a damaged file, or a changed URL, is fetched again; the untouched one is not
    (out / "images" / "a.jpg").write_bytes(b"junk")
    items[1] = FetchItem("b", f"{base}/good.jpg", "B")
    third = fetch_images(items, out, options=_options())
    assert counts["/good.jpg"] == 3 and counts["/good.png"] == 1 and counts["/later"] == 2
    assert [r.status for r in third] == ["ok", "ok", "failed", "ok"]
    assert (out / "images" / "a.jpg").read_bytes() == JPEG
    assert third[1].file == "images/b.jpg" and not (out / "images" / "b.png").exists()  # the old format removed


def test_interrupted_run_keeps_finished_items(server, tmp_path):
    items = [FetchItem(f"p{i}", f"{server.base}/good.jpg?{i}") for i in range(6)]
    out = tmp_path / "out"

    def stop_after_two(done: int, total: int, result: FetchResult) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_images(items, out, options=_options(concurrency=1), progress=stop_after_two)
    recorded = _manifest(out)["items"]
    assert 2 <= len(recorded) <= 3 and all(entry["status"] == "ok" for entry in recorded.values())
    requested = server.state.counts["/good.jpg"]
    assert requested < len(items)  # the queued items were cancelled

    results = fetch_images(items, out, options=_options(concurrency=1))
    assert all(r.status == "ok" for r in results)
    assert server.state.counts["/good.jpg"] == requested + len(items) - len(recorded)


# --------------------------------------------------------------------------- concurrency and backoff
def test_concurrency_is_bounded(server, tmp_path):
    items = [FetchItem(f"p{i:02d}", f"{server.base}/slowish/{i}") for i in range(12)]
    results = fetch_images(items, tmp_path / "out", options=_options(concurrency=3, timeout=5))
    assert all(r.status == "ok" for r in results)
    assert 2 <= server.state.max_active <= 3


def test_backoff_doubles_between_retries(server, tmp_path):
    items = [FetchItem("flaky", f"{server.base}/flaky"), FetchItem("down", f"{server.base}/down")]
    results = fetch_images(items, tmp_path / "out", options=_options(retries=2, backoff=0.1))
    assert [(r.status, r.reason, r.attempts) for r in results] == [
        ("ok", None, 2), ("failed", "HTTP 503 after 3 attempts", 3)]
    times = server.state.times
    assert times["/flaky"][1] - times["/flaky"][0] >= 0.09
    gaps = [b - a for a, b in zip(times["/down"], times["/down"][1:], strict=False)]
    assert len(gaps) == 2 and gaps[0] >= 0.09 and gaps[1] >= 0.19


def test_no_retries_when_retries_is_zero(server, tmp_path):
    results = fetch_images([FetchItem("down", f"{server.base}/down")], tmp_path / "out",
                           options=_options(retries=0))
    assert (results[0].reason, results[0].attempts) == ("HTTP 503 after 1 attempt", 1)
    assert server.state.counts["/down"] == 1


# --------------------------------------------------------------------------- decode check
def test_truncated_images_fail_even_if_pillow_is_told_to_load_them(server, tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    results = fetch_images([FetchItem("t", f"{server.base}/truncated.jpg")], tmp_path / "out", options=_options())
    assert results[0].reason == "truncated or undecodable image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored afterwards


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("settings", "option"), [
    ({"timeout": 0}, "--timeout"),
    ({"timeout": -1.0}, "--timeout"),
    ({"timeout": float("nan")}, "--timeout"),
    ({"timeout": "15"}, "--timeout"),
    ({"retries": -1}, "--retries"),
    ({"retries": 1.5}, "--retries"),
    ({"retries": True}, "--retries"),
    ({"backoff": -0.5}, "--backoff"),
    ({"backoff": float("inf")}, "--backoff"),
    ({"max_bytes": 0}, "--max-bytes"),
    ({"concurrency": 0}, "--concurrency"),
    ({"concurrency": 1000}, "--concurrency"),
    ({"max_redirects": -1}, "--max-redirects"),
])
def test_bad_options_name_the_option(settings, option):
    with pytest.raises(FieldError) as caught:
        FetchOptions(**settings)
    assert caught.value.field == next(iter(settings))  # the field, which the CLI names as its option
    assert error_text(caught.value).startswith(option + ": ")


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        FetchOptions(15.0)  # type: ignore[misc]


@pytest.mark.parametrize(("items", "needle"), [
    ([FetchItem("a", "http://127.0.0.1:9/a"), FetchItem("a", "http://127.0.0.1:9/b")], "repeats"),
    ([FetchItem("A", "http://127.0.0.1:9/a"), FetchItem("a", "http://127.0.0.1:9/b")], "repeats"),
    ([FetchItem("../x", "http://127.0.0.1:9/a")], "file name"),
    ([FetchItem(".hidden", "http://127.0.0.1:9/a")], "file name"),
    ([FetchItem("", "http://127.0.0.1:9/a")], "non-empty"),
    ([FetchItem("a", "http://127.0.0.1:9/a", category="X")], "category"),
])
def test_bad_items_are_refused_before_any_request(items, needle, tmp_path):
    with pytest.raises(MemharnessError, match=needle):
        fetch_images(items, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_damaged_manifest_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(MemharnessError, match="fetch-manifest.json"):
        fetch_images([FetchItem("a", "http://127.0.0.1:9/a")], out)


def test_prompt_file_needs_an_ok_item(tmp_path):
    items = [FetchItem("a", "ftp://x/a")]
    results = fetch_images(items, tmp_path / "out")
    assert results[0].reason == "invalid URL"
    with pytest.raises(MemharnessError, match="none of the 1 images"):
        write_prompt_file(tmp_path / "out", items, results)
    assert not (tmp_path / "out" / "prompts.jsonl").exists()
