"""Inline charts for the terminal: k(t) and w0(t) per group as unicode sparklines (▁▂▃▄▅▆▇█).

For one model's fixture, at the paper's setting (DDIM, g = 7.5), over the denoising steps from
t = T (left) to the end (right); on the shipped analytic fixture::

    sparklines · analytic · ddim g = 7.5 · t = T → x_0 · k = ‖x̂0‖/‖x‖, w0 of x_t ≈ w0·x + wT·x_T
      k(t)        memorized (16)  ██▇▆▃▂▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁  7.54 → 1
                  normal (16)     ▆▆▅▅▄▂▂▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁  5.34 → 1.08
      w0(t) on x  memorized (16)  ▁▂▃▃▃▃▃▄▄▄▄▄▄▄▄▅▅▅▅▅▅▆▆▆▆▆▆▆▇▇▇▇▇▇▇▇▇█████████████  0 → 1.01
                  normal (16)     ▁▁▂▂▂▂▂▃▃▃▃▃▃▃▃▃▃▃▃▃▃▄▄▄▄▄▄▄▄▄▄▄▄▄▅▅▅▅▅▅▅▅▅▅▅▅▅▅▅▅  0 → 0.597
                  √ᾱ_t            ▂▂▂▂▂▂▂▂▂▂▃▃▃▃▃▃▃▄▄▄▄▄▄▅▅▅▅▅▅▆▆▆▆▆▆▇▇▇▇▇▇▇▇▇██████  0.076 → 1

The lines of one quantity share one scale, so the groups compare by height; the numbers are the
first and last values. :func:`sparkline_lines` gives plain strings; :func:`sparkline_renderable`
a rich ``Text`` with the groups in the paper's colours (memorized red, normal blue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memharness.claims.spec import ClaimSpec
from memharness.report.series import Source, Unavailable, group_curves
from memharness.trace.store import Fixture

BLOCKS = "▁▂▃▄▅▆▇█"
STYLES = {"memorized": "red", "normal": "blue", "√ᾱ_t": "dim"}


def _resample(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of ``width`` near-equal consecutive chunks (the values themselves when there are few)."""
    if len(values) <= width:
        return values
    return np.array([chunk.mean() for chunk in np.array_split(values, width)])


def sparkline(values: Sequence[float], *, lo: float | None = None, hi: float | None = None,
              width: int | None = None) -> str:
    """One block character per value (or per chunk, with ``width``), scaled linearly from lo to hi.

    lo/hi default to the values' own range; NaN is a blank; a flat series is drawn at mid height.
    """
    v = np.asarray(values, dtype=float)
    if width is not None:
        v = _resample(v, max(1, int(width)))
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return " " * len(v)
    lo = float(finite.min()) if lo is None else float(lo)
    hi = float(finite.max()) if hi is None else float(hi)
    top = len(BLOCKS) - 1
    out = []
    for value in v:
        if not np.isfinite(value):
            out.append(" ")
        elif hi <= lo:
            out.append(BLOCKS[top // 2])
        else:
            level = int(np.floor((min(max(value, lo), hi) - lo) / (hi - lo) * top + 0.5))  # half up
            out.append(BLOCKS[level])
    return "".join(out)


@dataclass(frozen=True)
class Row:
    quantity: str  # shown on a group's first row only
    group: str  # "memorized (16)", "normal (16)" or "√ᾱ_t"
    style: str
    line: str
    first: float
    last: float


def _number(x: float) -> str:
    return f"{x:.3g}"


def sparkline_rows(fixture: Fixture, *, model: str | None = None, specs: dict[str, ClaimSpec] | None = None,
                   sampler: str = "ddim", guidance: float = 7.5, width: int = 50) -> tuple[str, list[Row]]:
    """(heading, rows); raises :class:`Unavailable` when the fixture lacks the run or the scores."""
    name = model or fixture.model.get("id", "model")
    curves = group_curves(Source(name, fixture, specs or {}), sampler=sampler, guidance=guidance)
    groups = curves["curves"]
    heading = (f"sparklines · {name} · {sampler} g = {guidance:g} · t = T → x_0 · "
               "k = ‖x̂0‖/‖x‖, w0 of x_t ≈ w0·x + wT·x_T")
    rows: list[Row] = []
    quantities = (("k(t)", "k", None), ("w0(t) on x", "w0", curves["schedule_w0"]))
    for label, key, reference in quantities:
        series = [(f"{g} ({c['n']})", STYLES[g], c[key]) for g, c in groups.items()]
        if reference is not None:
            series.append(("√ᾱ_t", STYLES["√ᾱ_t"], reference))
        lo = min(float(np.nanmin(s)) for _, _, s in series)
        hi = max(float(np.nanmax(s)) for _, _, s in series)
        for i, (group, style, values) in enumerate(series):
            rows.append(Row(label if i == 0 else "", group, style, sparkline(values, lo=lo, hi=hi, width=width),
                            float(values[0]), float(values[-1])))
    return heading, rows


def sparkline_lines(fixture: Fixture, **options) -> list[str]:
    """Plain lines for one model: a heading, then one line per quantity and group (options: see sparkline_rows)."""
    try:
        heading, rows = sparkline_rows(fixture, **options)
    except Unavailable as exc:
        name = options.get("model") or fixture.model.get("id", "model")
        return [f"sparklines · {name}: unavailable, {exc}"]
    q = max(len(r.quantity) for r in rows)
    g = max(len(r.group) for r in rows)
    return [heading] + [f"  {r.quantity:<{q}}  {r.group:<{g}}  {r.line}  {_number(r.first)} → {_number(r.last)}"
                        for r in rows]


def sparkline_renderable(fixture: Fixture, *, plain: bool = False, **options):
    """The same lines as a rich ``Text``, groups coloured (no styles when ``plain``)."""
    from rich.text import Text

    text = Text()
    try:
        heading, rows = sparkline_rows(fixture, **options)
    except Unavailable:
        return Text("\n".join(sparkline_lines(fixture, **options)))
    text.append(heading + "\n", style="" if plain else "bold")
    q = max(len(r.quantity) for r in rows)
    g = max(len(r.group) for r in rows)
    for i, r in enumerate(rows):
        style = "" if plain else r.style
        text.append(f"  {r.quantity:<{q}}  ")
        text.append(f"{r.group:<{g}}", style=style)
        text.append("  ")
        text.append(r.line, style=style)
        text.append(f"  {_number(r.first)} → {_number(r.last)}" + ("\n" if i < len(rows) - 1 else ""))
    return text
