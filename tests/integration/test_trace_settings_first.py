"""`trace --model-path` checks the settings given on the command line before loading any weights."""

from __future__ import annotations

import pytest

from memharness.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(["--seeds", "1"], "--seeds", id="seeds-1"),
        pytest.param(["--guidance", "-1"], "--guidance", id="guidance-negative"),
        pytest.param(["--guidance", "2", "2"], "--guidance", id="guidance-repeated"),
    ],
)
def test_model_path_settings_fail_before_weights_load(tmp_path, monkeypatch, capsys, argv, needle):
    import memharness.models as models

    def no_loading(*args, **kwargs):
        raise AssertionError("weights were loaded before the settings were checked")

    monkeypatch.setattr(models, "load_denoiser", no_loading)
    out = tmp_path / "out"
    try:
        rc = main(["trace", "--model-path", str(tmp_path / "weights"), "--out", str(out), *argv])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()
