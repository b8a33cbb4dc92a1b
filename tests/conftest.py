"""Shared test fixtures: a small analytic model and its trace, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import small_card


@pytest.fixture(scope="session")
def small_fixture_master(tmp_path_factory) -> Path:
    from memharness.models import load_denoiser
    from memharness.scoring.latent import write_latent_scores
    from memharness.trace.tracer import TraceSettings, trace

    out = tmp_path_factory.mktemp("fixtures") / "small"
    denoiser = load_denoiser(small_card())
    trace(denoiser, out, TraceSettings(sampler="ddim", num_inference_steps=10, guidance=(1.0, 2.0, 7.5),
                                       seeds=(0, 1, 2, 3)), prompt_set="small")
    trace(denoiser, out, TraceSettings(sampler="ddpm", num_inference_steps=10, guidance=(1.0, 7.5),
                                       seeds=(0, 1, 2)), prompt_set="small")
    write_latent_scores(out)
    return out


@pytest.fixture
def small_fixture(small_fixture_master, tmp_path) -> Path:
    """A private copy of the small fixture, free to damage."""
    copy = tmp_path / "small"
    shutil.copytree(small_fixture_master, copy)
    return copy
