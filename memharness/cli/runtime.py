"""What the commands share when they run: where each model's fixture is and opening it, the console and
progress bar, the device, the writer's lock, and the one place a field error becomes a flag.

No command is defined here, and ``memharness.cli`` imports its command modules only to build the parser,
so the pytest plugin uses these without loading any command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from memharness.errors import FieldError, MemharnessError

DEFAULT_MODEL = "analytic"

# The CLI's option for each field a FieldError names, where it is not --<field> with "_" spelled "-".
_FLAGS: dict[str, str] = {"duplication": "--no-duplication"}  # zoo train: the flag that turns it off


def flag(field: str) -> str:
    """The command-line option that sets ``field``."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def error_text(exc: MemharnessError) -> str:
    """The error as the command line says it: a field, and any field it mentions, named as its option
    (``seeds`` → ``--seeds``)."""
    return exc.render(flag(exc.field), option=flag) if isinstance(exc, FieldError) else str(exc)


# --------------------------------------------------------------------------- fixtures
def default_fixture_dir(model: str) -> Path:
    """The fixture read for ``model``: ./fixtures/<model> when present, else the one shipped in the package
    (read-only), else ./fixtures/<model> (where `trace` records it)."""
    from memharness.shipped import local_fixture, shipped_fixture

    local, shipped = local_fixture(model), shipped_fixture(model)
    return shipped if not local.is_dir() and shipped.is_dir() else local


def fixture_targets(models: Sequence[str], fixtures: str | None) -> list[tuple[str | None, Path]]:
    """(model or None, fixture folder) per model to check; None: the model the fixture records.

    ``fixtures`` is one model's fixture folder, or with several models a folder of ``<model>/`` folders.
    """
    from memharness.trace.store import MANIFEST

    models = list(dict.fromkeys(models))  # a model named twice is checked once
    if not fixtures:
        from memharness.models import load_card

        for model in models or [DEFAULT_MODEL]:
            load_card(model)  # an unknown model name fails here, naming the known ones
        return [(model, default_fixture_dir(model)) for model in models or [DEFAULT_MODEL]]
    root = Path(fixtures)
    if len(models) <= 1:
        return [(models[0] if models else None, root)]
    if (root / MANIFEST).is_file():
        raise FieldError("fixtures", f"{root} is one model's fixture folder, not a folder holding "
                                     f"{', '.join(m + '/' for m in models)}; name one model with it")
    return [(model, root / model) for model in models]


def open_fixture(model: str | None, root: Path):
    """The fixture at ``root`` and the model it holds, which must be ``model`` when one is named."""
    from memharness.trace.store import MANIFEST, Fixture

    if not (root / MANIFEST).is_file() and (root.is_dir() or not root.exists()):
        if model is not None and root == default_fixture_dir(model):
            from memharness.guide import first_run
            from memharness.models import load_card

            raise first_run(load_card(model), root, display=str(Path("fixtures") / model))  # what trace writes
        raise FieldError("fixtures", f"no fixture here ({MANIFEST} missing); record one with "
                                     f"`memharness trace --model {model or 'MODEL'} --out {root}`", value=root)
    fixture = Fixture(root)
    recorded = fixture.model.get("id")
    if model is not None and model != recorded:
        raise FieldError("model", f"the fixture at {root} holds model {recorded!r}", value=model)
    fixture.require_complete_run()  # an interrupted or failed trace: exit 2, not a table of SKIPs
    return recorded, fixture


def display_path(root: Path) -> str:
    """The fixture folder relative to the working directory when inside it: reports stay machine-neutral."""
    try:
        return str(Path(os.path.abspath(root)).relative_to(Path.cwd()))  # abspath: symlinks stay as named
    except ValueError:
        return str(root)


def fixture_info(fixture, root: Path) -> dict:
    """What a report says about the fixture it was computed from."""
    return {
        "path": display_path(root),
        "model_card": fixture.model.get("id"),
        "harness_version": fixture.manifest.get("harness_version"),
        "prompt_set": fixture.manifest.get("prompt_set"),
        "runs": {name: {k: run["settings"][k] for k in ("num_inference_steps", "guidance", "seeds")}
                 for name, run in fixture.runs.items()},
        "scorer": (fixture.scores or {}).get("scorer"),
    }


# --------------------------------------------------------------------------- console
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


# --------------------------------------------------------------------------- writers
def command_line(args: argparse.Namespace) -> str:
    """The command as typed (for the lock holder's description)."""
    import shlex

    return shlex.join(["memharness", *getattr(args, "argv", [])])


def writer_lock(folder: Path, args: argparse.Namespace, field: str = "out"):
    """The lock every writer of a fixture (or data) folder, given in option ``field``, holds; --wait waits for
    the holder. Only --out folders are created; --fixtures must exist. The shipped fixtures are refused: read-only."""
    from memharness.shipped import refuse_shipped
    from memharness.trace.safety import FolderLock

    refuse_shipped(folder, field)
    return FolderLock(folder, wait=bool(getattr(args, "wait", False)), field=field, command=command_line(args),
                      create=field == "out")


# --------------------------------------------------------------------------- models and devices
def weights_options(args: argparse.Namespace) -> dict:
    """--revision / --variant for loading from a hub id (only what was given)."""
    return {key: getattr(args, key) for key in ("revision", "variant") if getattr(args, key, None)}


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
