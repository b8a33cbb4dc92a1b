"""Terminal sparklines of k(t) and w0(t) per group (memharness.report.sparklines)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from memharness.report.sparklines import BLOCKS, sparkline, sparkline_lines, sparkline_renderable, sparkline_rows
from memharness.trace.store import Fixture


def test_sparkline_scales_from_low_to_high():
    assert sparkline(range(8)) == BLOCKS
    assert sparkline([3, 2, 1]) == "█▅▁"  # halfway rounds up
    assert sparkline([1, 1, 1]) == "▄▄▄"  # flat: mid height
    assert sparkline([]) == ""


def test_sparkline_shared_scale_clamps_and_blanks():
    assert sparkline([0.5, 1.0], lo=0.0, hi=1.0) == "▅█"
    assert sparkline([-5, 5], lo=0, hi=1) == "▁█"
    assert sparkline([0, np.nan, 1]) == "▁ █"
    assert sparkline([np.nan, np.nan]) == "  "


def test_sparkline_resamples_to_width():
    line = sparkline(np.linspace(0, 1, 51), width=10)
    assert len(line) == 10 and line[0] == "▁" and line[-1] == "█"
    assert sparkline([1, 2], width=10) == "▁█"  # fewer values than the width: one block each


def test_sparkline_lines_of_a_fixture(small_fixture_master):
    fixture = Fixture(small_fixture_master)
    lines = sparkline_lines(fixture, width=20)
    assert lines[0].startswith("sparklines · analytic · ddim g = 7.5")
    assert len(lines) == 6  # heading; k: memorized, normal; w0: memorized, normal, √ᾱ_t
    heading, rows = sparkline_rows(fixture, width=20)
    k_mem, k_norm, w0_mem, w0_norm, schedule = rows
    assert (k_mem.quantity, k_mem.group) == ("k(t)", "memorized (6)") and k_norm.group == "normal (6)"
    assert schedule.group == "√ᾱ_t" and w0_mem.quantity == "w0(t) on x"
    # Eq 13: the memorized first step is k ≈ g = 7.5, the highest value of its scale; it falls to k = 1.
    assert k_mem.line[0] == "█" and k_mem.first == pytest.approx(7.5, rel=0.05) and k_mem.last == pytest.approx(1)
    # At most 20 wide: one block per value, k per step (10), w0 per state x_T … x_0 (11).
    assert [len(r.line) for r in rows] == [10, 10, 11, 11, 11]
    # Every line ends with its first and last value.
    assert lines[1].endswith(f"{k_mem.first:.3g} → {k_mem.last:.3g}")


def test_sparklines_unavailable_says_why(small_fixture_master):
    lines = sparkline_lines(Fixture(small_fixture_master), guidance=3.0)
    assert lines == ["sparklines · analytic: unavailable, the ddim run has no g=3 (has 1, 2, 7.5)"]


def test_sparkline_renderable_matches_lines(small_fixture_master):
    from rich.console import Console

    fixture = Fixture(small_fixture_master)
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(sparkline_renderable(fixture, plain=True))
    assert buffer.getvalue().splitlines() == sparkline_lines(fixture)
