"""The harness checking itself on the shipped fixtures: permuted scores must not PASS memorization claims."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from memharness.claims import load_specs
from memharness.cli import main
from memharness.shipped import shipped_fixtures

SHIPPED = shipped_fixtures()
SPECIFIC = sorted(s.id for s in load_specs() if s.scope == "memorization-specific")
NOT_APPLICABLE = {"guidance-drives-memorization", "prompt-categories"}  # they read only scores (or none)


def _claims(capsys) -> dict[str, dict]:
    return {c["id"]: c for c in json.loads(capsys.readouterr().out)["models"][0]["claims"]}


@pytest.mark.parametrize("model", ["analytic", "digits"])
def test_null_of_twenty_permutations(model, capsys):
    """Done-when of the verdict rule: no memorization-specific claim PASSes more than once in 20."""
    main(["check", "--model", model, "--null", "20", "--format", "json"])
    claims = _claims(capsys)
    for claim_id in SPECIFIC:
        rate, note = claims[claim_id]["null_pass_rate"], claims[claim_id]["null_note"]
        if claim_id in NOT_APPLICABLE:
            assert rate is None and note, claim_id
        else:
            assert rate is not None and rate <= 1 / 20, (claim_id, rate)
    # The general claims hold whatever the labels say: their null rate is high, and says so.
    assert claims["predictions-follow-noise"]["null_pass_rate"] == 1.0


@pytest.mark.parametrize("model", ["analytic", "digits"])
def test_scores_permuted_by_hand_pass_no_memorization_claim(model, tmp_path, capsys):
    """Edit manifest.json as a user would: move each prompt's scores to another prompt (one permutation
    for every sampler and g). The five claims the issue names must not PASS."""
    folder = tmp_path / model
    shutil.copytree(SHIPPED / model, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    ids = [p["id"] for p in manifest["prompts"]]
    for seed in range(3):
        moved = dict(zip(ids, np.random.default_rng(seed).permutation(ids), strict=True))
        edited = json.loads(json.dumps(manifest))
        for by_scale in edited["scores"]["values"].values():
            for key, by_prompt in by_scale.items():
                by_scale[key] = {pid: by_prompt[moved[pid]] for pid in ids}
        (folder / "manifest.json").write_text(json.dumps(edited))
        main(["check", "--fixtures", str(folder), "--format", "json"])
        claims = _claims(capsys)
        for claim_id in ("overestimation", "early-dominance", "guidance-drives-memorization", "mitigation",
                         "realtime-detection"):
            assert claims[claim_id]["verdict"] != "PASS", (seed, claim_id, claims[claim_id]["reason"])


def test_null_is_seeded(capsys):
    runs = []
    for _ in range(2):
        main(["check", "--null", "3", "--null-seed", "7", "--format", "json"])
        runs.append({k: v["null_pass_rate"] for k, v in _claims(capsys).items()})
    assert runs[0] == runs[1]


def test_json_carries_floor_agreement_and_robustness(capsys):
    main(["check", "--format", "json"])
    claims = _claims(capsys)
    for claim in claims.values():
        assert {"scope", "floor", "agreement", "robustness", "robust", "paper_number", "null_pass_rate"} <= set(claim)
    assert claims["linear-in-guidance"]["agreement"] == "matches"
    assert claims["deviation-predicts-severity"]["robustness"] == {"reference=x_0": "FAIL"}
    assert claims["deviation-predicts-severity"]["robust"] == "depends on reference"
