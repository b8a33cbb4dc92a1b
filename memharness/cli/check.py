"""``memharness check``: the claims on each model's fixture → verdicts (+ changes against a baseline) → a report.

Exit codes: 0 nothing failed; 1 a claim FAILed or regressed against the baseline (with --strict, also an
INCONCLUSIVE or SKIP claim; with --fail-on-drift, drift); 2 usage or data error.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from memharness.cli.options import add_fixture_options, positive_int
from memharness.cli.runtime import fixture_info, fixture_targets, open_fixture, terminal
from memharness.errors import MemharnessError


def add_parser(subparsers) -> None:
    check = subparsers.add_parser("check", help="run the claim checks on a model's fixtures and print verdicts")
    add_fixture_options(check, several=True)
    check.add_argument("--claim", action="append", metavar="ID", help="check only this claim (repeatable)")
    check.add_argument("--format", choices=("table", "json", "junit", "markdown", "github"), default="table",
                       help="output format (default table; github: ::error/::warning annotations; docs/outputs.md)")
    check.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    check.add_argument("--append", action="store_true",
                       help="add the report to the end of the --output FILE instead of replacing it "
                            "(e.g. several reports into $GITHUB_STEP_SUMMARY)")
    check.add_argument("--baseline", metavar="FILE",
                       help="a JSON report to compare with: a verdict worse than it (PASS → INCONCLUSIVE → FAIL) or "
                            "a paper agreement worse than it is a regression (exit 1); a measured value moved "
                            "beyond the claim's regression_tolerance is reported as drift")
    check.add_argument("--fail-on-drift", action="store_true",
                       help="with --baseline, drift away from the paper's value fails too (exit 1); a move toward "
                            "it never does")
    check.add_argument("--write-baseline", metavar="FILE", help="also write the JSON report to FILE, as a baseline")
    check.add_argument("--strict", action="store_true",
                       help="an INCONCLUSIVE or SKIP claim fails too (exit 1)")
    check.add_argument("--null", type=positive_int, metavar="K",
                       help="also rerun every claim on K random permutations of the memorization scores among "
                            "prompts and report how often each PASSed (null_pass_rate): the harness checking itself")
    check.add_argument("--null-seed", type=int, default=0, metavar="S",
                       help="seed of the permutations (default 0)")
    check.add_argument("--sparklines", action="store_true",
                       help="under each table, k(t) and w0(t) per group as inline charts (DDIM, g = 7.5)")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Claims on each model's fixtures → verdicts (+ changes against a baseline) → one report format."""
    from memharness.claims import load_specs
    from memharness.report.model_report import json_report

    for option, value in (("--output", args.output), ("--write-baseline", args.write_baseline)):
        if value and Path(value).is_dir():  # fail before the work, not after it
            raise MemharnessError(f"{option}: {value} is a folder; give a file name")
    if args.append and not args.output:
        raise MemharnessError("--append: adds to the file of --output FILE; give --output too")
    targets = fixture_targets(args.model or [], args.fixtures)
    specs = load_specs()
    reports, opened = _model_reports(args, targets, specs)
    if args.format == "table":
        buffer = io.StringIO() if args.output else None
        console, plain = terminal(buffer)
        _print_tables(reports, console, plain=plain, sparklines=opened if args.sparklines else None,
                      fixtures=opened)
        if buffer is not None:
            emit(buffer.getvalue(), args.output, append=args.append)
    else:
        sources = {spec.id: spec.source for spec in specs}
        emit(_render(reports, fmt=args.format, strict=args.strict, sources=sources), args.output, append=args.append)
    if args.write_baseline:  # the fixture path relative to the baseline: it travels with the repository
        emit(json_report(reports, with_baseline=False, relative_to=Path(args.write_baseline).parent),
             args.write_baseline, option="--write-baseline")
    return 1 if any(r.failed(strict=args.strict) for r in reports) else 0


