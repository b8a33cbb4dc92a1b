"""The digits organism: training is seeded and loadable, the shipped weights trace, the shipped
fixtures give a verdict for every claim, and the negative control does not PASS the claims
that need memorization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from memharness.claims import load_specs
from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.models import load_card, load_denoiser
from memharness.models.digits import LATENT_SHAPE, read_weights, shipped_weights
from memharness.scoring.labels import memorization_labels
from memharness.shipped import shipped_fixture
from memharness.trace.store import Fixture
from tests.helpers import arrays_added_since

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
DIGITS = shipped_fixture("digits")
CONTROL = shipped_fixture("digits-control")

# Claims that PASS on the digits organism because of its duplication: on the control (no
# duplication) none of them may PASS. Not listed, because they also PASS on the control, as the
# paper's mechanism says they should: predictions-follow-noise and unconditional-blind (any
# model), guidance-drives-memorization, overestimation and update-alignment (guidance pulls a
# prompt with one unique training image towards it: the control's "memorized" prompts score
# 0.60-0.85 at g = 7.5 against 0.15-0.35 at g = 1, and 7 of 10 cross 0.75), and
# deviation-predicts-severity (a correlation with the score over all prompts). realtime-detection,
# mitigation and prompt-categories need runs or categories of their own.
MEMORIZATION_SPECIFIC = (
    "overfit-without-guidance",
    "loss-reversal-with-guidance",
    "direction-preserved",
    "linear-in-guidance",
    "conditional-injects-x",
    "diversity-collapse",
    "decomposition-g1",
    "early-dominance",
    "sampler-agnostic",
    "magnitude-explained",
)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return read_weights(path)[0]


# --------------------------------------------------------------------------- training
def test_short_training_is_seeded_and_loads(tmp_path):
    from memharness.zoo.train import train_digits

    kwargs = {"steps": 30, "duplicated": True, "batch_size": 8}
    a = train_digits(seed=5, out=tmp_path / "a", **kwargs)
    b = train_digits(seed=5, out=tmp_path / "b", **kwargs)
    c = train_digits(seed=6, out=tmp_path / "c", **kwargs)
    assert a.name == "digits.safetensors" and a.read_bytes() == b.read_bytes()  # same seed: same file
    ta, tc = _tensors(a), _tensors(c)
    assert ta.keys() == tc.keys()
    assert any(not torch.equal(ta[k], tc[k]) for k in ta if k.startswith("unet."))
    assert torch.equal(ta["paired"], tc["paired"])  # the design does not depend on the training seed

    denoiser = load_denoiser(load_card("digits"), model_path=str(tmp_path / "a"))  # a folder or the file
    prompts = denoiser.prompts()
    assert [p.kind for p in prompts].count("memorized") == 10 and len(prompts) == 20
    x = denoiser.paired_latent(prompts[0])
    assert x.shape == LATENT_SHAPE and x.dtype == torch.float32
    e_c, e_u = denoiser.encode(prompts[0])
    out_u, out_c = denoiser.model_output(torch.randn(3, *LATENT_SHAPE), 981, (e_c, e_u), need_uncond=True)
    assert out_u.shape == out_c.shape == (3, *LATENT_SHAPE)
    none, only_c = denoiser.model_output(torch.randn(3, *LATENT_SHAPE), 981, (e_c, e_u), need_uncond=False)
    assert none is None and only_c.shape == (3, *LATENT_SHAPE)


def test_control_training_writes_the_control_file_and_needs_its_card(tmp_path):
    from memharness.zoo.train import train_digits

    path = train_digits(seed=0, steps=2, duplicated=False, out=tmp_path, batch_size=4)
    assert path.name == "digits-control.safetensors"
    meta = read_weights(path)[1]
    assert meta["duplicated"] is False and meta["copies"] == 1
    assert load_denoiser(load_card("digits-control"), model_path=str(path)).card.id == "digits-control"
    with pytest.raises(MemharnessError, match="without duplication"):
        load_denoiser(load_card("digits"), model_path=str(path))


def test_cli_trains(tmp_path, capsys):
    assert main(["zoo", "train", "digits", "--steps", "2", "--seed", "1", "--out", str(tmp_path)]) == 0
    assert "digits.safetensors" in capsys.readouterr().err
    assert read_weights(tmp_path / "digits.safetensors")[1]["seed"] == 1


def test_training_data_is_centred_with_duplicates():
    from memharness.zoo.train import COPIES, digits_design

    data = digits_design(duplicated=True)
    assert abs(float(data.images.mean())) < 1e-5 and abs(float(data.images.std()) - 1) < 1e-4
    np.testing.assert_allclose(data.images.mean(axis=0), 0, atol=1e-5)  # zero mean per pixel
    rows, counts = np.unique(data.labels, return_counts=True)
    assert counts[:10].tolist() == [COPIES] * 10  # rows 1-10: the memorized prompts
    assert counts[10:].min() > 150  # class prompts: every other image of the class
    control = digits_design(duplicated=False)
    assert len(control.images) == 1797 and np.bincount(control.labels)[1:11].tolist() == [1] * 10


# --------------------------------------------------------------------------- shipped weights
def test_shipped_weights_are_small_and_make_the_shipped_fixture(tmp_path):
    """Retrace one memorized prompt at the fixture's DDPM settings: the arrays equal the shipped ones."""
    from safetensors.numpy import load_file

    from memharness.trace.tracer import TraceSettings, trace

    path = shipped_weights("digits.safetensors")
    assert path.is_file() and path.stat().st_size < 10_000_000
    assert (path.parent / "digits.md").is_file()
    shipped = Fixture(DIGITS)
    settings = shipped.runs["ddpm"]["settings"]
    denoiser = load_denoiser(load_card("digits"), sampler="ddpm")
    prompt = denoiser.prompts()[0]
    out = tmp_path / "one"
    trace(denoiser, out, TraceSettings(sampler="ddpm", num_inference_steps=settings["num_inference_steps"],
                                       guidance=tuple(settings["guidance"]), seeds=tuple(settings["seeds"])),
          prompts=[prompt])
    fixture = Fixture(out)
    fixture.verify()
    assert fixture.model == shipped.model  # the same card, and the same weights (their sha256)
    want = load_file(DIGITS / "ddpm" / f"{prompt.id}.safetensors")
    got = load_file(out / "ddpm" / f"{prompt.id}.safetensors")
    assert got.keys() == want.keys() | arrays_added_since(want)  # guidance_norm: the shipped files predate it
    for key in want:
        # float32 on another CPU or thread count may round differently; the trajectories stay put.
        np.testing.assert_allclose(got[key], want[key], rtol=2e-3, atol=2e-3, err_msg=key)


