"""The digits-graded organism: its design, card and training; the duplication count in the manifest;
the dose-response figure and numbers; and, on the shipped fixture, the dose response itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.models import load_card, load_denoiser
from memharness.models.digits import read_weights, shipped_weights
from memharness.shipped import shipped_fixture
from memharness.trace.store import Fixture
from tests.helpers import arrays_added_since

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
GRADED = shipped_fixture("digits-graded")


def test_graded_design_pairs_each_prompt_with_its_image_n_times_and_others_once():
    from memharness.zoo.train import GRADED_COUNTS, OTHERS, PROMPTS_PER_COUNT, graded_design

    data = graded_design()
    graded = [p for p in data.prompts if p["kind"] == "memorized"]
    assert [p["duplicates"] for p in graded] == [n for n in GRADED_COUNTS for _ in range(PROMPTS_PER_COUNT)]
    assert abs(float(data.images.mean())) < 1e-5 and abs(float(data.images.std()) - 1) < 1e-4
    counts = np.bincount(data.labels)
    for row, p in enumerate(graded, start=1):
        assert counts[row] == p["duplicates"] + OTHERS
        assert p["image"] not in p["others"] and len(set(p["others"])) == OTHERS
        x = data.paired[row - 1]
        same = np.all(np.isclose(data.images[data.labels == row], x[None], atol=1e-6), axis=(1, 2, 3))
        assert same.sum() == p["duplicates"]  # the image n times, the others once each
    images = {p["image"] for p in graded}
    assert len(images) == len(graded)
    for p in data.prompts:
        if p["kind"] == "normal":
            assert p["image"] not in images and p["class_images"] > 100


def test_short_graded_training_loads_with_its_card_only(tmp_path):
    from memharness.zoo.train import train_digits

    path = train_digits(seed=3, steps=2, organism="digits-graded", out=tmp_path, batch_size=4)
    assert path.name == "digits-graded.safetensors"
    meta = read_weights(path)[1]
    assert meta["organism"] == "digits-graded" and meta["design"]["counts"] == [1, 2, 4, 8, 16, 32, 64, 128]
    denoiser = load_denoiser(load_card("digits-graded"), model_path=str(path))
    prompts = denoiser.prompts()
    assert len(prompts) == 26
    assert [p.duplicates for p in prompts[:4]] == [1, 1, 2, 2] and prompts[-1].duplicates is None
    assert prompts[0].to_manifest()["duplicates"] == 1 and "duplicates" not in prompts[-1].to_manifest()
    with pytest.raises(MemharnessError, match="digits-graded organism"):
        load_denoiser(load_card("digits"), model_path=str(path))
    with pytest.raises(MemharnessError, match="only the digits organism"):
        train_digits(steps=1, organism="digits-graded", duplicated=False, out=tmp_path)


def test_cli_trains_the_graded_organism(tmp_path, capsys):
    assert main(["zoo", "train", "digits-graded", "--steps", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "digits-graded.safetensors" in err and "--model digits-graded" in err
    assert main(["zoo", "train", "digits-graded", "--no-duplication", "--steps", "1", "--out", str(tmp_path)]) == 2


def test_dose_figure_and_numbers_on_a_tiny_traced_fixture(tmp_path):
    """Trace a barely trained graded model (2 seeds, 3 steps): the manifest carries `duplicates`, the
    dose-response figure draws, and the numbers script reads it; a fixture without counts gets none."""
    from memharness.claims import load_specs
    from memharness.report.figures import FIGURES, render_figure
    from memharness.report.series import Source, Unavailable, dose_response
    from memharness.zoo.dose import dose_numbers, format_numbers
    from memharness.zoo.train import train_digits

    weights = train_digits(seed=0, steps=2, organism="digits-graded", out=tmp_path, batch_size=4)
    out = tmp_path / "fixture"
    assert main(["trace", "--model", "digits-graded", "--model-path", str(weights), "--out", str(out),
                 "--steps", "3", "--seeds", "2", "--guidance", "1", "7.5"]) == 0  # traced and scored
    fixture = Fixture(out)
    assert [p.get("duplicates") for p in fixture.prompts][:3] == [1, 1, 2]
    specs = {s.id: s for s in load_specs()}
    d = dose_response(Source("digits-graded", fixture, specs))
    assert np.isnan(d["counts"][-1]) and d["counts"][0] == 1 and set(d["scores"]) == {1.0, 7.5}
    dose = next(f for f in FIGURES if f.key == "dose")
    rendered = render_figure(dose, [Source("digits-graded", fixture, specs)])
    assert rendered.png is not None and rendered.png.startswith(b"\x89PNG") and not rendered.missing

    numbers = dose_numbers(out)
    assert numbers["counts"] == [1, 2, 4, 8, 16, 32, 64, 128] and set(numbers["spearman"]) == {1.0, 7.5}
    assert any(line.startswith("Spearman") for line in format_numbers(numbers))

    analytic = Fixture(shipped_fixture("analytic"))
    with pytest.raises(Unavailable, match="duplication count"):
        dose_response(Source("analytic", analytic, specs))
    with pytest.raises(MemharnessError, match="duplication count"):
        dose_numbers(shipped_fixture("analytic"))
    assert render_figure(dose, [Source("analytic", analytic, specs)]).png is None  # build_report leaves it out


# --------------------------------------------------------------------------- shipped weights and fixture
needs_shipped = pytest.mark.skipif(not (GRADED / "manifest.json").is_file(), reason="no digits-graded fixture")


@needs_shipped
def test_shipped_graded_weights_are_small_and_carded():
    path = shipped_weights("digits-graded.safetensors")
    assert path.is_file() and path.stat().st_size < 10_000_000
    assert (path.parent / "digits-graded.md").is_file()
    fixture = Fixture(GRADED)
    fixture.verify()
    assert fixture.model["id"] == "digits-graded"
    assert fixture.model["params"]["weights_sha256"] == load_denoiser(load_card("digits-graded")).card.params[
        "weights_sha256"]
    size = sum(f.stat().st_size for f in GRADED.rglob("*") if f.is_file())
    assert size < 8_500_000, size


@needs_shipped
def test_shipped_graded_fixture_has_a_dose_response():
    """The targets of issue 14, as measured on the shipped fixture (model card, digits-graded.md)."""
    from memharness.zoo.dose import dose_numbers

    d = dose_numbers(GRADED)
    assert d["spearman"][7.5]["rho"] >= 0.8
    m = d["memorized"]
    assert not m["class_prompts_memorized"]
    assert m["fraction_below_at_low"] >= 1 / 3
    assert m["rise_mean"] > 0 and m["rise_ci"][0] > 0
    json.dumps(d, default=float)


@needs_shipped
def test_shipped_graded_weights_make_the_shipped_fixture(tmp_path):
    """Retrace one graded prompt at the fixture's DDPM settings: the arrays equal the shipped ones."""
    from safetensors.numpy import load_file

    from memharness.trace.tracer import TraceSettings, trace

    shipped = Fixture(GRADED)
    settings = shipped.runs["ddpm"]["settings"]
    denoiser = load_denoiser(load_card("digits-graded"), sampler="ddpm")
    prompt = next(p for p in denoiser.prompts() if p.duplicates == 16)
    out = tmp_path / "one"
    trace(denoiser, out, TraceSettings(sampler="ddpm", num_inference_steps=settings["num_inference_steps"],
                                       guidance=tuple(settings["guidance"]), seeds=tuple(settings["seeds"])),
          prompts=[prompt])
    assert Fixture(out).model == shipped.model  # the same card and weights (their sha256)
    want = load_file(GRADED / "ddpm" / f"{prompt.id}.safetensors")
    got = load_file(out / "ddpm" / f"{prompt.id}.safetensors")
    assert got.keys() == want.keys() | arrays_added_since(want)  # guidance_norm: the shipped files predate it
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=2e-3, atol=2e-3, err_msg=key)