def _model_reports(args: argparse.Namespace, targets, specs) -> tuple[list, dict]:
    """One ModelReport per model, and the fixture opened for each."""
    from memharness.claims import run_claims
    from memharness.claims.regression import baseline_for, compare, load_baseline
    from memharness.report.model_report import ModelReport

    tolerances = {spec.id: spec.regression_tolerance for spec in specs}
    baselines = load_baseline(Path(args.baseline)) if args.baseline else None
    only = args.claim or ()
    reports, opened = [], {}
    for model, root in targets:
        model, fixture = open_fixture(model, root)
        opened[model] = fixture
        base = baseline_for(baselines, model, Path(args.baseline)) if baselines is not None else None
        verdicts = run_claims(fixture, specs, only=only)
        if args.null:
            verdicts = _with_null(args, model, fixture, specs, verdicts)
        reports.append(ModelReport(
            model=model,
            verdicts=tuple(verdicts),
            fixtures=fixture_info(fixture, root),
            changes=None if base is None else tuple(compare(base, verdicts, tolerances, only=only)),
            baseline=args.baseline,
            fail_on_drift=args.fail_on_drift,
        ))
    return reports, opened


def _with_null(args: argparse.Namespace, model: str, fixture, specs, verdicts):
    """--null K: each verdict with how often its claim PASSed on K label permutations."""
    from memharness.claims.engine import null_pass_rates, with_null
    from memharness.progress import LongWork

    with LongWork("check --null", f"{model}: label permutations", unit="permutations", total=args.null) as work:
        rates = null_pass_rates(fixture, specs, permutations=args.null, seed=args.null_seed, only=args.claim or (),
                                progress=work.update)
    return with_null(verdicts, rates)


def emit(text: str, output: str | None, *, option: str = "--output", append: bool = False) -> None:
    """Print (no FILE, or "-"), or write FILE: a regular file atomically (its folder is created);
    a FIFO, device or /dev/stdout in place; through a symlink; never into a fixture folder.
    ``append``: a regular file keeps what it holds and gets ``text`` after it (still replaced atomically)."""
    if not output or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from memharness.trace.safety import write_output

    path = Path(output)
    try:
        if path.is_dir():
            raise MemharnessError(f"{option}: {path} is a folder; give a file name")
        before = path.read_bytes() if append and path.is_file() else b""
    except OSError as exc:
        raise MemharnessError(f"{option}: cannot write {path} ({exc.strerror})") from None
    write_output(path, before + text.encode(), option)


def _render(reports, *, fmt: str, strict: bool, sources: dict[str, str]) -> str:
    if fmt == "github":
        from memharness.report.github import github_annotations

        return github_annotations(reports, sources=sources, strict=strict)
    if fmt == "junit":
        from memharness.report.junit import junit_xml

        return junit_xml(reports, strict=strict)
    if fmt == "markdown":
        from memharness.report.markdown import markdown_report

        return markdown_report(reports)
    from memharness.report.model_report import json_report

    return json_report(reports)


def _print_tables(reports, console, *, plain: bool, sparklines: dict | None = None,
                  fixtures: dict | None = None) -> None:
    from memharness.report.matrix import verdict_matrix
    from memharness.report.terminal import reason_lines, summary_line, verdict_table
    from memharness.runtime import provenance_line

    for r in reports:
        console.print(verdict_table(r.model, r.verdicts, plain=plain))
        recorded = provenance_line(fixtures[r.model].manifest) if fixtures and r.model in fixtures else None
        if recorded:  # fixtures written before provenance was kept have none to print
            console.print(recorded, soft_wrap=True, markup=False)
        for line in reason_lines(r.verdicts):
            console.print(line, soft_wrap=True, markup=False)
        console.print(summary_line(r.verdicts), markup=False)
        if sparklines is not None:
            from memharness.report.sparklines import sparkline_renderable

            console.print(sparkline_renderable(sparklines[r.model], model=r.model, plain=plain))
        if r.changes is not None:
            _print_changes(r, console, plain=plain)
    if len(reports) > 1:
        console.print(verdict_matrix(reports, plain=plain))


def _print_changes(r, console, *, plain: bool) -> None:
    """A model's changes against its baseline: the regressions' table, the notes, the summary line."""
    from memharness.report.regressions import note_lines, regression_summary, regression_table

    if r.regressions:
        console.print(regression_table(r.model, r.changes, plain=plain, fail_on_drift=r.fail_on_drift))
    for line in note_lines(r.changes, fail_on_drift=r.fail_on_drift):
        console.print(line, soft_wrap=True, markup=False)
    console.print(regression_summary(r.changes, baseline=r.baseline, fail_on_drift=r.fail_on_drift),
                  markup=False, style="" if plain or not r.regressions else "bold red")
