"""Adding a claim takes its claim file and its check module, nothing else (issue 18, item 5); a claim's
``needs`` are checked before its check runs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from memharness.claims import Outcome, load_specs, run_claims
from memharness.claims.checks import CHECKS
from memharness.claims.checks.registry import import_checks
from memharness.claims.describe import describe
from memharness.claims.spec import claims_dir
from memharness.shipped import shipped_fixture
from memharness.trace.store import Fixture

CLAIM = "throwaway-claim"
PACKAGE = "throwaway_checks"
CHECK_MODULE = '''
"""A throwaway check: Fig 1d's first-step error, larger for memorized prompts."""

from memharness.claims.checks.common import SAMPLER, Context, guidance, x0_error_norm2
from memharness.claims.checks.registry import register
from memharness.claims.statistics import compare_groups


@register("throwaway-claim", params={"sampler": SAMPLER, "guidance": guidance(7.5)})
def throwaway(ctx: Context):
    sampler, g = ctx.param("sampler"), ctx.param("guidance")
    if early := ctx.preflight(sampler, g):
        return early
    err = x0_error_norm2(ctx.group(sampler, g))[..., 0].mean(1)
    memorized = ctx.labels().memorized
    return ctx.verdict(compare_groups(err[memorized], err[~memorized], alternative="greater",
                                      what="first-step ‖x̂0 − x‖²", **ctx.decide_opts()))
'''
CLAIM_FILE = """\
id: throwaway-claim
title: A throwaway claim
reference: Fig 1d
statement: The first-step error is larger for memorized prompts.
needs:
  fields: [gram x0_err·x0_err, scores]
metric: memharness.analysis.x0_hat_norm2
test:
  kind: one-sided Mann-Whitney U
paper_value: qualitative
scope: memorization-specific
floor: AUC > 0.75
parameters:
  guidance: 7.5
"""


@pytest.fixture
def throwaway_check(tmp_path, monkeypatch):
    """A check module in a package of its own, found by the same discovery as memharness.claims.checks."""
    package = tmp_path / "modules" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "coin.py").write_text(CHECK_MODULE)
    monkeypatch.syspath_prepend(str(package.parent))
    try:
        assert import_checks(PACKAGE) == ["coin"]
        yield CHECKS[CLAIM]
    finally:
        CHECKS.pop(CLAIM, None)
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def claims_with_throwaway(tmp_path) -> Path:
    folder = tmp_path / "claims"
    folder.mkdir()
    for path in claims_dir().glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    (folder / f"{CLAIM}.yaml").write_text(CLAIM_FILE)
    return folder


def test_every_check_module_is_discovered():
    modules = sorted(p.stem for p in Path(import_checks.__code__.co_filename).parent.glob("*.py")
                     if p.stem not in ("__init__", "common", "registry"))
    assert import_checks("memharness.claims.checks") == modules
    assert {check.fn.__module__.rsplit(".", 1)[1] for check in CHECKS.values()} == set(modules)


def test_a_new_claim_is_checked(throwaway_check, claims_with_throwaway):
    specs = load_specs(claims_with_throwaway)
    assert len(specs) == len(list(claims_dir().glob("*.yaml"))) + 1
    assert specs[-1].id == CLAIM  # without an order it sorts after the placed claims
    fixture = Fixture(shipped_fixture("analytic"))
    (verdict,) = run_claims(fixture, specs, only=[CLAIM])
    assert verdict.id == CLAIM and verdict.verdict is Outcome.PASS, verdict.reason
    assert "first-step ‖x̂0 − x‖²" in verdict.reason
    assert "## `throwaway-claim`: A throwaway claim" in describe(specs[-1])


class _ScoresHiddenAt:
    """The fixture as if it had no scores at guidance scale ``g``."""

    def __init__(self, fixture: Fixture, g: float):
        self._fixture, self._g = fixture, g

    def scores_for(self, sampler: str, g: float):
        return None if g == self._g else self._fixture.scores_for(sampler, g)

    def __getattr__(self, name: str):
        return getattr(self._fixture, name)


def test_needs_the_fixture_lacks_skip_before_the_check(throwaway_check, claims_with_throwaway):
    spec = next(s for s in load_specs(claims_with_throwaway) if s.id == CLAIM)
    fixture = _ScoresHiddenAt(Fixture(shipped_fixture("analytic")), 2.0)
    cases = [
        ({"fields": ["scores"]}, {"label_guidance": 3.0}, "no memorization scores for ddim g=3"),
        ({"fields": ["categories"]}, {}, "no Webster categories"),
        ({"fields": []}, {"guidance": 3.0}, "the ddim run has no guidance scale 3 (has 1, 2, 7.5)"),
        ({"fields": []}, {"sampler": "ddpm", "guidance": 2.0}, "the ddpm run has no guidance scale 2"),
        ({"fields": ["gram eps_u_res·x_T"]}, {"guidance": 1.0}, "at g=1 records no ⟨eps_u_res, x_T⟩"),
        ({"fields": ["run scores"]}, {"guidance": 2.0}, "no memorization scores for ddim g=2"),
        ({"fields": [], "distinct_guidance_scales": 4}, {}, "needs ≥ 4 guidance scales in a ddim run"),
    ]
    for needs, parameters, reason in cases:
        changed = dataclasses.replace(spec, needs=needs, parameters={**spec.parameters, **parameters})
        (verdict,) = run_claims(fixture, [changed], alternatives=False)
        assert verdict.verdict is Outcome.SKIP and reason in verdict.reason, (needs, parameters, verdict.reason)
