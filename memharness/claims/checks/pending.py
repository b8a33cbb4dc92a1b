"""Claims whose data other commands record: Webster categories (Table 1)."""

from __future__ import annotations

from collections import Counter

from memharness.claims.checks.common import Context
from memharness.claims.checks.registry import register
from memharness.claims.params import Param
from memharness.claims.statistics import Decision
from memharness.claims.verdict import Outcome


def category_counts(prompts: list[dict]) -> Counter:
    """App A, Table 1: prompts per Webster category (MV / TV / RV / N); prompts without one are not counted."""
    return Counter(p["category"] for p in prompts if p.get("category"))


@register("prompt-categories", params={"paper_counts": Param(
    dict, {}, doc="Table 1's prompts per Webster category (MV, TV, RV, N), per model id")},
          null_not_applicable="it reads the prompts' categories, not the scores")
def prompt_categories(ctx: Context):
    """Table 1: retrievable prompts per Webster category (MV / TV / RV / N) for the model."""
    categories = [p.get("category") for p in ctx.fixture.prompts]
    if not any(categories):
        return ctx.skip("the fixture's prompt set has no Webster categories (MV/TV/RV/N)")
    table = ctx.param("paper_counts")
    model = ctx.fixture.model.get("id")
    if model not in table:
        return ctx.skip(f"the paper's Table 1 has no row for model {model!r} (rows: {', '.join(table)})")
    measured = category_counts(ctx.fixture.prompts)
    expected = {k: int(v) for k, v in table[model].items()}
    got = {k: measured.get(k, 0) for k in expected}
    text = " / ".join(f"{k} {got[k]}" for k in expected)
    want = " / ".join(f"{k} {v}" for k, v in expected.items())
    outcome = Outcome.PASS if got == expected else Outcome.FAIL
    reason = f"counts {text}" + ("" if outcome is Outcome.PASS else f"; the paper has {want}")
    return ctx.verdict(Decision(outcome, reason, measured=float(sum(got.values())), test="exact counts"))
