"""Shared test fixtures: a small analytic model and its trace, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import small_card, trace_small


@pytest.fixture(scope="session")
def small_fixture_master(tmp_path_factory) -> Path:
    from memharness.models import load_denoiser

    return trace_small(load_denoiser(small_card()), tmp_path_factory.mktemp("fixtures") / "small")


@pytest.fixture
def small_fixture(small_fixture_master, tmp_path) -> Path:
    """A private copy of the small fixture, free to damage."""
    copy = tmp_path / "small"
    shutil.copytree(small_fixture_master, copy)
    return copy
