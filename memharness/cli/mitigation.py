"""``memharness mitigate`` and ``memharness generate`` (App H): defined beside the mitigation code
(memharness.mitigation.commands), listed here with the other commands."""

from __future__ import annotations

from memharness.mitigation.commands import add_parsers


def add_parser(subparsers) -> None:
    add_parsers(subparsers)
