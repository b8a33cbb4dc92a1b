"""The report as one self-contained HTML file: inline CSS, figures as base64 PNG data URIs, no scripts.

It says what report.md says (:mod:`memharness.report.document` builds both from one
:class:`~memharness.report.document.ReportDoc`), with the verdict cells coloured. It loads nothing
from the network, so it opens the same offline, from a CI artefact or an e-mail attachment.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape

from memharness.claims.verdict import Verdict
from memharness.report.document import INTRO, LEGEND, MEASURED, ReportDoc, verdict_sentence
from memharness.report.matrix import matrix_cells
from memharness.report.model_report import ModelReport
from memharness.report.regressions import note_lines, regression_summary, transition_text
from memharness.report.terminal import has_null, header, row, summary_line

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1280px; padding: 1.5em 2em 4em; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: .3em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { margin-top: 2.2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #d0d0d0; padding: .3em .55em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; white-space: nowrap; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; font-size: .92em; }
td code { white-space: nowrap; }
.v { font-weight: bold; white-space: nowrap; }
.PASS { background: #dff3e0; color: #17611d; } .FAIL { background: #fbe0e0; color: #a01515; }
.INCONCLUSIVE { background: #fff3cd; color: #7a5a00; } .SKIP { background: #eeeeee; color: #666; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e5e5e5; }
figcaption { font-size: .9em; color: #444; margin-top: .4em; }
.missing { color: #7a5a00; font-style: italic; }
ul.claims li { margin: .35em 0; } .reasons li { margin: .2em 0; font-size: .92em; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _verdict_cell(value: str | None, text: str | None = None) -> str:
    if value is None:
        return "<td>—</td>"
    return f'<td class="v {_e(value)}">{_e(text or value)}</td>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Rows of ready-made <td> cells."""
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(row) + "</tr>" for row in rows]
    return out + ["</tbody>", "</table>"]


def verdict_table_html(report: ModelReport) -> list[str]:
    """The verdict table of the terminal and Markdown reporters, as HTML."""
    null = has_null(report.verdicts)
    rows = []
    for v in report.verdicts:
        claim, ref, paper, measured, floor, agreement, n, outcome, *extra = row(v, null=null)
        rows.append((f"<td><code>{_e(claim)}</code></td>", f"<td>{_e(ref)}</td>", f"<td>{_e(paper)}</td>",
                     f'<td class="num">{_e(measured)}</td>', f"<td>{_e(floor)}</td>", f"<td>{_e(agreement)}</td>",
                     f'<td class="num">{_e(n)}</td>', _verdict_cell(outcome),
                     *(f'<td class="num">{_e(cell)}</td>' for cell in extra)))
    lines = _table(header(report.verdicts), rows)
    lines.append('<ul class="reasons">')
    lines += [f"<li><code>{_e(v.id)}</code> ({_e(v.verdict.value)}): {_e(v.reason)}</li>" for v in report.verdicts]
    lines += ["</ul>", f"<p>{_e(summary_line(report.verdicts))}</p>"]
    if report.changes is not None:
        baseline = report.baseline or "the baseline"
        if report.regressions:
            lines += _table(("claim", "baseline → now", "why"),
                            [(f"<td><code>{_e(c.claim)}</code></td>", f"<td>{_e(transition_text(c))}</td>",
                              f"<td>{_e(c.reason)}</td>") for c in report.regressions])
        drift = report.fail_on_drift
        lines += [f"<p>{_e(line)}</p>" for line in note_lines(report.changes, fail_on_drift=drift)]
        lines.append(f"<p>{_e(regression_summary(report.changes, baseline=baseline, fail_on_drift=drift))}</p>")
    return lines


def verdicts_html(reports: Sequence[ModelReport]) -> list[str]:
    """With several models the claims × models matrix first, then one table per model."""
    lines: list[str] = []
    if len(reports) > 1:
        lines.append("<h3>claims × models</h3>")
        rows = [(f"<td><code>{_e(claim)}</code></td>", *(_verdict_cell(v, text) for text, v in cells))
                for claim, cells in matrix_cells(reports)]
        lines += _table(("claim", *(r.model for r in reports)), rows)
    for report in reports:
        lines.append(f"<h3>memharness · {_e(report.model)}</h3>")
        lines += verdict_table_html(report)
    return lines


