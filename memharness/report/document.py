"""``memharness report``: the verdicts and the paper's figures redrawn from fixtures, as one folder.

::

    <out>/report.md        verdict tables (the Markdown reporter's), then one section per figure
    <out>/report.html      the same, self-contained: figures embedded as base64 PNG data URIs
    <out>/figures/*.png    the figures report.md links to

:func:`build_report` assembles a :class:`ReportDoc` (what is said, in which order) and renders it
to Markdown in :mod:`memharness.report.markdown` and to HTML in :mod:`memharness.report.html`, both
from the texts here, so they read alike; :mod:`memharness.report.files` writes the folder. Nothing in the
output depends on the time or the machine beyond the fixture paths as given: committed reports
change only when the fixtures, the claims or the code do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from memharness.claims.verdict import AGREEMENT_RULE, VERDICT_RULE, Verdict
from memharness.report.figures import FIGURES, FigureDef, Rendered, render_figure
from memharness.report.model_report import ModelReport
from memharness.report.series import Source, Unavailable
from memharness.report.terminal import measured_text

FIGURE_DIR = "figures"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"

INTRO = (
    "The quantitative claims of *\"How Diffusion Models Memorize\"*, checked by memharness against recorded "
    "trace fixtures, and the paper's figures redrawn from the same fixtures. The verdict tables come first; "
    "then, figure by figure, what the paper plots, what its claims need to see in it, the redrawn figure and "
    "the verdicts of the claims it shows."
)
LEGEND = VERDICT_RULE
MEASURED = ("The measured value is the first part of a claim's test: an AUC, P(memorized beats normal), for a "
            "Mann-Whitney comparison; Pearson's r for a correlation; a mean for a bound or band. A prompt is "
            "memorized when its memorization score (Eq 9) is at least 0.75 (§3.1). " + AGREEMENT_RULE)


@dataclass(frozen=True)
class ClaimEntry:
    """One claim with every model's verdict (None where a model did not check it)."""

    id: str
    reference: str
    title: str
    verdicts: tuple[tuple[str, Verdict | None], ...]


@dataclass(frozen=True)
class FigureSection:
    figure: FigureDef
    rendered: Rendered
    claims: tuple[ClaimEntry, ...]

    @property
    def anchor(self) -> str:
        return self.figure.label.lower().replace(" ", "-")

    @property
    def path(self) -> str | None:
        """The PNG's path relative to the report, or None when no model had the data."""
        return f"{FIGURE_DIR}/{self.figure.key}.png" if self.rendered.png is not None else None


@dataclass(frozen=True)
class ReportDoc:
    title: str
    command: str
    reports: tuple[ModelReport, ...]
    overview: tuple[tuple[str, str, str, str], ...]  # model, fixtures, runs, labels
    claims: tuple[ClaimEntry, ...]
    sections: tuple[FigureSection, ...]

    @property
    def models(self) -> list[str]:
        return [r.model for r in self.reports]

    def figures(self) -> dict[str, bytes]:
        return {s.path: s.rendered.png for s in self.sections if s.path is not None}

    def figure_of(self, claim: str) -> list[FigureSection]:
        return [s for s in self.sections if claim in s.figure.claims]

    @property
    def without_figure(self) -> tuple[ClaimEntry, ...]:
        drawn = {c for s in self.sections for c in s.figure.claims}
        return tuple(c for c in self.claims if c.id not in drawn)


# --------------------------------------------------------------------------- building
def _runs_text(fixtures: dict) -> str:
    parts = []
    for name, run in (fixtures.get("runs") or {}).items():
        scales = ", ".join(f"{float(g):g}" for g in run.get("guidance", []))
        parts.append(f"{name}: {run.get('num_inference_steps', '?')} steps, {len(run.get('seeds', []))} seeds, "
                     f"g = {scales}")
    return "; ".join(parts) or "—"


def _recorded_text(src: Source) -> str:
    """How the runs were recorded (issue 16's provenance); nothing for fixtures written before it was kept."""
    from memharness.runtime import provenance_line

    line = provenance_line(src.fixture.manifest)
    return f" ({line})" if line else ""


def _labels_text(src: Source) -> str:
    try:
        labels = src.labels("overestimation")
    except Unavailable as exc:
        return f"none: {exc}"
    n = labels.n
    return (f"{labels.scorer} score on {labels.source} ≥ {src.param('overestimation', 'threshold'):g}: "
            f"{n['memorized']} memorized, {n['normal']} normal")


def _claim_entries(reports: Sequence[ModelReport]) -> tuple[ClaimEntry, ...]:
    from memharness.report.matrix import claim_order

    entries = []
    for claim in claim_order(reports):
        found = [(r.model, next((v for v in r.verdicts if v.id == claim), None)) for r in reports]
        first = next(v for _, v in found if v is not None)
        entries.append(ClaimEntry(id=claim, reference=first.reference, title=first.title, verdicts=tuple(found)))
    return tuple(entries)


def build_report(reports: Sequence[ModelReport], sources: Sequence[Source], *, command: str,
                 figures: Sequence[FigureDef] = FIGURES, progress=None) -> ReportDoc:
    """Render every figure for every model and assemble the document (no files written).
    ``progress(done, total)`` is called after each figure (long work: ``memharness.progress``)."""
    claims = _claim_entries(reports)
    by_id = {c.id: c for c in claims}
    sections = []
    for done, defn in enumerate(figures, start=1):
        shown = tuple(by_id[c] for c in defn.claims if c in by_id)
        # none of its claims was checked (e.g. --claim): no figure
        rendered = render_figure(defn, sources) if shown else None
        # a figure beyond the paper's (the dose response) where no model has its data: none either
        if rendered is not None and not (defn.optional and rendered.png is None):
            sections.append(FigureSection(defn, rendered, shown))
        if progress is not None:
            progress(done, len(figures))
    overview = tuple((r.model, str(r.fixtures.get("path", "")), _runs_text(r.fixtures) + _recorded_text(src),
                      _labels_text(src)) for r, src in zip(reports, sources, strict=True))
    return ReportDoc(title="memharness report · " + ", ".join(r.model for r in reports), command=command,
                     reports=tuple(reports), overview=overview, claims=claims, sections=tuple(sections))


# --------------------------------------------------------------------------- shared by both renderers
def verdict_sentence(v: Verdict | None, *, text: Callable[[str], str], mark: Callable[[str], str]) -> str:
    """"VERDICT, measured M (paper: P): why", as report.md and report.html both say it; they differ
    only in how free ``text`` is escaped and how the verdict word is marked."""
    if v is None:
        return "not checked"
    out = mark(v.verdict.value)
    if v.measured is not None:
        out += f", measured {text(measured_text(v))}"
    return f"{out} (paper: {text(v.paper)}): {text(v.reason)}"
