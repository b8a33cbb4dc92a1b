"""The pytest plugin in real pytest runs (pytester subprocesses): items, outcomes, xdist, --junitxml, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from memharness.claims import load_specs, run_claims
from memharness.trace.store import Fixture

pytest_plugins = ["pytester"]

CLAIM = "linear-in-guidance"


def run(pytester: pytest.Pytester, fixture: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--memharness-model", "analytic", "--memharness-fixtures", str(fixture),
                                         "-p", "no:cacheprovider", *args)


@pytest.fixture(scope="module")
def expected(small_fixture_master) -> dict[str, str]:
    """The verdict of every claim on the small fixture, from the engine itself."""
    return {v.id: v.verdict.value for v in run_claims(Fixture(small_fixture_master), load_specs())}


def outcomes(verdicts: dict[str, str]) -> dict[str, int]:
    """Only a PASS passes: an INCONCLUSIVE claim decided nothing and is skipped, like a SKIP."""
    counts = Counter(verdicts.values())
    return {"passed": counts["PASS"], "failed": counts["FAIL"], "skipped": counts["SKIP"] + counts["INCONCLUSIVE"]}


def test_import_is_light():
    """Start-up imports neither torch nor diffusers; nor does the claim engine the plugin runs."""
    code = textwrap.dedent(f"""
        import sys
        import memharness.pytest_plugin
        assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'start-up'
        from memharness.claims import load_specs, run_claims
        from memharness.cli.runtime import fixture_targets, open_fixture
        from memharness.report.junit import failure_text
        [(model, root)] = fixture_targets(['analytic'], None)
        run_claims(open_fixture(model, root)[1], [s for s in load_specs() if s.id == {CLAIM!r}])
        assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'engine'
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_inert_without_its_options(pytester):
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    result.assert_outcomes()
    assert "memharness" not in result.stdout.str()
    assert result.stdout.lines[0] == "test_inert_without_its_options.py::test_one"


def test_one_item_per_claim(pytester, small_fixture_master):
    result = run(pytester, small_fixture_master, "--collect-only", "-q")
    items = [line for line in result.stdout.lines if line.startswith("memharness::")]
    assert items == [f"memharness::analytic::{spec.id}" for spec in load_specs()]


def test_xdist_and_junitxml(pytester, small_fixture_master, expected):
    report = pytester.path / "claims.xml"
    result = run(pytester, small_fixture_master, "-n", "2", f"--junitxml={report}", "-rA")
    result.assert_outcomes(**outcomes(expected))
    result.stdout.fnmatch_lines(["*2 workers*"])
    for claim, verdict in expected.items():
        if verdict == "PASS":
            result.stdout.fnmatch_lines([f"PASSED *memharness::analytic::{claim}"])
    cases = {case.get("name"): case for case in ET.parse(report).getroot().iter("testcase")}
    assert set(cases) == set(expected)
    case = cases[CLAIM]
    assert case.get("classname") == "memharness.analytic"
    props = {p.get("name"): p.get("value") for p in case.find("properties")}
    assert props["verdict"] == expected[CLAIM]
    assert float(props["ci_low"]) <= float(props["measured"]) <= float(props["ci_high"])
    assert {"p_value", "paper", "n_memorized", "n_normal"} <= set(props)
    for claim, verdict in expected.items():  # pytest's own JUnit XML: only a PASS is a pass
        assert (cases[claim].find("skipped") is not None) == (verdict in ("SKIP", "INCONCLUSIVE")), claim


FORCE = """
import dataclasses, os
import memharness.claims as claims

_real = claims.run_claims
FORCED = dict(pair.split("=") for pair in os.environ["FORCE_VERDICTS"].split(","))


def run_claims(fixture, specs, *, only=()):
    return [dataclasses.replace(v, verdict=claims.Outcome(FORCED[v.id]), reason=f"forced {FORCED[v.id]}")
            if v.id in FORCED else v for v in _real(fixture, specs, only=only)]


claims.run_claims = run_claims
"""