def _verdict_html(v: Verdict | None) -> str:
    return verdict_sentence(v, text=_e, mark=lambda word: f'<span class="v {_e(word)}">{_e(word)}</span>')


def _claim_items(entries, *, several: bool) -> list[str]:
    lines = ['<ul class="claims">']
    for entry in entries:
        head = f"<code>{_e(entry.id)}</code> ({_e(entry.reference)}): {_e(entry.title)}."
        if several:
            inner = "".join(f"<li>{_e(model)}: {_verdict_html(v)}</li>" for model, v in entry.verdicts)
            lines.append(f"<li>{head}<ul>{inner}</ul></li>")
        else:
            lines.append(f"<li>{head} {_verdict_html(entry.verdicts[0][1])}</li>")
    return lines + ["</ul>"]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_document(doc: ReportDoc) -> str:
    several = len(doc.reports) > 1
    intro = _e(INTRO).replace("*&quot;How Diffusion Models Memorize&quot;*",
                              "<em>&quot;How Diffusion Models Memorize&quot;</em>")
    body = [f"<h1>{_e(doc.title)}</h1>", f"<p>{intro}</p>",
            f"<p>Regenerate it with <code>{_e(doc.command)}</code>.</p>"]
    body += _table(("model", "fixtures", "runs", "memorization labels"),
                   [(f"<td>{_e(m)}</td>", f"<td><code>{_e(p)}</code></td>", f"<td>{_e(r)}</td>",
                     f"<td>{_e(lab)}</td>") for m, p, r, lab in doc.overview])
    body += ["<p>How to read a verdict:</p>", "<ul>"]
    body += [f'<li><span class="v {name}">{name}</span>: {_e(text)}</li>' for name, text in LEGEND]
    body += ["</ul>", f"<p>{_e(MEASURED)}</p>", '<h2 id="verdicts">Verdicts</h2>']
    body += verdicts_html(doc.reports)
    body.append('<h2 id="claims">Claims and their figures</h2>')
    rows = []
    for entry in doc.claims:
        links = ", ".join(f'<a href="#{s.anchor}">{_e(s.figure.label)}</a>' for s in doc.figure_of(entry.id)) or "—"
        rows.append((f"<td><code>{_e(entry.id)}</code></td>", f"<td>{_e(entry.reference)}</td>",
                     *(_verdict_cell(v.verdict.value if v else None) for _, v in entry.verdicts), f"<td>{links}</td>"))
    body += _table(("claim", "paper ref", *doc.models, "figure"), rows)
    body.append('<h2 id="figures">Figures</h2>')
    for section in doc.sections:
        fig = section.figure
        body += [f'<section id="{section.anchor}">', f"<h3>{_e(fig.label)} · {_e(fig.title)}</h3>",
                 f"<p><strong>The paper.</strong> {_e(fig.paper)}</p>",
                 f"<p><strong>What the claims need to see.</strong> {_e(fig.look_for)}</p>"]
        if section.rendered.png is not None:
            body += ["<figure>", f'<img src="{data_uri(section.rendered.png)}" alt="{_e(fig.label)}: {_e(fig.title)}">',
                     f"<figcaption><strong>Drawn here.</strong> {_e(fig.drawn)}</figcaption>", "</figure>"]
        else:
            body.append(f"<p><strong>Drawn here.</strong> {_e(fig.drawn)}</p>")
        body += [f'<p class="missing">No {_e(fig.label)} for {_e(model)}: {_e(why)}.</p>'
                 for model, why in section.rendered.missing.items()]
        body += _claim_items(section.claims, several=several)
        body.append("</section>")
    if doc.without_figure:
        body.append('<h2 id="without-figure">Claims without a figure</h2>')
        body += _claim_items(doc.without_figure, several=several)
    head = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(doc.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    return "\n".join([*head, *body, "</body>", "</html>"]) + "\n"
