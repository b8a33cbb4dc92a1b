"""linear-in-guidance: PASS where k ≈ g, FAIL where the effect is absent, INCONCLUSIVE with too few prompts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from memharness.claims import Outcome, load_specs
from memharness.claims.checks import check_linear_in_guidance, decide_linear_in_guidance
from memharness.models import load_denoiser
from memharness.scoring.latent import write_latent_scores
from memharness.trace.store import Fixture
from memharness.trace.tracer import TraceSettings, trace
from tests.helpers import small_card

G = np.array([1.0, 2.0, 7.5])
OPTS = {"tolerance": 0.1, "min_group": 5, "alpha": 0.05}


def _k(slope: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return slope * G[None, :] + rng.normal(0, 0.01, size=(n, G.size))


def test_present_passes():
    k = np.concatenate([_k(1.0, 12, 0), _k(0.7, 12, 1)])
    memorized = np.arange(24) < 12
    outcome, info = decide_linear_in_guidance(G, k, memorized, **OPTS)
    assert outcome is Outcome.PASS
    assert info["measured"] == pytest.approx(1.0, abs=0.01)
    assert info["p_value"] < 0.001


@pytest.mark.parametrize("slope", [0.0, 0.7, 1.5])
def test_absent_or_wrong_size_fails(slope):
    k = _k(slope, 12, 2)
    outcome, info = decide_linear_in_guidance(G, k, np.ones(12, bool), **OPTS)
    assert outcome is Outcome.FAIL, info["reason"]


def test_too_few_memorized_is_inconclusive():
    k = np.concatenate([_k(1.0, 3, 3), _k(0.7, 12, 4)])
    outcome, info = decide_linear_in_guidance(G, k, np.arange(15) < 3, **OPTS)
    assert outcome is Outcome.INCONCLUSIVE
    assert "3 memorized" in info["reason"]


def test_ci_straddling_the_band_is_inconclusive():
    rng = np.random.default_rng(5)
    slopes = 0.9 + rng.normal(0, 0.05, size=8)
    outcome, _ = decide_linear_in_guidance(G, slopes[:, None] * G[None, :], np.ones(8, bool), **OPTS)
    assert outcome is Outcome.INCONCLUSIVE


@pytest.fixture(scope="module")
def spec():
    return next(s for s in load_specs() if s.id == "linear-in-guidance")


def test_shipped_claim_file_passes_on_small_analytic_fixture(small_fixture_master, spec):
    verdict = check_linear_in_guidance(Fixture(small_fixture_master), spec)
    assert verdict.verdict is Outcome.PASS, verdict.reason
    assert verdict.n == {"memorized": 6, "normal": 6}


def test_model_without_memorization_fails(tmp_path, spec):
    """No point masses at all; its normal prompts forced into the memorized group must FAIL Eq 13."""
    out = tmp_path / "nomem"
    denoiser = load_denoiser(small_card(memorized_prompts=0, normal_prompts=8))
    trace(denoiser, out, TraceSettings(num_inference_steps=10, guidance=(1.0, 2.0, 7.5), seeds=(0, 1, 2)))
    write_latent_scores(out)
    forced = dataclasses.replace(spec, parameters={**spec.parameters, "threshold": -1.0})
    verdict = check_linear_in_guidance(Fixture(out), forced)
    assert verdict.verdict is Outcome.FAIL, verdict.reason
    assert verdict.measured < 0.9
    # With the paper's threshold nothing is memorized: too few to judge.
    assert check_linear_in_guidance(Fixture(out), spec).verdict is Outcome.INCONCLUSIVE


def test_single_guidance_scale_skips(tmp_path, spec):
    out = tmp_path / "one-g"
    trace(load_denoiser(small_card()), out, TraceSettings(num_inference_steps=5, guidance=(7.5,), seeds=(0, 1)))
    write_latent_scores(out)
    verdict = check_linear_in_guidance(Fixture(out), spec)
    assert verdict.verdict is Outcome.SKIP
    assert "guidance scales" in verdict.reason
