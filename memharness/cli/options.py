"""Options more than one command takes, each declared once: the model and its weights, the device,
the fixture folder, and the long commands' --limit / --threads."""

from __future__ import annotations

import argparse

from memharness.cli.runtime import DEFAULT_MODEL


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --model-path, --device and --dtype of the commands that load a model (trace, mitigate, generate)."""
    parser.add_argument("--model", metavar="M",
                        help=f"model id or card file (default {DEFAULT_MODEL}, or the card of --model-path)")
    parser.add_argument("--model-path", metavar="PATH",
                        help="the weights: a diffusers pipeline folder, a single-file checkpoint (.safetensors, "
                             ".ckpt) or a hub id (the weights of --model's card, or any SD pipeline)")
    parser.add_argument("--device", default="auto",
                        help="torch device: auto (CUDA when present, each process its own GPU), cpu, cuda, cuda:1")
    parser.add_argument("--dtype", choices=("float16", "float32", "bfloat16"),
                        help="model dtype (default float16 on CUDA, float32 on the CPU)")


def add_fixture_options(parser: argparse.ArgumentParser, *, several: bool = False, writes: bool = False,
                        model: bool = True) -> None:
    """--model (unless ``model`` is False: the command took it with add_model_options) and --fixtures of the
    commands that read a recorded fixture, or with ``writes`` update one; ``several``: --model repeats and
    --fixtures may hold a folder per model."""
    if model and several:
        parser.add_argument("--model", action="append", metavar="M",
                            help=f"model id (repeatable; default {DEFAULT_MODEL}, the embedded analytic model)")
    elif model:
        parser.add_argument("--model", metavar="M", help=f"model id (default {DEFAULT_MODEL})")
    where = ("fixture folder (default ./fixtures/<model>; the shipped ones are read-only)" if writes else
             "fixture folder (default: ./fixtures/<model>, else the shipped one)")
    parser.add_argument("--fixtures", metavar="DIR",
                        help=where + ("; with several --model, a folder of <model>/" if several else ""))


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


def add_wait_option(parser: argparse.ArgumentParser, *, folder: str = "the fixture") -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait for another writer of {folder} instead of failing")
