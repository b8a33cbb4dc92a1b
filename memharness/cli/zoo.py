"""``memharness zoo train``: train a model organism (digits) from scratch on the CPU, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time

from memharness.cli.options import positive_int
from memharness.cli.runtime import terminal
from memharness.errors import MemharnessError


def add_parser(subparsers) -> None:
    zoo = subparsers.add_parser("zoo", help="model organisms trained here (digits)")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    train = zoo_sub.add_parser("train", help="train a model organism from scratch on the CPU")
    train.add_argument("organism", choices=("digits", "digits-graded"),
                       help="the organism (scikit-learn's 8×8 digits; digits: 10 prompts duplicated 100 times; "
                            "digits-graded: duplicated 1…128 times)")
    train.add_argument("--out", default=".", metavar="DIR",
                       help="folder for the weights file, ORGANISM.safetensors (default: the current folder)")
    train.add_argument("--seed", type=int, default=0, metavar="S", help="training seed (default 0, as shipped)")
    train.add_argument("--steps", type=positive_int, default=None, metavar="N",
                       help="optimizer steps (default: as the shipped weights)")
    train.add_argument("--no-duplication", dest="duplication", action="store_false",
                       help="the negative control: each memorized prompt's image appears once "
                            "(writes digits-control.safetensors)")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train a model organism (digits) from scratch, with a progress bar; writes its weights file."""
    from memharness.zoo.train import DEFAULT_STEPS, train_digits

    if args.organism != "digits" and not args.duplication:
        raise MemharnessError(f"--no-duplication: only the digits organism has a control, not {args.organism}")
    steps = args.steps or DEFAULT_STEPS
    console, plain = terminal(sys.stderr)
    started = time.perf_counter()
    label = f"{args.organism} seed {args.seed}" + ("" if args.duplication else " (no duplication)")
    with _training_bar(console, plain) as bar:
        task = bar.add_task(label, total=steps, loss="…")
        recent: list[float] = []

        def progress(step: int, total: int, loss: float) -> None:
            recent.append(loss)
            del recent[:-100]
            if step % 10 == 0 or step == total:
                bar.update(task, completed=step, loss=f"{sum(recent) / len(recent):.4f}")
            if plain and (step % max(1, total // 10) == 0 or step == total):  # CI logs: a line per 10 %
                console.print(f"train {label}: step {step}/{total}, loss {sum(recent) / len(recent):.4f}, "
                              f"{time.perf_counter() - started:.0f} s")

        path = train_digits(seed=args.seed, steps=steps, duplicated=args.duplication, out=args.out,
                            progress=progress, organism=args.organism)
    card = args.organism if args.duplication else "digits-control"
    console.print(f"trained {args.organism} ({steps} steps, seed {args.seed}) in "
                  f"{time.perf_counter() - started:.0f} s: {path}\n"
                  f"trace it with `memharness trace --model {card} --model-path {path} --out DIR`", soft_wrap=True)
    return 0


def _training_bar(console, plain: bool):
    """Steps, the running loss, time spent and left (off when plain: CI logs get a line per 10 % instead)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[bold]train[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("steps · loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console, disable=plain, transient=True)
