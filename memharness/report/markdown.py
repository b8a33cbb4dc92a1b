"""The report as Markdown: per model the verdict table, the reasons and the regressions (e.g. for a PR comment);
and ``memharness report``'s report.md (:func:`markdown_document`)."""

from __future__ import annotations

from collections.abc import Sequence

from memharness.report.document import INTRO, LEGEND, MEASURED, ClaimEntry, ReportDoc, verdict_sentence
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
        notes = note_lines(report.changes, fail_on_drift=report.fail_on_drift)
        lines += [f"- {_cell(line)}" for line in notes] + ([""] if notes else [])
        lines += [regression_summary(report.changes, baseline=baseline, fail_on_drift=report.fail_on_drift), ""]
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


# --------------------------------------------------------------------------- report.md
def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table of cells already escaped (they hold links and code spans)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _md_claim(entry: ClaimEntry, *, several: bool) -> list[str]:
    head = f"- **`{entry.id}`** ({_cell(entry.reference)}): {_cell(entry.title)}."

    def sentence(v):
        return verdict_sentence(v, text=_cell, mark=lambda word: f"**{word}**")

    if not several:
        return [f"{head} {sentence(entry.verdicts[0][1])}"]
    return [head] + [f"  - {model}: {sentence(v)}" for model, v in entry.verdicts]


def _demote(markdown: str) -> list[str]:
    """The Markdown reporter's headings one level down, under this report's own."""
    return [("#" + line) if line.startswith("#") else line for line in markdown.rstrip("\n").splitlines()]


def markdown_document(doc: ReportDoc) -> str:
    several = len(doc.reports) > 1
    lines = [f"# {doc.title}", "", INTRO, "", f"Regenerate it with `{doc.command}`.", ""]
    lines += _md_table(("model", "fixtures", "runs", "memorization labels"),
                       [(m, f"`{p}`", _cell(r), _cell(lab)) for m, p, r, lab in doc.overview])
    lines += ["", "How to read a verdict:", ""]
    lines += [f"- **{name}**: {text};" if i < len(LEGEND) - 1 else f"- **{name}**: {text}."
              for i, (name, text) in enumerate(LEGEND)]
    lines += ["", MEASURED, "", "## Verdicts", ""]
    lines += _demote(markdown_report(doc.reports))
    lines += ["", "## Claims and their figures", ""]
    rows = []
    for entry in doc.claims:
        links = ", ".join(f"[{s.figure.label}](#{s.anchor})" for s in doc.figure_of(entry.id)) or "—"
        verdicts = [v.verdict.value if v else "—" for _, v in entry.verdicts]
        rows.append((f"`{entry.id}`", _cell(entry.reference), *verdicts, links))
    lines += _md_table(("claim", "paper ref", *doc.models, "figure"), rows)
    lines += ["", "## Figures", ""]
    for section in doc.sections:
        fig = section.figure
        lines += [f'<a id="{section.anchor}"></a>', "", f"### {fig.label} · {_cell(fig.title)}", ""]
        lines += [f"**The paper.** {_cell(fig.paper)}", "", f"**What the claims need to see.** {_cell(fig.look_for)}",
                  ""]
        if section.path is not None:
            lines += [f"![{fig.label}: {_cell(fig.title)}]({section.path})", ""]
        lines += [f"**Drawn here.** {_cell(fig.drawn)}", ""]
        for model, why in section.rendered.missing.items():
            lines += [f"*No {fig.label} for {model}: {_cell(why)}.*", ""]
        for entry in section.claims:
            lines += _md_claim(entry, several=several)
        lines.append("")
    orphans = doc.without_figure
    if orphans:
        lines += ["## Claims without a figure", ""]
        for entry in orphans:
            lines += _md_claim(entry, several=several)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
