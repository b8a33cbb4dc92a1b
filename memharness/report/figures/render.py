"""Drawing a figure for one or several models as small multiples, to PNG bytes.

Every model gets a block of the figure's panels (``FigureDef.panels``: rows × columns, at most
three columns), each panel :data:`~memharness.report.figures.style.PANEL_W` ×
:data:`~memharness.report.figures.style.PANEL_H` inches. Blocks wrap so that a row of the figure
holds at most three panels: more models make the figure taller, never a wider strip, and tick
labels keep their size in pixels whatever the number of models.

The output is deterministic: matplotlib's default style (whatever the user's matplotlibrc),
a fixed DPI, the Agg renderer through ``Figure`` (pyplot's global state is never touched), and
no ``Software`` entry in the PNG metadata. The same matplotlib and fixtures give the same bytes.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memharness.errors import MemharnessError
from memharness.report.figures.style import DPI, MAX_PANELS_PER_ROW, PANEL_H, PANEL_W, STYLE, mathtext
from memharness.report.series import Source, Unavailable

COLORBAR_W = 1.2  # inches a score colour bar adds to a block
BLOCK_EXTRA_H = 0.8  # inches for a block's model title and its legend row
TITLE_H = 0.45  # inches for the figure's title line


@dataclass(frozen=True)
class FigureDef:
    key: str  # file stem under figures/
    label: str  # "Fig 1"
    title: str  # the caption's bold title in the paper
    claims: tuple[str, ...]  # the claims this figure shows
    paper: str  # what the paper's figure plots
    look_for: str  # what the claims need to see in it
    drawn: str  # how it is drawn here, from which data; says what colour and bands mean
    data: Callable[[Source], dict]
    draw: Callable[[Any, dict], None]
    panels: tuple[int, int] = (1, 1)  # rows × columns of one model's block (columns ≤ MAX_PANELS_PER_ROW)
    colorbar: bool = False  # a score colour bar beside each block
    optional: bool = False  # left out of a report where no model has its data (not one of the paper's figures)


@dataclass(frozen=True)
class Rendered:
    figure: FigureDef
    png: bytes | None  # None: no model had the data
    missing: dict[str, str]  # model → why it has no panels


def block_size(defn: FigureDef) -> tuple[float, float]:
    """Inches of one model's block of panels."""
    rows, cols = defn.panels
    return cols * PANEL_W + (COLORBAR_W if defn.colorbar else 0.0), rows * PANEL_H + BLOCK_EXTRA_H


def block_grid(defn: FigureDef, n_models: int) -> tuple[int, int]:
    """Rows × columns of model blocks: as many blocks side by side as fit in MAX_PANELS_PER_ROW panels
    (and one colour bar): the width of the report's column."""
    per_row = max(1, int((MAX_PANELS_PER_ROW * PANEL_W + COLORBAR_W) // block_size(defn)[0]))
    return math.ceil(n_models / per_row), min(n_models, per_row)


def _prepare(defn: FigureDef, sources: Sequence[Source]) -> list[tuple[Source, dict | None, str | None]]:
    prepared = []
    for src in sources:
        try:
            prepared.append((src, defn.data(src), None))
        except (Unavailable, MemharnessError) as exc:  # a fixture that lacks an array: say so, draw the rest
            prepared.append((src, None, str(exc)))
    return prepared


def build_figure(defn: FigureDef, prepared: Sequence[tuple[Source, dict | None, str | None]]):
    """The matplotlib Figure of the blocks of ``prepared`` (call inside the report's style context)."""
    from matplotlib.figure import Figure

    (width, height), (rows, cols) = block_size(defn), block_grid(defn, len(prepared))
    fig = Figure(figsize=(width * cols, height * rows + TITLE_H), layout="constrained")
    fig.suptitle(mathtext(textwrap.fill(f"{defn.label} · {defn.title}", width=max(30, int(width * cols * 9)))),
                 fontweight="bold")
    blocks = fig.subfigures(rows, cols, squeeze=False).ravel()
    for sf, (src, data, why) in zip(blocks, prepared, strict=False):
        sampler = (data or {}).get("sampler")
        sf.suptitle(src.model + (f" · {sampler.upper()}" if sampler else ""), fontsize=11)
        if data is None:
            sf.text(0.5, 0.5, textwrap.fill(f"no data for this figure: {why}", 40), ha="center", va="center")
        else:
            defn.draw(sf, data)
    return fig


def render_figure(defn: FigureDef, sources: Sequence[Source]) -> Rendered:
    """Small multiples, one block per model; a model without the data gets a note in its block."""
    import matplotlib
    import matplotlib.style

    prepared = _prepare(defn, sources)
    missing = {src.model: why for src, data, why in prepared if data is None}
    if len(missing) == len(prepared):
        return Rendered(defn, None, missing)
    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        fig = build_figure(defn, prepared)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Rendered(defn, buffer.getvalue(), missing)
