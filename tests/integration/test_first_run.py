"""A first run that guides (issue 16): check --model M without fixtures, and `memharness models`."""

from __future__ import annotations

import pytest

from memharness.cli import main
from memharness.guide import unet_evaluations
from memharness.models import load_card
from memharness.shipped import shipped_fixture


@pytest.mark.parametrize("model", ["realisticvision", "sd14"])
def test_check_without_fixtures_names_the_model_and_gives_the_commands(model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no ./fixtures/<model>; none ship for SD models either
    assert main(["check", "--model", model]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[-1].startswith(f"memharness: error: model {model} has no fixtures yet")
    assert "MODEL" not in err  # the model's name, not a placeholder
    card = load_card(model)
    assert f"model {model} ({card.title}) has no fixtures at fixtures/{model}" in err
    assert "diffusers pipeline folder" in err and ".safetensors" in err and card.params["hub_id"] in err
    assert "GPU" in err
    assert f"{unet_evaluations(card, 'ddim') + unet_evaluations(card, 'ddpm'):,} UNet evaluations" in err
    assert "461 KB" in err and "144 KB" in err  # docs/models.md's measured disk per prompt
    command = (f"  memharness trace --model {model} --prompts data/webster/prompts.jsonl --device cuda "
               f"--out fixtures/{model}")
    assert command in lines and command + " --sampler ddpm" in lines
    assert f"  memharness check --model {model} --fixtures fixtures/{model}" in lines


def test_the_guide_for_a_model_computed_here(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from memharness.guide import first_run

    guide = first_run(load_card("analytic"), Path("fixtures/analytic"), display="fixtures/analytic").guide
    assert "  memharness trace --model analytic --out fixtures/analytic" in guide


def test_check_with_an_explicit_empty_folder_keeps_the_one_line_error(tmp_path, capsys):
    assert main(["check", "--model", "sd14", "--fixtures", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no fixture here" in err


def test_models_marks_which_have_fixtures_and_where(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "fixtures none yet" in lines["sd14"]
    assert "fixtures /" in lines["analytic"] and lines["analytic"].split("fixtures ")[1].split()[0].endswith(
        "fixtures/analytic")
    (tmp_path / "fixtures" / "sd14").mkdir(parents=True)  # a local fixture counts once it has a manifest
    import shutil

    shutil.copy(shipped_fixture("analytic") / "manifest.json",
                tmp_path / "fixtures" / "sd14" / "manifest.json")
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "fixtures fixtures/sd14" in lines["sd14"]
