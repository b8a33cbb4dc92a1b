"""The report as JUnit XML for CI systems, in the shape pytest's --junitxml writes: testsuites >
testsuite per model (tests, failures, skipped, errors, time, timestamp) > testcase per claim
(classname, name, time: the claim's check, robustness readings included).

FAIL and regressions (drift too with --fail-on-drift) are failures; SKIP and INCONCLUSIVE are skipped
(with the reason), or failures with ``strict``: only a PASS counts as passed. Other changes against
the baseline (drift, moves toward the paper) go to the testcase's system-out.
Claims missing from the run but present in the baseline are not testcases (they are notes).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone

from memharness.claims.verdict import Outcome, Verdict
from memharness.report.model_report import ModelReport
from memharness.report.terminal import agreement_text, measured_text, n_text

# Characters XML 1.0 cannot carry at all; a reason is free text.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("?", str(value))


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def _properties(parent: ET.Element, pairs: Sequence[tuple[str, str]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=_text(value))


def verdict_properties(v: Verdict) -> list[tuple[str, str]]:
    """The numbers behind a verdict, as strings (also the pytest plugin's user properties)."""
    return [
        ("verdict", v.verdict.value),
        ("measured", _number(v.measured)),
        ("ci_low", _number(v.ci[0]) if v.ci else ""),
        ("ci_high", _number(v.ci[1]) if v.ci else ""),
        ("p_value", _number(v.p_value)),
        ("paper", v.paper),
        ("n_memorized", str(v.n.get("memorized", "")) if v.n else ""),
        ("n_normal", str(v.n.get("normal", "")) if v.n else ""),
        ("test", v.test or ""),
        ("reference", v.reference),
        ("scope", v.scope or ""),
        ("floor", v.floor or ""),
        ("paper_number", _number(v.paper_number)),
        ("agreement", agreement_text(v)),
        ("robust", v.robust or ""),
        ("null_pass_rate", "n/a" if v.null_note else _number(v.null_pass_rate)),
    ]


def failure_text(model: str, v: Verdict) -> str:
    return (f"{v.id} on {model}: {v.verdict.value}\n"
            f"measured {measured_text(v)} (n mem/norm {n_text(v)}), paper {v.paper}\n"
            f"reason: {v.reason}")


def _testcase(suite: ET.Element, report: ModelReport, v: Verdict, *, strict: bool) -> str:
    """Add one claim's testcase; returns its outcome: 'passed', 'failure' or 'skipped'."""
    case = ET.SubElement(suite, "testcase", classname=f"memharness.{report.model}", name=v.id,
                         time=_seconds(v.seconds))
    _properties(case, verdict_properties(v))
    failing = v.verdict is Outcome.FAIL or (strict and v.verdict is not Outcome.PASS)
    failed_changes = [c for c in report.regressions if c.claim == v.id]
    notes = [f"{c.kind} against {report.baseline}: {c.reason}" for c in failed_changes]
    told = [f"{c.kind} against {report.baseline}: {c.reason}" for c in report.changes or ()
            if c.claim == v.id and c not in failed_changes]
    messages = ([v.reason] if failing else []) + notes
    kinds = ([v.verdict.value] if failing else []) + list(dict.fromkeys(c.kind for c in failed_changes))
    text = "\n".join([failure_text(report.model, v), *notes])
    if messages:
        failure = ET.SubElement(case, "failure", message=_text("; ".join(messages)), type="+".join(kinds))
        failure.text = _text(text)
        outcome = "failure"
    elif v.verdict in (Outcome.SKIP, Outcome.INCONCLUSIVE):
        ET.SubElement(case, "skipped", message=_text(f"{v.verdict.value}: {v.reason}"))
        outcome = "skipped"
    else:
        outcome = "passed"
    ET.SubElement(case, "system-out").text = _text("\n".join([text, *told]))
    return outcome


def _suite(root: ET.Element, report: ModelReport, *, strict: bool, timestamp: str) -> dict[str, float]:
    """One model's testsuite; returns its counts and time."""
    suite = ET.SubElement(root, "testsuite", name=f"memharness.{report.model}")
    props = [("model", report.model), ("harness_version", report.harness_version),
             ("fixtures", str(report.fixtures.get("path", ""))), ("strict", str(strict).lower())]
    if report.baseline:
        props.append(("baseline", report.baseline))
    _properties(suite, props)
    outcomes = [_testcase(suite, report, v, strict=strict) for v in report.verdicts]
    counts = {"errors": 0, "failures": outcomes.count("failure"), "skipped": outcomes.count("skipped"),
              "tests": len(outcomes), "time": sum(v.seconds or 0.0 for v in report.verdicts)}
    suite.attrib.update({k: str(n) for k, n in counts.items() if k != "time"},
                        time=_seconds(counts["time"]), timestamp=timestamp)
    return counts


def junit_xml(reports: Sequence[ModelReport], *, strict: bool = False) -> str:
    root = ET.Element("testsuites", name="memharness")
    timestamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    totals = {"errors": 0, "failures": 0, "skipped": 0, "tests": 0, "time": 0.0}
    for report in reports:
        for key, value in _suite(root, report, strict=strict, timestamp=timestamp).items():
            totals[key] += value
    root.attrib.update({k: str(n) for k, n in totals.items() if k != "time"}, time=_seconds(totals["time"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
