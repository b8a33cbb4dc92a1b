"""The comparison with a baseline, for the terminal: a table of regressions and notes on other changes."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from memharness.claims.regression import MISSING, NEW, Change


def _side(verdict: str | None, measured: float | None) -> str:
    if verdict is None:
        return "—"
    return verdict if measured is None else f"{verdict} {measured:.4g}"


def transition_text(change: Change) -> str:
    """'PASS 1.007 → FAIL 0.5': the baseline's verdict and value, then today's."""
    return f"{_side(change.baseline, change.baseline_measured)} → {_side(change.now, change.measured)}"


def regression_table(model: str, changes: Sequence[Change], *, plain: bool = False) -> Table:
    """The regressions only; the summary line under it names the baseline file (a long path would wrap here)."""
    table = Table(
        title=f"regressions · {model}",
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        title_justify="left",
    )
    table.add_column("claim", no_wrap=True)
    table.add_column("baseline → now")
    table.add_column("why")
    for c in changes:
        if c.is_regression:
            table.add_row(Text(c.claim), Text(transition_text(c), style="" if plain else "bold red"), Text(c.reason))
    return table


def note_lines(changes: Sequence[Change]) -> list[str]:
    """New, missing and otherwise changed claims: told, not failed."""
    label = {NEW: "new claim", MISSING: "missing claim"}
    return [f"note: {c.claim}: {label.get(c.kind, 'changed')}, {transition_text(c)}: {c.reason}"
            for c in changes if not c.is_regression]


def regression_summary(changes: Sequence[Change], *, baseline: str) -> str:
    n = sum(c.is_regression for c in changes)
    if not n:
        return f"no regressions against {baseline}"
    return f"{n} regression{'s' if n > 1 else ''} against {baseline}"
