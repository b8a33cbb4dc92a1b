"""Several models at a glance: a claims × models matrix of verdicts."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from memharness.report.model_report import ModelReport
from memharness.report.terminal import STYLES

REGRESSED = "↓"  # marks a cell whose claim regressed against the baseline


def claim_order(reports: Sequence[ModelReport]) -> list[str]:
    """Claim ids in the order they were checked, first model first."""
    seen: dict[str, None] = {}
    for report in reports:
        for v in report.verdicts:
            seen.setdefault(v.id, None)
    return list(seen)


def matrix_cells(reports: Sequence[ModelReport]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """(claim, [(cell text, verdict or None) per model]); '—' where a model did not check the claim."""
    rows = []
    for claim in claim_order(reports):
        cells = []
        for report in reports:
            verdict = next((v for v in report.verdicts if v.id == claim), None)
            if verdict is None:
                cells.append(("—", None))
                continue
            regressed = any(c.claim == claim for c in report.regressions)
            cells.append((verdict.verdict.value + (f" {REGRESSED}" if regressed else ""), verdict.verdict.value))
        rows.append((claim, cells))
    return rows


def verdict_matrix(reports: Sequence[ModelReport], *, plain: bool = False) -> Table:
    compared = any(r.changes is not None for r in reports)
    table = Table(
        title="memharness · claims × models",
        caption=f"{REGRESSED} regressed against the baseline" if compared else None,
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("claim", no_wrap=True)
    for report in reports:
        table.add_column(report.model, no_wrap=True)
    styles = {o.value: s for o, s in STYLES.items()}
    for claim, cells in matrix_cells(reports):
        table.add_row(Text(claim), *(Text(text, style="" if plain or v is None else styles[v]) for text, v in cells))
    return table
