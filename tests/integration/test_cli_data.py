"""The prompt-set and scoring commands from the command line."""

from __future__ import annotations

import json

import pytest

from memharness.cli import main
from memharness.cli.score import RESIZE_CHOICES


def test_prompts_webster_prints_table1_denominators(capsys):
    assert main(["prompts", "--set", "webster"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| webster"))
    assert [cell.strip() for cell in row.strip("|").split("|")] == ["webster", "500", "86", "229", "30", "155", "0"]


def test_prompts_lists_every_set(capsys):
    assert main(["prompts"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("webster", "wen", "sd2-219"))


def test_prompts_unknown_set_is_one_line(capsys):
    assert main(["prompts", "--set", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nope'" in err and "webster" in err


def test_score_without_images_writes_latent_scores(small_fixture, capsys):
    manifest = json.loads((small_fixture / "manifest.json").read_text())
    del manifest["scores"]
    (small_fixture / "manifest.json").write_text(json.dumps(manifest))
    assert main(["score", "--fixtures", str(small_fixture)]) == 0
    assert json.loads((small_fixture / "manifest.json").read_text())["scores"]["scorer"] == "latent-cosine"


def test_score_with_missing_images_folder_is_one_line(small_fixture, tmp_path, capsys):
    rc = main(["score", "--fixtures", str(small_fixture), "--images", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and err.startswith("memharness: error: ")


def test_resize_choices_are_the_scorers_filters():
    pytest.importorskip("PIL")
    from memharness.scoring.sscd import RESIZE_FILTERS

    assert set(RESIZE_CHOICES) == set(RESIZE_FILTERS)


def test_data_fetch_from_the_command_line(tmp_path, monkeypatch, capsys):
    """`memharness data fetch` against a server on 127.0.0.1 (the set's URLs are replaced)."""
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from PIL import Image

    import memharness.data.prompt_sets as prompt_sets
    from memharness.data.prompt_sets import SetEntry
    from memharness.data.prompts import load_prompt_file

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, format="PNG")
    png = buffer.getvalue()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/ok.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    entries = [SetEntry(id="a", text="red", url=f"{base}/ok.png", category="MV"),
               SetEntry(id="b", text="gone", url=f"{base}/gone", category="N")]
    monkeypatch.setattr(prompt_sets, "load_set", lambda name: entries)
    try:
        rc = main(["data", "fetch", "--set", "webster", "--out", str(tmp_path), "--retries", "0", "--timeout", "5"])
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert rc == 0
    assert "fetched 1 of 2" in err and "HTTP 404" in err
    prompts = load_prompt_file(tmp_path / "prompts.jsonl")
    assert [(p.id, p.category) for p in prompts] == [("a", "MV")]
