"""The comparison with a baseline, for the terminal: a table of what fails and notes on other changes."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from memharness.claims.regression import DRIFT, MISSING, NEW, TOWARD_PAPER, Change


def _side(verdict: str | None, measured: float | None) -> str:
    if verdict is None:
        return "—"
    return verdict if measured is None else f"{verdict} {measured:.4g}"


def transition_text(change: Change) -> str:
    """'PASS 1.007 → FAIL 0.5': the baseline's verdict and value, then today's."""
    return f"{_side(change.baseline, change.baseline_measured)} → {_side(change.now, change.measured)}"


def regression_table(model: str, changes: Sequence[Change], *, plain: bool = False,
                     fail_on_drift: bool = False) -> Table:
    """The changes that fail the run only; the summary line under it names the baseline file (a long
    path would wrap here)."""
    table = Table(
        title=f"regressions · {model}",
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        title_justify="left",
    )
    table.add_column("claim", no_wrap=True)
    table.add_column("baseline → now")
    table.add_column("why")
    for c in changes:
        if c.fails(fail_on_drift=fail_on_drift):
            table.add_row(Text(c.claim), Text(transition_text(c), style="" if plain else "bold red"), Text(c.reason))
    return table


_LABEL = {NEW: "new claim", MISSING: "missing claim", DRIFT: "drift", TOWARD_PAPER: "moved toward the paper"}


def note_lines(changes: Sequence[Change], *, fail_on_drift: bool = False) -> list[str]:
    """Drift, moves toward the paper, new, missing and otherwise changed claims: told, not failed."""
    return [f"note: {c.claim}: {_LABEL.get(c.kind, 'changed')}, {transition_text(c)}: {c.reason}"
            for c in changes if not c.fails(fail_on_drift=fail_on_drift)]


def regression_summary(changes: Sequence[Change], *, baseline: str, fail_on_drift: bool = False) -> str:
    n = sum(c.is_regression for c in changes)
    drift = sum(c.is_drift for c in changes)
    parts = [f"{n} regression{'s' if n != 1 else ''}" if n else "no regressions"]
    if drift:
        hint = "" if fail_on_drift else " (--fail-on-drift fails them)"
        parts.append(f"{drift} drifted beyond the tolerance{hint}")
    return f"{', '.join(parts)} against {baseline}"
