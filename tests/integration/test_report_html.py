"""`memharness report`: report.md's figures are valid PNGs, report.html is self-contained and renders in Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402  (Pillow comes with matplotlib)

from memharness.cli import main  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_LINK = re.compile(r"!\[[^\]]*\]\((figures/[^)\s]+\.png)\)")
DATA_IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
# The paper's figures the report redraws (the claims checked on the small fixture need all of them).
PAPER_FIGURES = ("Fig 1", "Fig 3", "Fig 5", "Fig 7", "Fig 8", "Fig 10", "Fig 11", "Fig 12", "Fig 13")


@pytest.fixture(scope="module")
def report_dir(small_fixture_master, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "small"
    assert main(["report", "--fixtures", str(small_fixture_master), "--out", str(out)]) == 0
    return out


def _claim_ids() -> list[str]:
    from memharness.claims import load_specs

    return [spec.id for spec in load_specs()]


def _assert_png(data: bytes, what: str) -> Image.Image:
    assert data[:8] == PNG_MAGIC, f"{what}: not a PNG"
    from io import BytesIO

    Image.open(BytesIO(data)).verify()  # checks the chunks' CRCs
    image = Image.open(BytesIO(data))
    image.load()
    assert image.width >= 200 and image.height >= 200, f"{what}: {image.size}"
    return image


@pytest.mark.slow
def test_report_markdown_figures_are_valid_pngs(report_dir):
    md = (report_dir / "report.md").read_text()
    links = FIGURE_LINK.findall(md)
    assert len(links) == len(set(links)) >= len(PAPER_FIGURES)
    for rel in links:
        path = report_dir / rel
        assert path.is_file(), f"report.md links {rel}, which is missing"
        _assert_png(path.read_bytes(), rel)
    # Nothing in figures/ that the report does not show.
    assert sorted(p.name for p in (report_dir / "figures").iterdir()) == sorted(Path(rel).name for rel in links)
    # The verdict table on top, then the figures, each titled with its figure number.
    assert md.index("## Verdicts") < md.index("| claim | paper ref | paper value | measured [95% CI]") \
        < md.index("## Figures")
    for claim in _claim_ids():
        assert f"| {claim} |" in md
    for label in PAPER_FIGURES:
        assert f"\n### {label} · " in md


@pytest.mark.slow
def test_report_html_is_self_contained(report_dir):
    html = (report_dir / "report.html").read_text()
    md = (report_dir / "report.md").read_text()
    embedded = DATA_IMG.findall(html)
    files = [(report_dir / rel).read_bytes() for rel in FIGURE_LINK.findall(md)]
    assert [base64.b64decode(data) for data in embedded] == files  # the same PNGs, in the same order
    assert html.count("<img ") == len(embedded)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html), "loads something from outside"
    assert "<script" not in html
    assert '<th>verdict</th>' in html and html.index("<th>verdict</th>") < html.index("<img ")


def test_report_replaces_stale_figures(small_fixture_master, report_dir, tmp_path):
    """A rewrite removes figures the report no longer shows; the same fixture gives the same bytes."""
    from memharness.claims import load_specs, run_claims
    from memharness.report.document import build_report
    from memharness.report.figures import FIGURES
    from memharness.report.files import write_report
    from memharness.report.model_report import ModelReport
    from memharness.report.series import Source
    from memharness.trace.store import Fixture

    out = tmp_path / "again"
    shutil.copytree(report_dir, out)
    specs = load_specs()
    fixture = Fixture(small_fixture_master)
    report = ModelReport(model="analytic", verdicts=tuple(run_claims(fixture, specs)), fixtures={"path": "x"})
    source = Source("analytic", fixture, {s.id: s for s in specs})
    doc = build_report([report], [source], command="c", figures=[f for f in FIGURES if f.label == "Fig 3"])
    write_report(out, doc)
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["fig03.png"]
    assert (out / "figures" / "fig03.png").read_bytes() == (report_dir / "figures" / "fig03.png").read_bytes()
    assert FIGURE_LINK.findall((out / "report.md").read_text()) == ["figures/fig03.png"]


def test_png_has_no_timestamp_or_software(small_fixture_master):
    from memharness.claims import load_specs
    from memharness.report.figures import FIGURES, render_figure
    from memharness.report.series import Source
    from memharness.trace.store import Fixture

    fig3 = next(f for f in FIGURES if f.label == "Fig 3")
    source = Source("analytic", Fixture(small_fixture_master), {s.id: s for s in load_specs()})
    png = render_figure(fig3, [source]).png
    assert png == render_figure(fig3, [source]).png
    assert b"tIME" not in png and b"Software" not in png and b"matplotlib" not in png


def test_several_models_side_by_side(small_fixture_master):
    """With several models a figure has one column per model; a model without the data gets a note."""
    from memharness.claims import load_specs, run_claims
    from memharness.report.document import build_report
    from memharness.report.figures import FIGURES
    from memharness.report.markdown import markdown_document
    from memharness.report.model_report import ModelReport
    from memharness.report.series import Source
    from memharness.trace.store import Fixture

    specs = load_specs()
    fixture = Fixture(small_fixture_master)
    verdicts = tuple(run_claims(fixture, specs, only=["guidance-drives-memorization"]))
    reports = [ModelReport(model=m, verdicts=verdicts, fixtures={"path": "x"}) for m in ("one", "two")]
    sources = [Source(m, fixture, {s.id: s for s in specs}) for m in ("one", "two")]
    fig3 = [f for f in FIGURES if f.label == "Fig 3"]
    single = build_report(reports[:1], sources[:1], command="c", figures=fig3)
    double = build_report(reports, sources, command="c", figures=fig3)
    one = _assert_png(single.sections[0].rendered.png, "one model")
    two = _assert_png(double.sections[0].rendered.png, "two models")
    assert two.width == 2 * one.width and two.height == one.height
    md = markdown_document(double)
    assert "| claim | one | two |" in md and "  - one: **INCONCLUSIVE**" in md and "  - two: **INCONCLUSIVE**" in md

    class NoScores(Source):
        def labels(self, claim):
            from memharness.report.series import Unavailable

            raise Unavailable("no memorization scores for ddim g=7.5")

    mixed = build_report(reports, [sources[0], NoScores("two", fixture)], command="c", figures=fig3)
    assert mixed.sections[0].rendered.missing == {"two": "no memorization scores for ddim g=7.5"}
    assert "*No Fig 3 for two: no memorization scores for ddim g=7.5.*" in markdown_document(mixed)


COMMITTED = sorted((Path(__file__).resolve().parents[2] / "reports").glob("*/report.md"))


@pytest.mark.parametrize("report_md", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_reports_are_whole(report_md):
    """reports/<name>/: every figure report.md links exists and is a PNG, and report.html embeds the same ones."""
    links = FIGURE_LINK.findall(report_md.read_text())
    assert links
    files = [(report_md.parent / rel).read_bytes() for rel in links]
    for rel, data in zip(links, files, strict=True):
        _assert_png(data, str(report_md.parent / rel))
    html = (report_md.parent / "report.html").read_text()
    assert [base64.b64decode(data) for data in DATA_IMG.findall(html)] == files


def test_report_out_must_be_a_folder(small_fixture_master, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    assert main(["report", "--fixtures", str(small_fixture_master), "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err


# --------------------------------------------------------------------------- headless Chromium
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def _run_chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             "--disable-default-apps", "--proxy-server=127.0.0.1:9",  # networking off: nothing may load
             f"--user-data-dir={tmp_path / 'profile'}"]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run([binary, *flags, *args], capture_output=True, timeout=180, env=env, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)")
def test_report_html_renders_in_headless_chromium(report_dir, tmp_path):
    binary = _chromium()
    url = (report_dir / "report.html").resolve().as_uri()
    md = (report_dir / "report.md").read_text()
    n_figures = len(FIGURE_LINK.findall(md))

    dom = _run_chromium(binary, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    text = dom.stdout.decode()
    assert "<th>verdict</th>" in text and text.count("<table>") >= 3
    for claim in _claim_ids():
        assert f"<code>{claim}</code>" in text
    images = re.findall(r"<img [^>]*>", text)
    assert len(images) == n_figures
    assert all(re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', img) for img in images)

    shot = tmp_path / "shot.png"
    result = _run_chromium(binary, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    image = _assert_png(shot.read_bytes(), "screenshot").convert("L")
    assert image.size == (1280, 2000)
    low, high = image.getextrema()
    assert high - low > 100, "the screenshot is blank"
