"""The report as Markdown: per model the verdict table, the reasons and the regressions (e.g. for a PR comment)."""

from __future__ import annotations

from collections.abc import Sequence

from memharness.report.matrix import REGRESSED, matrix_cells
from memharness.report.model_report import ModelReport
from memharness.report.regressions import note_lines, regression_summary, transition_text
from memharness.report.terminal import has_null, header, row, summary_line


def _cell(text: str) -> str:
    """Free text on one line, with the characters Markdown would read as table or emphasis escaped."""
    for char in "\\|*_`":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> list[str]:
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    return ["| " + " | ".join(row) + " |" for row in ([*header], rule, *([_cell(c) for c in r] for r in rows))]


def _model_section(report: ModelReport, *, level: str) -> list[str]:
    lines = [f"{level} memharness · {report.model}", ""]
    null = has_null(report.verdicts)
    rows = [row(v, null=null) for v in report.verdicts]
    lines += _table(header(report.verdicts), rows, right=(6, 8))
    lines.append("")
    lines += [f"- **{v.id}** ({v.verdict.value}): {_cell(v.reason)}" for v in report.verdicts]
    lines += ["", summary_line(report.verdicts), ""]
    if report.changes is not None:
        baseline = report.baseline or "the baseline"
        lines += [f"{level}# Regressions against `{baseline}`", ""]
        regressions = report.regressions
        if regressions:
            lines += _table(("claim", "baseline → now", "why"),
                            [(c.claim, transition_text(c), c.reason) for c in regressions])
            lines.append("")
        notes = note_lines(report.changes)
        lines += [f"- {_cell(line)}" for line in notes] + ([""] if notes else [])
        lines += [regression_summary(report.changes, baseline=baseline), ""]
    return lines


def markdown_report(reports: Sequence[ModelReport]) -> str:
    """One section per model; with several models a claims × models matrix first."""
    lines: list[str] = []
    level = "##"
    if len(reports) > 1:
        lines += ["## memharness · claims × models", ""]
        lines += _table(("claim", *(r.model for r in reports)),
                        [(claim, *(text for text, _ in cells)) for claim, cells in matrix_cells(reports)])
        if any(r.changes is not None for r in reports):
            lines += ["", f"{REGRESSED} regressed against the baseline"]
        lines.append("")
        level = "###"
    for report in reports:
        lines += _model_section(report, level=level)
    return "\n".join(lines).rstrip("\n") + "\n"
