"""``memharness prompts``: the shipped prompt sets and their Webster categories."""

from __future__ import annotations

import argparse

from memharness.cli.runtime import terminal


def add_parser(subparsers) -> None:
    prompts = subparsers.add_parser("prompts", help="the shipped prompt sets and their Webster categories")
    prompts.add_argument("--set", metavar="NAME", help="one set (webster, wen, sd2-219); default: all")
    prompts.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    from memharness.data.prompt_sets import available_sets, category_counts, load_set

    console, plain = terminal()
    names = [args.set] if args.set else available_sets()
    table = Table(title="prompt sets" if not args.set else f"prompt set {args.set}", title_justify="left",
                  box=box.ASCII if plain else box.SIMPLE_HEAVY)
    for column in ("set", "prompts", "MV", "TV", "RV", "N", "no category"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for name in names:
        entries = load_set(name)
        counts = category_counts(entries)
        cells = [str(counts.get(c, 0)) for c in ("MV", "TV", "RV", "N")]
        table.add_row(name, str(len(entries)), *cells, str(len(entries) - sum(counts.values())))
    console.print(table)
    if args.set == "webster":
        console.print("Webster (2023) categories: MV matching verbatim, TV template verbatim, RV retrieved verbatim, "
                      "N none (App A); the paper's Table 1 denominators are 86 / 229 / 30 / 155.", soft_wrap=True)
    return 0
