"""The report as JUnit XML for CI systems: one testsuite per model, one testcase per claim.

FAIL and regressions are failures; SKIP and INCONCLUSIVE are skipped (with the reason), or failures
with ``strict``: only a PASS counts as passed.
Claims missing from the run but present in the baseline are not testcases (they are notes).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from memharness.claims.verdict import Outcome, Verdict
from memharness.report.model_report import ModelReport
from memharness.report.terminal import agreement_text, measured_text, n_text

# Characters XML 1.0 cannot carry at all; a reason is free text.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("?", str(value))


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


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
    case = ET.SubElement(suite, "testcase", classname=f"memharness.{report.model}", name=v.id, time="0")
    _properties(case, verdict_properties(v))
    failing = v.verdict is Outcome.FAIL or (strict and v.verdict is not Outcome.PASS)
    notes = [f"regression against {report.baseline}: {c.reason}" for c in report.regressions if c.claim == v.id]
    messages = ([v.reason] if failing else []) + notes
    kinds = ([v.verdict.value] if failing else []) + (["regression"] if notes else [])
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
    ET.SubElement(case, "system-out").text = _text(text)
    return outcome


def junit_xml(reports: Sequence[ModelReport], *, strict: bool = False) -> str:
    root = ET.Element("testsuites", name="memharness")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for report in reports:
        suite = ET.SubElement(root, "testsuite", name=f"memharness.{report.model}")
        props = [("model", report.model), ("harness_version", report.harness_version),
                 ("fixtures", str(report.fixtures.get("path", ""))), ("strict", str(strict).lower())]
        if report.baseline:
            props.append(("baseline", report.baseline))
        _properties(suite, props)
        outcomes = [_testcase(suite, report, v, strict=strict) for v in report.verdicts]
        counts = {"tests": len(outcomes), "failures": outcomes.count("failure"), "skipped": outcomes.count("skipped")}
        suite.attrib.update({k: str(n) for k, n in counts.items()}, errors="0", time="0")
        for key in totals:
            totals[key] += counts[key]
    root.attrib.update({k: str(n) for k, n in totals.items()}, errors="0", time="0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
