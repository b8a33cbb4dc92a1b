"""Every claim against fixtures where its effect is present, absent, weak, not specific, or too rare.

present        the analytic model (memorizes by construction): PASS, except the claims in
               NOT_PASS_ON_ANALYTIC, whose verdicts and reasons are pinned
few            the same with 3 memorized prompts: INCONCLUSIVE
absent         a prompt-blind model (ε_c = ε_u: guidance does nothing, nothing is memorized) with
               random memorization scores, so labels are unrelated to the data: FAIL
random labels  the memorizing model with its scores permuted among prompts: no memorization-specific PASS
not specific   every prompt memorizes, half labelled normal: normal prompts show the effect as strongly
               as memorized ones: no memorization-specific PASS
weak           labels that only partly follow the truth (AUC ≈ 0.6): no memorization-specific PASS
leaky/biased   models lacking the two properties the absent model keeps: FAIL
"""

from __future__ import annotations

import dataclasses

import pytest

from memharness.claims import Outcome, load_specs, run_claims
from memharness.claims.checks import CHECKS
from memharness.models import load_denoiser
from memharness.trace.store import Fixture
from tests.helpers import (
    BiasedPredictor,
    LeakyUnconditional,
    PromptBlind,
    small_card,
    trace_small,
    write_kind_scores,
    write_random_scores,
    write_scores,
)

SPECS = {spec.id: spec for spec in load_specs()}
AWAITING_DATA = {"mitigation", "prompt-categories"}  # SKIP on analytic fixtures
SPECIFIC = sorted(spec.id for spec in SPECS.values() if spec.scope == "memorization-specific")
# The analytic model memorizes, yet these are not PASS there, for reasons the verdict must state.
NOT_PASS_ON_ANALYTIC = {
    # its memorized prompts replicate x without guidance: the score has no room to rise
    "guidance-drives-memorization": (Outcome.INCONCLUSIVE, "saturated"),
    # √ᾱ_t < γ early on SD's schedule: the rule flags every generation, normal ones too
    "realtime-detection": (Outcome.FAIL, "flags 100% of memorized and 100% of normal"),
    # decomposed on their own x_0, normal prompts deviate early as much as memorized ones
    "early-dominance": (Outcome.FAIL, "δ (on x_0) not clearly larger"),
}
# The prompt-blind model still predicts noise well and keeps ε_u free of x: these two need their own models.
HOLD_WITHOUT_MEMORIZATION = {"predictions-follow-noise", "unconditional-blind"}
MEASURED = sorted(set(SPECS) - AWAITING_DATA)
PASS_ON_ANALYTIC = sorted(set(MEASURED) - set(NOT_PASS_ON_ANALYTIC))


def _verdicts(root) -> dict:
    return {v.id: v for v in run_claims(Fixture(root), list(SPECS.values()))}


@pytest.fixture(scope="module")
def present(small_fixture_master):
    return _verdicts(small_fixture_master)


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    out = tmp_path_factory.mktemp("few") / "f"
    return _verdicts(trace_small(load_denoiser(small_card(memorized_prompts=3, normal_prompts=8)), out))


@pytest.fixture(scope="module")
def absent(tmp_path_factory):
    out = tmp_path_factory.mktemp("absent") / "f"
    trace_small(PromptBlind(load_denoiser(small_card(memorized_prompts=0, normal_prompts=48))), out)
    write_random_scores(out, seed=1)
    return _verdicts(out)


@pytest.fixture(scope="module")
def random_labels(small_fixture_master):
    """The memorizing model's scores permuted among prompts, by three seeded permutations."""
    import numpy as np

    from memharness.claims.engine import PermutedScores

    fixture = Fixture(small_fixture_master)
    rng = np.random.default_rng(0)
    return [{v.id: v for v in run_claims(PermutedScores(fixture, rng.permutation(len(fixture.prompts))),
                                         list(SPECS.values()), alternatives=False)} for _ in range(3)]


@pytest.fixture(scope="module")
def not_specific(tmp_path_factory):
    """Every prompt is a memorized point mass; half of them are labelled normal."""
    out = tmp_path_factory.mktemp("not-specific") / "f"
    trace_small(load_denoiser(small_card(memorized_prompts=12, normal_prompts=0)), out)
    write_scores(out, lambda prompts: [1.0 if i % 2 else 0.5 for i in range(len(prompts))])
    return _verdicts(out)


@pytest.fixture(scope="module")
def weak(tmp_path_factory):
    """Labels that follow the truth for 1 prompt in 5 only: the memorized group is mostly normal prompts."""
    out = tmp_path_factory.mktemp("weak") / "f"
    trace_small(load_denoiser(small_card(memorized_prompts=20, normal_prompts=20)), out)

    def draw(prompts):
        kinds = [p.get("kind") == "memorized" for p in prompts]
        # 4 of the 20 memorized prompts and 16 of the 20 normal ones are labelled memorized
        labelled = [k and i % 5 == 0 or (not k and i % 5 != 0) for i, k in enumerate(kinds)]
        return [1.0 if lab else 0.5 for lab in labelled]

    write_scores(out, draw)
    return _verdicts(out)


