"""The report's figures as small multiples: legible at any number of models, one colour meaning each."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from memharness.report.figures import FIGURES, build_figure, render_figure  # noqa: E402
from memharness.report.figures.style import DPI, MEMORIZED, NORMAL, STYLE, THEORY  # noqa: E402

MAX_WIDTH_PX = 1216  # the report.html column: max-width 1280 px less its padding
MIN_PANEL_PX = (250, 180)  # width, height of a panel's axes


@pytest.fixture(scope="module")
def source(small_fixture_master):
    from memharness.claims import load_specs
    from memharness.report.series import Source
    from memharness.trace.store import Fixture

    return Source("analytic", Fixture(small_fixture_master), {s.id: s for s in load_specs()})


def _figure(label: str):
    return next(f for f in FIGURES if f.label == label)


def _drawn(defn, sources):
    """The laid-out figure (inside the report's style), for its axes' pixel boxes."""
    import matplotlib
    import matplotlib.style

    prepared = [(src, defn.data(src), None) for src in sources]
    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        fig = build_figure(defn, prepared)
        fig.savefig(io.BytesIO(), format="png", dpi=DPI)  # runs the constrained layout
    return fig


@pytest.mark.parametrize("label", ["Fig 3", "Fig 5", "Fig 7", "Fig 11"])
@pytest.mark.parametrize("n_models", [1, 2, 5])
def test_figures_wrap_instead_of_stretching(source, label, n_models):
    """Fig 5 for two models was a 2400 × 430 px strip; now a row holds at most three panels of fixed size."""
    defn = _figure(label)
    png = render_figure(defn, [source] * n_models).png
    width, height = Image.open(io.BytesIO(png)).size
    assert width <= MAX_WIDTH_PX, (label, n_models, width, height)
    assert width / height <= 3.0, f"{label} for {n_models} models is a strip: {width} × {height}"
    fig = _drawn(defn, [source] * n_models)
    axes = [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]
    rows, cols = defn.panels
    assert len(axes) == rows * cols * n_models
    for ax in axes:
        box = ax.get_window_extent()
        assert box.width >= MIN_PANEL_PX[0] and box.height >= MIN_PANEL_PX[1], (label, n_models, box.bounds)
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            assert tick.get_fontsize() >= 8  # points, at a fixed DPI: the same pixels for any number of models


def test_more_models_make_a_figure_taller_not_wider(source):
    fig5 = _figure("Fig 5")
    sizes = [Image.open(io.BytesIO(render_figure(fig5, [source] * n).png)).size for n in (1, 2, 5)]
    assert sizes[0][0] == sizes[1][0] == sizes[2][0]
    assert sizes[0][1] < sizes[1][1] < sizes[2][1]


@pytest.mark.parametrize("label", ["Fig 8", "Fig 10", "Fig 11", "Eq 13"])
def test_colour_means_the_group_only(source, label):
    """Fig 10 used blue/red for w0/wT; every group-coloured figure now uses them for normal/memorized only."""
    from matplotlib.colors import to_hex

    fig = _drawn(_figure(label), [source])
    allowed = {to_hex(c) for c in (NORMAL, MEMORIZED, THEORY, "black", "gray")}
    seen = set()
    for ax in fig.get_axes():
        for line in ax.get_lines():
            seen.add(to_hex(line.get_color()))
        for collection in ax.collections:
            seen.update(to_hex(c) for c in collection.get_facecolor())
    assert seen and seen <= allowed, seen - allowed
    assert {to_hex(NORMAL), to_hex(MEMORIZED)} <= seen


def test_fig10_draws_w0_solid_and_wT_dashed_with_ci_bands(source):
    """Both groups in every panel, the weight as line style, the schedule gray (not the groups' colours)."""
    from matplotlib.colors import to_hex

    fig = _drawn(_figure("Fig 10"), [source])
    for ax in fig.get_axes():
        styles = sorted((to_hex(line.get_color()), line.get_linestyle()) for line in ax.get_lines())
        expected = [(to_hex(c), s) for c in (NORMAL, MEMORIZED, THEORY) for s in ("-", "--")]
        assert styles == sorted(expected)
        assert len(ax.collections) == 4  # one CI band per group and weight


def test_every_caption_says_what_colour_and_bands_mean():
    for defn in FIGURES:
        assert "colour" in defn.drawn, defn.label
    for label in ("Fig 8", "Fig 10", "Eq 13"):  # means over prompts: a CI band, said how
        assert "t-based 95 % CI of the mean over prompts" in _figure(label).drawn
    assert "not a CI" in _figure("Fig 12").drawn  # percentile bands: the spread, said so


def test_every_panel_of_every_figure_is_legible(source):
    from memharness.report.series import Unavailable

    for defn in FIGURES:
        try:
            fig = _drawn(defn, [source])
        except Unavailable:  # the dose response: the small fixture's prompts carry no count
            assert defn.optional
            continue
        for ax in (ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"):
            box = ax.get_window_extent()
            assert box.width >= MIN_PANEL_PX[0] and box.height >= MIN_PANEL_PX[1], (defn.label, box.bounds)
