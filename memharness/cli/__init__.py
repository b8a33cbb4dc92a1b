"""Command-line entry point: ``memharness check | trace | claims | models | …``, one module per command.

Each command module has ``add_parser(subparsers)`` and ``run(args)``; COMMANDS below is the one list of
them. What the commands share (fixtures, console, device, locks) is in ``memharness.cli.runtime``, the
options more than one takes in ``memharness.cli.options``. torch is imported only by the commands that
sample, so ``check`` stays fast.

Exit codes: 0 nothing failed; 1 a claim FAILed or regressed (``check``); 2 usage or data error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from memharness import __version__
from memharness.cli.runtime import error_text
from memharness.errors import MemharnessError

# The command modules, in the order `memharness --help` lists them. Imported when the parser is built, so that
# importing memharness.cli.runtime (the pytest plugin does) loads no command.
COMMANDS = ("check", "detect", "report", "trace", "claims", "prompts", "data", "score", "zoo", "mitigate",
            "generate", "models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memharness",
        description="Check the claims of 'How Diffusion Models Memorize' against recorded diffusion traces.",
    )
    parser.add_argument("--version", action="version", version=f"memharness {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"memharness.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for the lock holder's note
    try:
        return args.func(args)
    except MemharnessError as exc:
        for line in getattr(exc, "guide", ()):  # a first run: what to do, before the one error line
            print(line, file=sys.stderr)
        print(f"memharness: error: {error_text(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the system refuses (name too long, permissions, disk full): still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"memharness: error: {where}{exc.strerror or exc.__class__.__name__}", file=sys.stderr)
        return 2
    except RecursionError:  # a hostile input nested too deeply for a parser no schema check reached first
        print("memharness: error: an input file nests too deeply to read (JSON or YAML)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memharness: interrupted; finished prompts are kept, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