def test_control_weights_are_not_shipped_and_say_how_to_make_them():
    if shipped_weights("digits-control.safetensors").is_file():
        pytest.skip("control weights are present")
    with pytest.raises(MemharnessError, match="--no-duplication"):
        load_denoiser(load_card("digits-control"))


def test_zoo_runs_in_float32_only():
    with pytest.raises(MemharnessError, match="float32"):
        load_denoiser(load_card("digits"), dtype="float16")


# --------------------------------------------------------------------------- shipped fixtures
def _check_json(capsys, *argv: str) -> dict:
    main(["check", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    [report] = json.loads(out)["models"]
    return report


# The verdicts of the shipped digits fixture under the verdict rule; docs/models.md ("The digits organism")
# says why each that is not PASS is not.
DIGITS_VERDICTS = {
    "overfit-without-guidance": "PASS", "loss-reversal-with-guidance": "PASS",
    "guidance-drives-memorization": "INCONCLUSIVE",  # memorized without guidance: the score is saturated
    "direction-preserved": "PASS", "overestimation": "PASS", "linear-in-guidance": "PASS",
    "predictions-follow-noise": "PASS", "unconditional-blind": "PASS", "conditional-injects-x": "PASS",
    "diversity-collapse": "PASS", "update-alignment": "PASS", "decomposition-g1": "PASS", "early-dominance": "PASS",
    "deviation-predicts-severity": "INCONCLUSIVE",  # r(score, Σw0) = 0.96, CI reaching below the floor 0.9
    "sampler-agnostic": "INCONCLUSIVE",  # the same under DDPM
    "realtime-detection": "FAIL",  # the rule flags every generation, normal ones too
    "mitigation": "PASS", "magnitude-explained": "PASS", "prompt-categories": "SKIP",
}


def test_check_digits_verdicts(capsys):
    rc = main(["check", "--model", "digits"])
    out, err = capsys.readouterr()
    assert rc == 1, err  # realtime-detection FAILs
    assert f"{len(load_specs())} claims: " in out and "memharness · digits" in out
    report = _check_json(capsys, "--model", "digits")
    verdicts = {c["id"]: c["verdict"] for c in report["claims"]}
    assert verdicts == DIGITS_VERDICTS
    reasons = {c["id"]: c["reason"] for c in report["claims"]}
    assert "saturated" in reasons["guidance-drives-memorization"]
    assert "flags 100% of memorized and 100% of normal" in reasons["realtime-detection"]
    labels = memorization_labels(Fixture(DIGITS))
    assert labels.n["memorized"] >= 5 and labels.n["normal"] >= 5


def test_shipped_split_matches_the_design():
    fixture = Fixture(DIGITS)
    fixture.verify()
    labels = memorization_labels(fixture)  # latent score ≥ 0.75 at DDIM g = 7.5
    designed = np.array([p["kind"] == "memorized" for p in fixture.prompts])
    np.testing.assert_array_equal(labels.memorized, designed)


def test_negative_control_does_not_pass_memorization_claims(capsys):
    fixture = Fixture(CONTROL)
    fixture.verify()
    assert fixture.model["id"] == "digits-control" and fixture.model["params"]["duplicated"] is False
    report = _check_json(capsys, "--fixtures", str(CONTROL))
    verdicts = {c["id"]: c["verdict"] for c in report["claims"]}
    assert set(MEMORIZATION_SPECIFIC) <= set(verdicts)
    passed = [claim for claim in MEMORIZATION_SPECIFIC if verdicts[claim] == "PASS"]
    assert not passed, passed
    # and, but for sampler-agnostic (INCONCLUSIVE), they PASS on the duplicated model
    assert [c for c in MEMORIZATION_SPECIFIC if DIGITS_VERDICTS[c] != "PASS"] == ["sampler-agnostic"]


def test_fixtures_are_small():
    for root in (DIGITS, CONTROL):
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        assert size < 8_000_000, (root, size)
        runs = Fixture(root).runs
        assert runs["ddim"]["settings"]["guidance"] == [1.0, 2.0, 4.0, 7.5]
        assert len(runs["ddim"]["settings"]["seeds"]) >= 16
        assert runs["ddpm"]["settings"]["guidance"] == [1.0, 7.5] and len(runs["ddpm"]["settings"]["seeds"]) == 10
