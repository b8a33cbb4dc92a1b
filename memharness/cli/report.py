"""``memharness report``: verdicts and the paper's figures redrawn from the fixtures (report.md, report.html)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memharness.cli.options import add_fixture_options
from memharness.cli.runtime import fixture_info, fixture_targets, open_fixture
from memharness.errors import MemharnessError


def add_parser(subparsers) -> None:
    report = subparsers.add_parser("report", help="verdicts and the paper's figures redrawn from the fixtures, "
                                                  "as report.md and a self-contained report.html")
    add_fixture_options(report, several=True)
    report.add_argument("--out", metavar="DIR", help="output folder (default reports/<model>, models joined by +)")
    report.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Verdicts and the paper's figures redrawn from the fixtures: report.md, report.html, figures/*.png."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MemharnessError("report: needs matplotlib; install it with `pip install matplotlib`") from None
    from memharness.claims import load_specs, run_claims
    from memharness.report.model_report import ModelReport
    from memharness.report.series import Source

    targets = fixture_targets(args.model or [], args.fixtures)
    specs = load_specs()
    reports, sources = [], []
    for model, root in targets:
        model, fixture = open_fixture(model, root)
        reports.append(ModelReport(model=model, verdicts=tuple(run_claims(fixture, specs)),
                                   fixtures=fixture_info(fixture, root)))
        sources.append(Source(model, fixture, {spec.id: spec for spec in specs}))
    # Model ids follow the id rule (checked when the manifest is read): reports/<id> stays in reports/.
    out = Path(args.out) if args.out else Path("reports") / "+".join(r.model for r in reports)
    if out.exists() and not out.is_dir():
        raise MemharnessError(f"--out: {out} is a file; give a folder")
    from memharness.trace.safety import refuse_inside_fixture

    refuse_inside_fixture(out, "--out")
    command = " ".join(["memharness report", *(f"--model {r.model}" for r in reports),
                        *([f"--fixtures {args.fixtures}"] if args.fixtures else []), f"--out {out}"])
    _write(out, reports, sources, command)
    return 0


def _write(out: Path, reports, sources, command: str) -> None:
    from memharness.progress import LongWork
    from memharness.report.document import build_report
    from memharness.report.files import write_report

    try:
        with LongWork("report", "+".join(r.model for r in reports), unit="figures") as work:
            doc = build_report(reports, sources, command=command,
                               progress=lambda done, total: work.update(done, total))
        written = write_report(out, doc)
    except OSError as exc:
        raise MemharnessError(f"--out: cannot write {exc.filename or out} ({exc.strerror})") from None
    n_figures = sum(p.suffix == ".png" for p in written)
    print(f"wrote {out / 'report.md'} and {out / 'report.html'} with {n_figures} figures", file=sys.stderr)
