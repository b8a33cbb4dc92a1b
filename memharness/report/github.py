"""The report as GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` line per
claim worth a look, placed at the claim's YAML file, then one summary line per model.

error: what fails the run (a FAIL without a baseline, a regression, drift with --fail-on-drift,
anything but PASS with --strict). warning: INCONCLUSIVE, drift, a FAIL the baseline already records.
notice: SKIP, a move toward the paper's value, new, missing and otherwise changed claims.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from memharness.claims.regression import DRIFT
from memharness.claims.verdict import Outcome, Verdict
from memharness.report.model_report import ModelReport
from memharness.report.terminal import measured_text, summary_line


def _data(text: str) -> str:
    """A message, escaped as the runner reads it (a newline would end the command)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _where(source: str | None) -> str:
    """The claim file relative to the working folder (where a workflow runs), else as given."""
    if not source:
        return ""
    try:
        path = Path(os.path.relpath(os.path.abspath(source))).as_posix()
    except ValueError:  # another drive
        path = Path(source).as_posix()
    if path.startswith("../"):
        path = Path(source).as_posix()
    return f"file={_property(path)},line=1,"


def annotation(level: str, title: str, message: str, *, source: str | None = None) -> str:
    return f"::{level} {_where(source)}title={_property(title)}::{_data(message)}"


def _verdict_level(report: ModelReport, v: Verdict, *, strict: bool) -> tuple[str, str] | None:
    """(level, what) of one verdict, or None for a PASS."""
    if v.verdict is Outcome.PASS:
        return None
    if strict:
        return "error", f"{v.verdict.value} (--strict)"
    if v.verdict is Outcome.FAIL:
        return ("warning", "known FAIL (the baseline records it)") if report.changes is not None else ("error", "FAIL")
    return ("warning" if v.verdict is Outcome.INCONCLUSIVE else "notice"), v.verdict.value


def model_annotations(report: ModelReport, *, sources: Mapping[str, str], strict: bool = False) -> list[str]:
    lines = []
    for v in report.verdicts:
        level = _verdict_level(report, v, strict=strict)
        if level is not None:
            message = f"{v.reason} (measured {measured_text(v)}, paper {v.paper})"
            lines.append(annotation(level[0], f"memharness {report.model} · {v.id}: {level[1]}", message,
                                    source=sources.get(v.id)))
    failing = set(report.regressions)
    for c in report.changes or ():
        level = "error" if c in failing else "warning" if c.kind == DRIFT else "notice"
        lines.append(annotation(level, f"memharness {report.model} · {c.claim}: {c.kind} against {report.baseline}",
                                c.reason, source=sources.get(c.claim)))
    lines.append(f"memharness · {report.model}: {summary_line(report.verdicts)}")
    return lines


def github_annotations(reports: Sequence[ModelReport], *, sources: Mapping[str, str], strict: bool = False) -> str:
    """``sources``: claim id → its YAML file (ClaimSpec.source)."""
    return "".join(line + "\n" for r in reports for line in model_annotations(r, sources=sources, strict=strict))
