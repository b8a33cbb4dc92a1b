"""The verdict tables of docs/verdicts.md and the README, measured: one Markdown table per shipped model,
then one verdict per model.

    python scripts/verdict_tables.py analytic digits digits-control [--null 20]

Each table is what `memharness check --model M --null K --format json` reports, as Markdown.
"""

from __future__ import annotations

import argparse

from memharness.claims import load_specs, run_claims
from memharness.claims.engine import null_pass_rates, with_null
from memharness.report.terminal import agreement_text, measured_text, null_text
from memharness.shipped import shipped_fixtures
from memharness.trace.store import Fixture

FIXTURES = shipped_fixtures()


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--null", type=int, default=20, help="label permutations (default 20)")
    args = parser.parse_args()
    specs = load_specs()
    by_model = {}
    for model in args.models:
        fixture = Fixture(FIXTURES / model)
        verdicts = with_null(run_claims(fixture, specs),
                             null_pass_rates(fixture, specs, permutations=args.null, seed=0))
        by_model[model] = verdicts
        print(f"#### `{model}`\n")
        print(_row(("claim", "measured [95 % CI]", "floor", "vs paper", "robust", "null PASS", "verdict")))
        print(_row(("---",) * 7))
        for v in verdicts:
            print(_row((f"`{v.id}`", measured_text(v), v.floor or "—", agreement_text(v), v.robust or "—",
                        null_text(v), v.verdict.value)))
        print()
    if len(args.models) > 1:
        print(_row(("claim", "scope", *(f"`{m}`" for m in args.models))))
        print(_row(("---",) * (2 + len(args.models))))
        for i, spec in enumerate(specs):
            print(_row((f"`{spec.id}`", spec.scope, *(by_model[m][i].verdict.value for m in args.models))))


if __name__ == "__main__":
    main()
