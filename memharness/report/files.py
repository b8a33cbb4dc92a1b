"""``memharness report``'s folder: report.md, report.html and figures/*.png, written atomically."""

from __future__ import annotations

from pathlib import Path

from memharness.report.document import FIGURE_DIR, REPORT_HTML, REPORT_MD, ReportDoc
from memharness.report.html import html_document
from memharness.report.markdown import markdown_document
from memharness.trace.safety import atomic_write_bytes


def write_report(out: Path, doc: ReportDoc) -> list[Path]:
    """Write report.md, report.html and figures/*.png under ``out``; stale figures/*.png are removed."""
    out = Path(out)
    figures = doc.figures()
    written = []
    for rel, png in figures.items():
        atomic_write_bytes(out / rel, png)
        written.append(out / rel)
    folder = out / FIGURE_DIR
    if folder.is_dir():
        for old in sorted(folder.glob("*.png")):
            if f"{FIGURE_DIR}/{old.name}" not in figures:
                old.unlink()
    for name, text in ((REPORT_MD, markdown_document(doc)), (REPORT_HTML, html_document(doc))):
        atomic_write_bytes(out / name, text.encode())
        written.append(out / name)
    return written
