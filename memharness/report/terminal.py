"""The verdict table for one model, rich or plain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from memharness.claims.verdict import Outcome, Verdict

STYLES = {
    Outcome.PASS: "bold green",
    Outcome.FAIL: "bold red",
    Outcome.INCONCLUSIVE: "bold yellow",
    Outcome.SKIP: "dim",
}


def measured_text(v: Verdict) -> str:
    """The measured value and its CI, as every reporter prints it."""
    if v.measured is None:
        return "—"
    text = f"{v.measured:.4g}"
    if v.ci is not None:
        text += f" [{v.ci[0]:.4g}, {v.ci[1]:.4g}]"
    return text


def n_text(v: Verdict) -> str:
    return f"{v.n['memorized']}/{v.n['normal']}" if v.n else "—"


def verdict_table(model: str, verdicts: Sequence[Verdict], *, plain: bool = False) -> Table:
    table = Table(
        title=f"memharness · {model}",
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        show_lines=False,
        title_justify="left",
    )
    table.add_column("claim", no_wrap=True)
    table.add_column("paper ref")
    table.add_column("paper value")
    table.add_column("measured [95% CI]", no_wrap=True)
    table.add_column("n mem/norm", justify="right")
    table.add_column("verdict", no_wrap=True)
    for v in verdicts:
        verdict = Text(v.verdict.value, style="" if plain else STYLES[v.verdict])
        # Text, not markup: reasons and paper values contain brackets such as E[w0].
        table.add_row(*(Text(cell) for cell in (v.id, v.reference, v.paper, measured_text(v), n_text(v))), verdict)
    return table


def reason_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """One line per claim, under the table: why the verdict is what it is."""
    return [f"{v.id}: {v.reason}" for v in verdicts]


def summary_line(verdicts: Sequence[Verdict]) -> str:
    counts = Counter(v.verdict for v in verdicts)
    parts = [f"{counts.get(o, 0)} {o.value}" for o in Outcome]
    return f"{len(verdicts)} claims: " + ", ".join(parts)
