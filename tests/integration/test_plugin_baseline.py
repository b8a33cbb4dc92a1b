"""The pytest plugin against a baseline (issue 16): --memharness-baseline FILE, as `check --baseline`."""

from __future__ import annotations

import json

import pytest

from memharness.cli import main

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def baseline_text(small_fixture_master, tmp_path_factory) -> str:
    """Module-scoped: written before pytester snapshots sys.modules (numpy's C modules import once)."""
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    assert main(["check", "--fixtures", str(small_fixture_master), "--model", "analytic",
                 "--write-baseline", str(path), "--format", "json", "--output", str(path.with_suffix(".out"))]) \
        in (0, 1)
    return path.read_text()


@pytest.fixture
def baseline(baseline_text, tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(baseline_text)
    return path


def _run(pytester, fixture, baseline, *args):
    return pytester.runpytest_subprocess("--memharness-model", "analytic", "--memharness-fixtures", str(fixture),
                                         "--memharness-baseline", str(baseline), "-p", "no:cacheprovider", "-rfE",
                                         *args)


def test_nothing_regressed_nothing_fails(pytester, small_fixture_master, baseline):
    [report] = json.loads(baseline.read_text())["models"]
    verdicts = [c["verdict"] for c in report["claims"]]
    result = _run(pytester, small_fixture_master, baseline)
    undecided = verdicts.count("SKIP") + verdicts.count("INCONCLUSIVE")  # skipped, not passed
    result.assert_outcomes(passed=len(verdicts) - undecided, skipped=undecided)
    if "FAIL" in verdicts:  # a FAIL the baseline records is a known finding, warned about
        result.stdout.fnmatch_lines(["*KnownFailureWarning: known FAIL*"])


def test_a_claim_worse_than_its_baseline_fails_and_says_why(pytester, small_fixture_master, baseline):
    data = json.loads(baseline.read_text())
    [report] = data["models"]
    target = next((c for c in report["claims"] if c["verdict"] != "PASS"), None)
    if target is None:
        pytest.skip("every claim PASSes on the small fixture")
    target["verdict"] = "PASS"  # the baseline says PASS; now it is not: a regression
    baseline.write_text(json.dumps(data))
    result = _run(pytester, small_fixture_master, baseline)
    result.stdout.fnmatch_lines([f"*regression against {baseline}:*", f"FAILED *memharness::analytic::{target['id']}*"])
    assert result.ret == 1


def test_a_baseline_of_another_model_is_one_error_line_with_the_plugin_options(pytester, small_fixture_master,
                                                                               baseline):
    data = json.loads(baseline.read_text())
    [report] = data["models"]
    report["model"] = "digits"
    baseline.write_text(json.dumps(data))
    result = _run(pytester, small_fixture_master, baseline)
    result.stdout.fnmatch_lines(["*memharness: error: --memharness-baseline*not 'analytic'*"])
    assert result.ret != 0


def test_node_ids_rerun_as_printed(pytester, small_fixture_master):
    """Issue 16: a node id from a FAILED line, passed back to pytest, runs that claim (and only it)."""
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    common = ["--memharness-fixtures", str(small_fixture_master), "-p", "no:cacheprovider", "-v"]
    result = pytester.runpytest_subprocess(*common, "memharness::analytic::linear-in-guidance")
    result.stdout.fnmatch_lines(["*1 selected*", "*memharness::analytic::linear-in-guidance PASSED*"])
    assert "test_own" not in result.stdout.str()
    printed = next(line.split()[0] for line in result.stdout.lines if "::linear-in-guidance PASSED" in line)
    again = pytester.runpytest_subprocess(*common, printed, "memharness::analytic::overestimation")
    again.stdout.fnmatch_lines(["*2 selected*"])
    beside = pytester.runpytest_subprocess(*common, "test_own.py", "memharness::analytic::overestimation")
    beside.stdout.fnmatch_lines(["*test_own.py::test_own PASSED*", "*memharness::analytic::overestimation*"])


def _drifted(baseline) -> str:
    """Move one claim's baseline value so that today's value lies beyond its tolerance, away from the paper."""
    from memharness.claims import load_specs

    data = json.loads(baseline.read_text())
    [report] = data["models"]
    tolerance = {spec.id: spec.regression_tolerance for spec in load_specs()}
    for claim in report["claims"]:
        tol, now, paper = tolerance.get(claim["id"]), claim.get("measured"), claim.get("paper_number")
        if tol is None or now is None or (paper is not None and abs(paper - now) <= tol):
            continue
        step = 2 * tol if paper is None or paper > now else -2 * tol
        claim["measured"] = now + step  # the baseline was nearer the paper: today's value drifted away
        baseline.write_text(json.dumps(data))
        return claim["id"]
    pytest.skip("no claim with a tolerance to drift on the small fixture")


def test_drift_fails_only_with_fail_on_drift(pytester, small_fixture_master, baseline):
    """--memharness-fail-on-drift mirrors `check --fail-on-drift`: drift is told, and fails only with it."""
    claim = _drifted(baseline)
    node = f"memharness::analytic::{claim}"
    told = _run(pytester, small_fixture_master, baseline, node)
    assert told.ret == 0 and "FAILED" not in told.stdout.str()
    failed = _run(pytester, small_fixture_master, baseline, node, "--memharness-fail-on-drift")
    failed.stdout.fnmatch_lines([f"*drift against {baseline}: measured*", f"FAILED *memharness::analytic::{claim}*"])
    assert failed.ret == 1
