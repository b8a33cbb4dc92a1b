"""What the commands share when they run: the console and progress bar, the device, the writer's lock,
and the options of the long commands. No command is defined here, so that command modules outside
the CLI (``memharness.mitigation.commands``) use these without importing the CLI.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from memharness.errors import MemharnessError

DEFAULT_MODEL = "analytic"


def terminal(stream=None):
    """A rich console and whether it is plain (NO_COLOR set, or not a terminal: no styles at all)."""
    from rich.console import Console

    out = stream or sys.stdout
    tty = out.isatty()
    plain = bool(os.environ.get("NO_COLOR")) or not tty
    # Logs and files are not 80 columns wide; a terminal keeps its own width.
    width = None if tty else 160
    kwargs = {"color_system": None} if plain else {}
    return Console(file=out, highlight=False, soft_wrap=False, width=width, **kwargs), plain


def progress(console, plain: bool, verb: str, unit: str):
    """The progress bar of long commands (off when plain: CI logs, NO_COLOR); ``unit`` may name task fields."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(f"[bold]{verb}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn(unit), TimeRemainingColumn(), console=console, disable=plain, transient=True)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (for the lock holder's description)."""
    import shlex

    return shlex.join(["memharness", *getattr(args, "argv", [])])


def writer_lock(folder: Path, args: argparse.Namespace, option: str = "--out"):
    """The lock every writer of a fixture (or data) folder holds; --wait waits for the holder.
    Only --out folders are created; --fixtures must exist. The shipped fixtures are refused: read-only."""
    from memharness.shipped import refuse_shipped
    from memharness.trace.safety import FolderLock

    refuse_shipped(folder, option)
    return FolderLock(folder, wait=bool(getattr(args, "wait", False)), option=option, command=command_line(args),
                      create=option == "--out")


def weights_options(args: argparse.Namespace) -> dict:
    """--revision / --variant for loading from a hub id (only what was given)."""
    return {key: getattr(args, key) for key in ("revision", "variant") if getattr(args, key, None)}


def add_run_options(parser: argparse.ArgumentParser, *, weights: bool = False) -> None:
    """--limit and --threads (and with ``weights``, --revision / --variant) of the long commands."""
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="only the first N prompts (a quick run)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="torch CPU threads (default: the physical cores; 1 per process under accelerate)")
    if weights:
        parser.add_argument("--revision", metavar="REV",
                            help="hub revision (branch, tag or commit) when --model-path or the card is a hub id")
        parser.add_argument("--variant", metavar="NAME",
                            help="weights variant on the hub or in the folder, e.g. fp16 "
                                 "(diffusion_pytorch_model.fp16.safetensors)")


def device_for(name: str, card, state) -> str:
    """--device auto: this rank's GPU under accelerate, else CUDA when present; a CPU-only backend (the
    analytic model) stays on the CPU.
    Any other name is checked against what torch sees (one line, not a traceback deep in the model)."""
    if name != "auto":
        return checked_device(name)
    if card is not None:
        from memharness.models import backend_class

        if backend_class(card.backend, card_id=card.id).cpu_only:
            return "cpu"
    if state is not None:
        return str(state.device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def checked_device(name: str) -> str:
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise MemharnessError(f"--device: unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MemharnessError(f"--device {name}: torch sees no CUDA device here (torch {torch.__version__}); "
                                  "use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MemharnessError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA device(s), "
                                  f"numbered from 0")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise MemharnessError(f"--device {name}: torch sees no MPS device here; use --device cpu or auto")
    elif device.type != "cpu":
        raise MemharnessError(f"--device {name}: memharness runs on cpu, cuda or mps devices")
    return name


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value
