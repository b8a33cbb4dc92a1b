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


def agreement_text(v: Verdict) -> str:
    """The measured CI against the paper's number: matches / weaker / stronger, or — without a number."""
    return v.agreement.value if v.agreement is not None else "—"


def null_text(v: Verdict) -> str:
    """How often the claim PASSed on permuted scores (check --null); n/a where a permutation changes nothing."""
    if v.null_note:
        return "n/a"
    return "—" if v.null_pass_rate is None else f"{v.null_pass_rate:.0%}"


def has_null(verdicts: Sequence[Verdict]) -> bool:
    return any(v.null_pass_rate is not None or v.null_note for v in verdicts)


def header(verdicts: Sequence[Verdict], *, reference: bool = True) -> tuple[str, ...]:
    """The columns of every verdict table (terminal, Markdown, HTML); the null column only with --null.
    The terminal leaves out the paper reference (`memharness claims show ID` has it) to stay readable."""
    cells = ("claim", *(("paper ref",) if reference else ()), "paper value", "measured [95% CI]", "floor",
             "vs paper", "n mem/norm", "verdict")
    return cells + (("null PASS",) if has_null(verdicts) else ())


def row(v: Verdict, *, null: bool, reference: bool = True) -> tuple[str, ...]:
    """One verdict's cells under ``header``, as text."""
    cells = (v.id, *((v.reference,) if reference else ()), v.paper, measured_text(v), v.floor or "—",
             agreement_text(v), n_text(v), v.verdict.value)
    return cells + ((null_text(v),) if null else ())


def verdict_table(model: str, verdicts: Sequence[Verdict], *, plain: bool = False) -> Table:
    table = Table(
        title=f"memharness · {model}",
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        show_lines=False,
        title_justify="left",
    )
    null = has_null(verdicts)
    names = header(verdicts, reference=False)
    for name in names:
        table.add_column(name, no_wrap=name in ("claim", "measured [95% CI]", "vs paper", "verdict", "null PASS"),
                         justify="right" if name in ("n mem/norm", "null PASS") else "left")
    for v in verdicts:
        cells = [Text(cell) for cell in row(v, null=null, reference=False)]
        # Text, not markup: reasons and paper values contain brackets such as E[w0].
        cells[names.index("verdict")] = Text(v.verdict.value, style="" if plain else STYLES[v.verdict])
        table.add_row(*cells)
    return table


def reason_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """One line per claim, under the table: why the verdict is what it is (and the null, with --null)."""
    lines = []
    for v in verdicts:
        line = f"{v.id}: {v.reason}"
        if v.null_note:
            line += f"; null: n/a, {v.null_note}"
        lines.append(line)
    return lines


def summary_line(verdicts: Sequence[Verdict]) -> str:
    counts = Counter(v.verdict for v in verdicts)
    parts = [f"{counts.get(o, 0)} {o.value}" for o in Outcome]
    return f"{len(verdicts)} claims: " + ", ".join(parts)
