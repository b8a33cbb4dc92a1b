"""Regression against a baseline, as pure functions: hand-built verdicts against hand-built baseline reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memharness.claims.regression import (
    CHANGED,
    DRIFT,
    MISSING,
    NEW,
    REGRESSION,
    TOWARD_PAPER,
    baseline_for,
    compare,
    load_baseline,
    parse_baseline,
)
from memharness.claims.verdict import Agreement, Outcome, Verdict
from memharness.errors import MemharnessError
from memharness.report.model_report import ModelReport

P, F, I, S = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE, Outcome.SKIP


def verdict(claim: str, outcome: Outcome, measured: float | None = None, *, paper: float | None = None,
            agreement: Agreement | None = None) -> Verdict:
    return Verdict(id=claim, title=claim, reference="§0", verdict=outcome, paper="≈ 1", reason="because",
                   measured=measured, paper_number=paper, agreement=agreement)


def baseline(*claims: tuple, model: str = "toy") -> dict:
    """(id, verdict, measured[, agreement]) per claim."""
    return {"model": model, "claims": [{"id": c[0], "verdict": c[1], "measured": c[2],
                                        **({"agreement": c[3]} if len(c) > 3 else {})} for c in claims]}


def exit_code(changes, *, fail_on_drift: bool = False) -> int:
    """What `check --baseline` exits with for these changes (the verdicts themselves all PASS)."""
    report = ModelReport(model="toy", verdicts=(), fixtures={}, changes=tuple(changes), fail_on_drift=fail_on_drift)
    return int(report.failed())


def kinds(changes) -> dict[str, str]:
    return {c.claim: c.kind for c in changes}


# --------------------------------------------------------------------------- compare
@pytest.mark.parametrize("now", [F, I, S])
def test_a_drop_from_pass_is_a_regression(now):
    [change] = compare(baseline(("a", "PASS", None)), [verdict("a", now)], {"a": None})
    assert change.kind == REGRESSION and change.is_regression
    assert (change.baseline, change.now) == ("PASS", now.value)
    assert f"PASS → {now.value}" in change.reason
    assert ("no longer has what the claim needs" in change.reason) == (now is S)


def test_unchanged_claims_report_nothing():
    base = baseline(("a", "PASS", 1.0), ("b", "FAIL", 0.2), ("c", "SKIP", None), ("d", "INCONCLUSIVE", 0.5))
    now = [verdict("a", P, 1.0), verdict("b", F, 0.2), verdict("c", S), verdict("d", I, 0.5)]
    assert compare(base, now, {"a": 0.1, "b": 0.1, "c": 0.1, "d": 0.1}) == []


@pytest.mark.parametrize(
    ("before", "now", "tolerance", "kind"),
    [
        (1.0, 1.04, 0.05, None),  # within
        (1.0, 1.06, 0.05, DRIFT),  # above
        (1.0, 0.94, 0.05, DRIFT),  # below: the distance counts, the paper gives no value to move toward
        (1.0, 9.0, None, None),  # no tolerance: verdicts only
        (1.0, float("nan"), 0.05, DRIFT),  # a value that stopped being a number
    ],
)
def test_measured_beyond_the_tolerance_is_drift(before, now, tolerance, kind):
    changes = compare(baseline(("a", "PASS", before)), [verdict("a", P, now)], {"a": tolerance})
    assert kinds(changes) == ({"a": kind} if kind else {})
    if kind:
        assert "measured 1" in changes[0].reason and not changes[0].is_regression and changes[0].is_drift
        assert exit_code(changes) == 0 and exit_code(changes, fail_on_drift=True) == 1


@pytest.mark.parametrize(
    ("before", "now", "kind"),
    [
        (0.70, 0.90, TOWARD_PAPER),  # up to the paper's 1.0
        (1.30, 1.08, TOWARD_PAPER),  # down to it, from above
        (0.90, 1.05, TOWARD_PAPER),  # past it, but closer than before
        (0.90, 1.20, DRIFT),  # past it and further off than before
        (0.90, 0.70, DRIFT),  # away from it
    ],
)
def test_drift_toward_the_paper_never_fails(before, now, kind):
    changes = compare(baseline(("a", "PASS", before)), [verdict("a", P, now, paper=1.0)], {"a": 0.05})
    [change] = changes
    assert change.kind == kind and not change.is_regression
    assert ("toward the paper's 1" in change.reason) == (kind == TOWARD_PAPER)
    assert exit_code(changes) == 0
    assert exit_code(changes, fail_on_drift=True) == int(kind == DRIFT)


def test_both_reasons_are_told():
    [change] = compare(baseline(("a", "PASS", 1.0)), [verdict("a", F, 0.2)], {"a": 0.05})
    assert change.kind == REGRESSION
    assert "PASS → FAIL" in change.reason and "tolerance 0.05" in change.reason


@pytest.mark.parametrize(("before", "now", "regressed"), [
    ("PASS", I, True), ("PASS", F, True), ("INCONCLUSIVE", F, True), ("PASS", S, True),
    ("INCONCLUSIVE", P, False), ("FAIL", I, False), ("FAIL", P, False), ("SKIP", F, False), ("INCONCLUSIVE", S, False),
])
def test_a_verdict_getting_worse_fails(before, now, regressed):
    changes = compare(baseline(("a", before, 0.5)), [verdict("a", now, 0.5)], {"a": 0.05})
    assert kinds(changes) == {"a": REGRESSION if regressed else CHANGED}
    assert exit_code(changes) == int(regressed)


@pytest.mark.parametrize(("before", "now", "regressed"), [
    ("matches", Agreement.WEAKER, True), ("matches", Agreement.STRONGER, True),
    ("weaker", Agreement.MATCHES, False), ("stronger", Agreement.MATCHES, False),
    ("weaker", Agreement.STRONGER, False), ("matches", Agreement.MATCHES, False),
])
def test_paper_agreement_getting_worse_fails(before, now, regressed):
    """Same verdict, same value within the tolerance: only the agreement with the paper moved."""
    changes = compare(baseline(("a", "PASS", 1.0, before)), [verdict("a", P, 1.01, paper=1.0, agreement=now)],
                      {"a": 0.05})
    assert kinds(changes) == ({"a": REGRESSION} if regressed else {})
    if regressed:
        assert f"paper agreement dropped {before} → {now.value}" in changes[0].reason
    assert exit_code(changes) == int(regressed)


def test_an_old_baseline_without_agreement_compares_verdicts_only():
    changes = compare(baseline(("a", "PASS", 1.0)), [verdict("a", P, 1.0, paper=1.0, agreement=Agreement.WEAKER)],
                      {"a": 0.05})
    assert changes == []


def test_a_missing_measurement_is_not_compared():
    # baseline SKIP without a value → PASS with one: an improvement, not a regression
    [change] = compare(baseline(("a", "SKIP", None)), [verdict("a", P, 1.0)], {"a": 0.05})
    assert change.kind == CHANGED


def test_other_verdict_changes_are_notes():
    base = baseline(("a", "FAIL", None), ("b", "INCONCLUSIVE", None), ("c", "INCONCLUSIVE", None))
    changes = compare(base, [verdict("a", P), verdict("c", P)], {}, only=("a", "c"))
    assert kinds(changes) == {"a": CHANGED, "c": CHANGED}
    assert not any(c.is_regression for c in changes)


def test_inconclusive_to_fail_is_a_regression():
    changes = compare(baseline(("b", "INCONCLUSIVE", None)), [verdict("b", F)], {})
    assert kinds(changes) == {"b": REGRESSION} and "INCONCLUSIVE → FAIL" in changes[0].reason


def test_new_and_missing_claims_are_reported_not_regressions():
    changes = compare(baseline(("old", "PASS", 1.0), ("kept", "PASS", 1.0)),
                      [verdict("kept", P, 1.0), verdict("fresh", F, 0.0)], {"kept": 0.1, "fresh": 0.1})
    assert kinds(changes) == {"fresh": NEW, "old": MISSING}
    assert [c.claim for c in changes] == ["fresh", "old"]  # the run's order, then the baseline's leftovers
    assert not any(c.is_regression for c in changes)


def test_only_restricts_the_baseline():
    """`check --claim a` must not report every other baseline claim as missing."""
    base = baseline(("a", "PASS", 1.0), ("b", "PASS", 1.0))
    assert compare(base, [verdict("a", P, 1.0)], {"a": 0.1}, only=("a",)) == []


def test_change_to_dict_is_json():
    [change] = compare(baseline(("a", "PASS", 1.0)), [verdict("a", F, 0.0)], {"a": 0.1})
    data = json.loads(json.dumps(change.to_dict()))
    assert data["claim"] == "a" and data["kind"] == REGRESSION and data["baseline"] == "PASS" and data["now"] == "FAIL"


# --------------------------------------------------------------------------- loading
def test_parse_the_envelope_or_the_older_object_or_list():
    path = Path("b.json")
    envelope = {"memharness_version": "0", "schema_version": 2, "models": [baseline(model="a"), baseline(model="b")]}
    assert set(parse_baseline(envelope, path)) == {"a", "b"}
    assert set(parse_baseline(baseline(), path)) == {"toy"}  # schema 1, one model
    assert set(parse_baseline([baseline(model="a"), baseline(model="b")], path)) == {"a", "b"}  # schema 1, several


def test_an_old_baseline_with_an_absolute_fixture_path_still_loads(tmp_path):
    old = {**baseline(("a", "PASS", 1.0)), "fixtures": {"path": "/home/someone/memharness/fixtures/toy"}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert compare(load_baseline(tmp_path / "old.json")["toy"], [verdict("a", P, 1.0)], {"a": 0.05}) == []


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([], "empty list"),
        ("text", "not a JSON object"),
        ({"claims": []}, "'model'"),
        ({"model": "toy"}, "'claims'"),
        ({"model": "toy", "claims": [{"verdict": "PASS"}]}, "claims[0]"),
        ({"model": "toy", "claims": [{"id": "a", "verdict": "GOOD"}]}, "'GOOD'"),
        ({"model": "toy", "claims": [{"id": "a", "verdict": "PASS", "measured": "1.0"}]}, "not a finite number"),
        ([baseline(), baseline()], "twice"),
        ([baseline(), 3], "item 1"),
        ({"schema_version": 2, "models": {"toy": {}}}, "'models' is not a list"),
        ({"schema_version": 2, "models": []}, "empty list"),
    ],
)
def test_parse_rejects_a_wrong_structure(data, needle):
    with pytest.raises(MemharnessError) as info:
        parse_baseline(data, Path("b.json"))
    message = str(info.value)
    assert message.startswith("baseline b.json: ") and needle in message and "\n" not in message
    assert (info.value.field, info.value.value) == ("baseline", Path("b.json"))  # the CLI says --baseline b.json


def test_load_missing_and_broken_files(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(MemharnessError, match="file not found.*--write-baseline"):
        load_baseline(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"model": "toy",\n "claims": [')
    with pytest.raises(MemharnessError, match=r"broken.json: not valid JSON \(line 2\)"):
        load_baseline(broken)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(baseline()))
    assert load_baseline(good)["toy"]["model"] == "toy"


def test_baseline_of_another_model():
    baselines = parse_baseline(baseline(model="sd14"), Path("b.json"))
    assert baseline_for(baselines, "sd14", Path("b.json"))["model"] == "sd14"
    with pytest.raises(MemharnessError, match="holds model 'sd14', not 'analytic'.*--model analytic"):
        baseline_for(baselines, "analytic", Path("b.json"))