def test_every_claim_file_has_a_check():
    assert set(SPECS) == set(CHECKS)


def test_every_claim_states_scope_and_floor():
    for spec in SPECS.values():
        assert spec.scope in ("memorization-specific", "general") and spec.floor, spec.id
        if spec.scope == "general":  # true of any denoiser: no memorized-versus-normal contrast decides it
            assert "min_auc" not in CHECKS[spec.id].params, spec.id


@pytest.mark.parametrize("claim_id", PASS_ON_ANALYTIC)
def test_effect_present_passes(present, claim_id):
    verdict = present[claim_id]
    assert verdict.verdict is Outcome.PASS, verdict.reason
    assert verdict.n == {"memorized": 6, "normal": 6}
    assert verdict.measured is not None and verdict.floor


@pytest.mark.parametrize("claim_id", sorted(NOT_PASS_ON_ANALYTIC))
def test_analytic_not_pass_says_why(present, claim_id):
    outcome, needle = NOT_PASS_ON_ANALYTIC[claim_id]
    assert present[claim_id].verdict is outcome and needle in present[claim_id].reason, present[claim_id].reason


@pytest.mark.parametrize("claim_id", SPECIFIC)
def test_random_labels_never_pass(random_labels, claim_id):
    for verdicts in random_labels:
        assert verdicts[claim_id].verdict is not Outcome.PASS, verdicts[claim_id].reason


@pytest.mark.parametrize("claim_id", SPECIFIC)
def test_effect_not_specific_never_passes(not_specific, claim_id):
    assert not_specific[claim_id].verdict is not Outcome.PASS, not_specific[claim_id].reason


@pytest.mark.parametrize("claim_id", SPECIFIC)
def test_weak_effect_never_passes(weak, claim_id):
    assert weak[claim_id].verdict is not Outcome.PASS, weak[claim_id].reason


@pytest.mark.parametrize("claim_id", MEASURED)
def test_too_few_memorized_is_inconclusive(few, claim_id):
    verdict = few[claim_id]
    assert verdict.verdict is Outcome.INCONCLUSIVE, verdict.reason
    assert "3 memorized" in verdict.reason


@pytest.mark.parametrize("claim_id", sorted(set(MEASURED) - HOLD_WITHOUT_MEMORIZATION))
def test_effect_absent_fails(absent, claim_id):
    verdict = absent[claim_id]
    assert verdict.verdict is Outcome.FAIL, verdict.reason


@pytest.mark.parametrize("claim_id", sorted(HOLD_WITHOUT_MEMORIZATION))
def test_properties_of_any_good_denoiser_hold_without_memorization(absent, claim_id):
    assert absent[claim_id].verdict is Outcome.PASS, absent[claim_id].reason


@pytest.mark.parametrize(("model", "claim_id"), [
    (LeakyUnconditional, "unconditional-blind"),
    (BiasedPredictor, "predictions-follow-noise"),
])
def test_model_without_the_property_fails(tmp_path, model, claim_id):
    out = trace_small(model(load_denoiser(small_card())), tmp_path / "f")
    write_kind_scores(out)  # the broken model may not memorize; label by what the mixture says
    verdict = run_claims(Fixture(out), list(SPECS.values()), only=[claim_id])[0]
    assert verdict.verdict is Outcome.FAIL, verdict.reason


@pytest.mark.parametrize("claim_id", sorted(AWAITING_DATA))
def test_claims_awaiting_other_data_skip_with_a_reason(present, claim_id):
    assert present[claim_id].verdict is Outcome.SKIP
    assert present[claim_id].reason


@pytest.mark.parametrize(("counts", "expected"), [
    ({"MV": 2, "TV": 1, "RV": 0, "N": 9}, Outcome.PASS),
    ({"MV": 3, "TV": 1, "RV": 0, "N": 8}, Outcome.FAIL),
])
def test_prompt_categories_compare_with_the_table(small_fixture, counts, expected):
    import json

    manifest_path = small_fixture / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    cats = ["MV", "MV", "TV"] + ["N"] * 9
    for prompt, cat in zip(manifest["prompts"], cats, strict=True):
        prompt["category"] = cat
    manifest_path.write_text(json.dumps(manifest))
    spec = SPECS["prompt-categories"]
    spec = dataclasses.replace(spec, parameters={"paper_counts": {"analytic": counts}})
    verdict = run_claims(Fixture(small_fixture), [spec])[0]
    assert verdict.verdict is expected, verdict.reason
