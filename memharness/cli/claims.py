"""``memharness claims``: list the claims, or show one: every key of its claim file and the parameters its check
declares."""

from __future__ import annotations

import argparse

from memharness.errors import MemharnessError


def add_parser(subparsers) -> None:
    claims = subparsers.add_parser("claims", help="list the claims, or show one claim file")
    claims.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    claims.add_argument("id", nargs="?", help="claim id for `show`")
    claims.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memharness.claims import load_specs

    specs = load_specs()
    if args.action == "show":
        if not args.id:
            raise MemharnessError("claims show: name a claim, e.g. `memharness claims show linear-in-guidance`")
        spec = next((s for s in specs if s.id == args.id), None)
        if spec is None:
            raise MemharnessError(f"claims show: unknown claim {args.id!r}; `memharness claims` lists them")
        from memharness.claims.describe import describe

        print(describe(spec), end="\n\n")
        print(f"Claim file: {spec.source}")
        return 0
    width = max(len(s.id) for s in specs)
    for spec in specs:
        print(f"{spec.id:<{width}}  {spec.reference:<24}  {spec.title}")
    return 0
