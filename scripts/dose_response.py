"""The dose-response numbers of a fixture whose prompts carry a duplication count.

Run from the repository root::

    python scripts/dose_response.py memharness/fixtures/digits-graded          # the numbers the model card quotes
    python scripts/dose_response.py memharness/fixtures/digits-graded --json   # all of them, as JSON

It reads the fixture only (no sampling): scores per count at every DDIM g, Spearman's ρ of the
score against log count with a bootstrap CI, the prompts labelled memorized at g = 7.5 that score
< 0.75 at g = 1 and their paired rise, first-step k per count, each mitigation method's drop, and
the correlation of the score with Σ(E[w0] − √ᾱ_t) over all states and over states 1–10
(``memharness.zoo.dose``).
"""

from __future__ import annotations

import argparse
import json
import sys

from memharness.errors import MemharnessError
from memharness.zoo.dose import dose_numbers, format_numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture", help="fixture folder, e.g. memharness/fixtures/digits-graded")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")
    args = parser.parse_args(argv)
    try:
        numbers = dose_numbers(args.fixture)
    except MemharnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(numbers, indent=1, default=float))
    else:
        print("\n".join(format_numbers(numbers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
