"""``memharness models``: the model cards, one line each, and where each one's fixture is."""

from __future__ import annotations

import argparse
import sys

from memharness.cli.runtime import default_fixture_dir, display_path


def add_parser(subparsers) -> None:
    models = subparsers.add_parser("models", help="list the model cards")
    models.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memharness.models import available_cards, load_card
    from memharness.trace.store import MANIFEST

    rows = []
    for name in available_cards():
        card = load_card(name)
        folder = default_fixture_dir(card.id)
        where = display_path(folder) if (folder / MANIFEST).is_file() else "none yet"
        rows.append((card.id, card.backend, "×".join(map(str, card.latent_shape)), where, card.title))
    width = max(len(f"fixtures {r[3]}") for r in rows)
    for model, backend, latent, where, title in rows:  # one line per card (scripts split it)
        print(f"{model:<16} {backend:<10} latent {latent:<10} {'fixtures ' + where:<{width}} {title}")
    print("a model without fixtures: `memharness check --model M` says how to record them", file=sys.stderr)
    return 0