@pytest.fixture
def forced(pytester, monkeypatch) -> str:
    """CLAIM forced to FAIL and another claim to INCONCLUSIVE, by a conftest that wraps the engine."""
    other = next((s.id for s in load_specs() if s.id != CLAIM), None)
    if other is None:
        pytest.skip("one claim only")
    pytester.makeconftest(FORCE)
    monkeypatch.setenv("FORCE_VERDICTS", f"{CLAIM}=FAIL,{other}=INCONCLUSIVE")
    return other


@pytest.mark.parametrize("strict", [False, True])
def test_fail_and_inconclusive(pytester, small_fixture_master, forced, strict):
    args = ["-k", f"{CLAIM} or {forced}", "-W", "default", "-rs"] + (["--memharness-strict"] if strict else [])
    result = run(pytester, small_fixture_master, *args)
    # -k selects claims as usual; INCONCLUSIVE is skipped, never passed
    result.assert_outcomes(passed=0, failed=2 if strict else 1, skipped=0 if strict else 1,
                           deselected=len(load_specs()) - 2)
    out = result.stdout.str()
    assert f"{CLAIM} on analytic: FAIL" in out and "forced FAIL" in out and "paper x̂0(T) ≈ g·x" in out
    assert "Traceback" not in out and "def runtest" not in out  # the verdict, not the plugin's code
    if strict:
        assert f"{forced}.yaml:1: {forced} on analytic: INCONCLUSIVE" in out
    else:
        result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *{forced}.yaml:1: INCONCLUSIVE: forced INCONCLUSIVE"])
    assert f"{CLAIM}.yaml:1: {CLAIM} on analytic: FAIL" in out  # at the claim file, not the plugin's line
    assert "pytest_plugin.py" not in out
    assert result.ret == 1


def test_a_skip_points_at_the_claim_file(pytester, small_fixture_master, monkeypatch):
    pytester.makeconftest(FORCE)
    monkeypatch.setenv("FORCE_VERDICTS", f"{CLAIM}=SKIP")
    result = run(pytester, small_fixture_master, "-k", CLAIM, "-rs")
    result.assert_outcomes(skipped=1, deselected=len(load_specs()) - 1)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *{CLAIM}.yaml:1: forced SKIP"])
    assert "pytest_plugin.py" not in result.stdout.str()


def test_bad_fixture_is_one_collection_error(pytester, tmp_path):
    result = run(pytester, tmp_path / "nowhere")
    assert result.ret == 2
    errors = [line for line in result.stdout.lines if line.startswith("memharness: error: ")]
    assert len(errors) == 1 and "nowhere" in errors[0] and "--memharness-fixtures" in errors[0], result.stdout.str()


def test_zero_memorized_prompts_is_not_green(pytester, small_fixture):
    """As `check` (test_reports): a fixture with no memorized prompt decides nothing, so no claim it cannot
    decide passes: pytest's JUnit XML reports them skipped, and --memharness-strict fails."""
    from tests.helpers import write_scores

    write_scores(small_fixture, lambda prompts: [0.0] * len(prompts))
    verdicts = {v.id: v.verdict.value for v in run_claims(Fixture(small_fixture), load_specs())}
    undecided = {claim for claim, verdict in verdicts.items() if verdict in ("INCONCLUSIVE", "SKIP")}
    assert undecided, verdicts
    report = pytester.path / "claims.xml"
    result = run(pytester, small_fixture, f"--junitxml={report}")
    result.assert_outcomes(**outcomes(verdicts))
    cases = {case.get("name"): case for case in ET.parse(report).getroot().iter("testcase")}
    for claim in undecided:
        assert cases[claim].find("skipped") is not None and cases[claim].find("failure") is None, claim
    strict = run(pytester, small_fixture, "--memharness-strict")
    assert strict.ret == 1
    counts = Counter(verdicts.values())  # strict: an INCONCLUSIVE claim fails; a SKIP stays a skip
    strict.assert_outcomes(passed=counts["PASS"], failed=counts["FAIL"] + counts["INCONCLUSIVE"],
                           skipped=counts["SKIP"])
