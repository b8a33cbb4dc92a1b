"""Model cards: every shipped card loads and is usable; card files by path; bad card files are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memharness.cli import main
from memharness.errors import MemharnessError
from memharness.models import ModelCard, available_cards, load_card
from memharness.schedule import NoiseSchedule

SHIPPED = available_cards()
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")

GOOD = {
    "id": "mine",
    "title": "My model",
    "backend": "diffusers",
    "latent_shape": [4, 32, 32],
    "prediction_type": "epsilon",
    "scheduler": {
        "num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
        "set_alpha_to_one": False, "steps_offset": 1, "clip_sample": False, "prediction_type": "epsilon",
    },
    "params": {"hub_id": "me/my-model", "paired_latent": "mean"},
    "trace": {"ddim": {"seeds": 4, "guidance": [1.0, 7.5]}},
}


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def assert_card_error(path: Path, *needles: str) -> str:
    with pytest.raises(MemharnessError) as info:
        load_card(str(path))
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- shipped cards
def test_the_expected_cards_ship():
    assert SHIPPED == sorted(SHIPPED)
    assert {"analytic", "sd14", "sd21", "sd21-768", "realisticvision"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_loads_and_is_usable(name):
    card = load_card(name)
    assert isinstance(card, ModelCard)
    assert card.id == name  # the file name is the id
    assert card.title and card.backend in ("analytic", "diffusers", "zoo")
    assert len(card.latent_shape) == 3 and all(isinstance(d, int) and d > 0 for d in card.latent_shape)
    assert card.prediction_type in PREDICTION_TYPES
    schedule = NoiseSchedule.from_config(card.scheduler)
    assert schedule is not None
    # the scheduler block says the same prediction type as the card, and never clips x̂0
    assert card.scheduler.get("prediction_type", "epsilon") == card.prediction_type
    assert card.scheduler.get("clip_sample") is False
    for sampler, settings in card.trace.items():
        assert sampler in ("ddim", "ddpm")
        assert int(settings["seeds"]) >= 2 and settings["guidance"]
    # to_dict round-trips through from_mapping
    assert ModelCard.from_mapping(card.to_dict(), source="round trip") == card


@pytest.mark.parametrize("name", [n for n in SHIPPED if load_card(n).backend == "diffusers"])
def test_diffusers_cards_name_their_weights(name):
    card = load_card(name)
    assert isinstance(card.params.get("hub_id"), str) and "/" in card.params["hub_id"]
    assert card.params.get("paired_latent") == "mean"
    assert card.latent_shape[0] == 4
    assert int(card.params["resolution"]) == card.latent_shape[-1] * 8  # SD's VAE downsamples by 8


def test_sd21_768_predicts_v_at_96():
    card = load_card("sd21-768")
    assert card.prediction_type == "v_prediction"
    assert card.scheduler["prediction_type"] == "v_prediction"
    assert card.latent_shape == (4, 96, 96)


def test_sd21_base_and_sd14_predict_epsilon_at_64():
    for name in ("sd14", "sd21"):
        card = load_card(name)
        assert card.prediction_type == "epsilon"
        assert card.latent_shape == (4, 64, 64)


def test_realisticvision_names_version_and_vae():
    card = load_card("realisticvision")
    assert card.params["version"]
    assert isinstance(card.params["version"], str)
    assert card.params["vae"]


def test_unknown_card_lists_the_known_ones():
    with pytest.raises(MemharnessError) as info:
        load_card("nope")
    message = str(info.value)
    assert "'nope'" in message and "\n" not in message
    assert all(name in message for name in SHIPPED)


# --------------------------------------------------------------------------- memharness models
def test_models_command_lists_every_card(capsys):
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == len(SHIPPED)
    assert [line.split()[0] for line in lines] == SHIPPED
    for line, name in zip(lines, SHIPPED, strict=True):
        card = load_card(name)
        assert card.backend in line and card.title in line
        assert "×".join(map(str, card.latent_shape)) in line
    assert "Traceback" not in err


# --------------------------------------------------------------------------- card files by path
@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_card_file_by_path(tmp_path, suffix):
    path = _write(tmp_path / f"mine{suffix}", GOOD)
    card = load_card(str(path))
    assert card.id == "mine" and card.title == "My model" and card.backend == "diffusers"
    assert card.latent_shape == (4, 32, 32)
    assert card.scheduler == GOOD["scheduler"]
    assert card.params == GOOD["params"] and card.trace == GOOD["trace"]
    NoiseSchedule.from_config(card.scheduler)


def test_card_file_without_optional_sections(tmp_path):
    data = {k: v for k, v in GOOD.items() if k not in ("params", "trace")}
    card = load_card(str(_write(tmp_path / "bare.yaml", data)))
    assert card.params == {} and card.trace == {}


def test_card_file_params_null_is_empty(tmp_path):
    card = load_card(str(_write(tmp_path / "c.yaml", {**GOOD, "params": None, "trace": None})))
    assert card.params == {} and card.trace == {}


def test_missing_card_file_is_an_error(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(MemharnessError) as info:
        load_card(str(missing))
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content",
    ["id: x\ntitle: [unclosed\n", "a: b: c\n", "key: 'open\n", "\t- tab\n"],
    ids=["unclosed", "nested-colon", "open-quote", "tab"],
)
def test_card_not_yaml(tmp_path, content):
    assert_card_error(_write(tmp_path / "bad.yaml", content), "YAML")


@pytest.mark.parametrize("content", ["", "- a\n- b\n", "just a string\n", "42\n"],
                         ids=["empty", "list", "string", "number"])
def test_card_not_a_mapping(tmp_path, content):
    assert_card_error(_write(tmp_path / "bad.yaml", content), "mapping")


@pytest.mark.parametrize("key", ["id", "title", "backend", "latent_shape", "prediction_type", "scheduler"])
def test_card_missing_key(tmp_path, key):
    data = {k: v for k, v in GOOD.items() if k != key}
    assert_card_error(_write(tmp_path / "bad.yaml", data), f"'{key}'")


@pytest.mark.parametrize(
    "shape",
    [[], [4, 0, 8], [4, -8, 8], [4, 8.0, 8], "4x8x8", 64, [4, "8", 8], None],
    ids=["empty", "zero", "negative", "float", "string", "int", "string-dim", "null"],
)
def test_card_bad_latent_shape(tmp_path, shape):
    assert_card_error(_write(tmp_path / "bad.yaml", {**GOOD, "latent_shape": shape}), "latent_shape")


def test_card_boolean_latent_dimension(tmp_path):
    assert_card_error(_write(tmp_path / "bad.yaml", {**GOOD, "latent_shape": [4, True, 8]}), "latent_shape")


def test_card_scheduler_not_a_mapping(tmp_path):
    assert_card_error(_write(tmp_path / "bad.yaml", {**GOOD, "scheduler": 5}), "scheduler")


def test_card_params_not_a_mapping(tmp_path):
    assert_card_error(_write(tmp_path / "bad.yaml", {**GOOD, "params": [1, 2]}), "params")


def test_card_not_utf8(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xff\xfeid: x\n")
    assert_card_error(path)
