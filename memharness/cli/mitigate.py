"""``memharness mitigate``: sample a fixture's prompts again with mitigation policies (App H, Jain et al.) and
record them in its ``mitigation`` section."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from memharness.cli.options import (
    add_fixture_options,
    add_model_options,
    add_run_options,
    add_wait_option,
    positive_int,
)
from memharness.cli.runtime import DEFAULT_MODEL, device_for, terminal, weights_options, writer_lock
from memharness.errors import MemharnessError
from memharness.mitigation.constants import DEFAULT_GAMMA, DEFAULT_METHODS, DEFAULT_TRANSITION_T, MITIGATION_METHODS


def add_parser(subparsers) -> None:
    mit = subparsers.add_parser(
        "mitigate", help="sample a fixture's prompts with mitigation methods (App H, Jain et al.) "
                 "and record a mitigation section")
    add_model_options(mit)
    add_fixture_options(mit, writes=True, model=False)
    mit.add_argument("--methods", nargs="+", choices=MITIGATION_METHODS, default=list(DEFAULT_METHODS),
                     metavar="METHOD", help=f"methods to run, of {' '.join(MITIGATION_METHODS)} "
                                            f"(default {' '.join(DEFAULT_METHODS)})")
    mit.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, metavar="γ",
                     help=f"delta: flag a seed once δ(t) > −γ (default {DEFAULT_GAMMA}, App H)")
    mit.add_argument("--transition", type=int, default=DEFAULT_TRANSITION_T, metavar="T",
                     help=f"jain-static(-neg): g = 0 (−2) while the timestep t > T (default {DEFAULT_TRANSITION_T})")
    mit.add_argument("--guidance", type=float, default=7.5, metavar="G",
                     help="nominal guidance scale; the fixture's DDIM run must have it (default 7.5)")
    mit.add_argument("--batch-size", type=positive_int, metavar="B", help="seeds per UNet batch (default: all)")
    mit.add_argument("--images", metavar="DIR",
                     help="also write decoded images, DIR/mitigation/<method>/<prompt>/<seed>.png (models with a VAE)")
    mit.add_argument("--overwrite", action="store_true",
                     help="replace a mitigation section recorded with other settings")
    add_wait_option(mit)
    add_run_options(mit, weights=True)
    mit.set_defaults(func=run)


def load_model(args: argparse.Namespace):
    """The denoiser as ``trace`` loads it: --model's card, or the card of --model-path."""
    from memharness.models import load_card, load_denoiser

    card = load_card(args.model or DEFAULT_MODEL) if args.model or not args.model_path else None
    return load_denoiser(card, device=device_for(args.device, card, None), model_path=args.model_path,
                         dtype=args.dtype, sampler="ddim", **weights_options(args))


def run(args: argparse.Namespace) -> int:
    """Sample the fixture's prompts with each mitigation method; write its "mitigation" section."""
    from memharness.mitigation.record import MitigationSettings, record_mitigation, summarize
    from memharness.shipped import refuse_shipped, writable_fixture
    from memharness.trace.manifest import read_manifest

    if not args.fixtures and args.model_path and not args.model:
        raise MemharnessError("--fixtures: give the fixture folder of the --model-path model")
    root = Path(args.fixtures) if args.fixtures else writable_fixture(args.model or DEFAULT_MODEL)
    refuse_shipped(root, "fixtures")  # before any weights load (the lock refuses it too)
    settings = MitigationSettings(methods=tuple(args.methods), gamma=args.gamma, transition_t=args.transition,
                                  guidance=args.guidance, batch_size=args.batch_size,
                                  image_dir=Path(args.images) if args.images else None)
    settings.policies()  # bad options fail before any weights load
    from memharness.progress import LongWork
    from memharness.runtime import set_threads

    args.threads = set_threads(args.threads)
    denoiser = load_model(args)
    console, plain = terminal(sys.stderr)
    started = time.perf_counter()
    label = f"{denoiser.card.id} {' '.join(settings.methods)} g={settings.guidance:g}"
    with LongWork("mitigate", label, unit="prompts", stream=sys.stderr, plain=plain) as work:

        def progress(done: int, total: int, prompt_id: str, was_skipped: bool) -> None:
            work.update(done, total, skipped=was_skipped)

        with writer_lock(root, args, field="fixtures"):  # one writer per fixture folder
            section = record_mitigation(denoiser, root, settings, overwrite=args.overwrite, progress=progress,
                                        limit=args.limit)
    skipped = work.skipped
    console.print(f"mitigated {len(section['files'])} prompts ({skipped} already done) × "
                  f"{len(section['settings']['seeds'])} seeds with {', '.join(section['settings']['methods'])} "
                  f"into {root / 'mitigation'} in {time.perf_counter() - started:.1f} s", soft_wrap=True)
    prompts = len(read_manifest(root)["prompts"])
    if len(section["files"]) < prompts:  # --limit: a quick run, no summary yet
        console.print(f"{len(section['files'])} of {prompts} prompts mitigated; run "
                      "the same command without --limit to finish the section", soft_wrap=True, markup=False)
        return 0
    for line in summarize(root):
        console.print(line, soft_wrap=True, markup=False)
    return 0
