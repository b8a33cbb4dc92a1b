"""``memharness mitigate`` and ``memharness generate``: the command-line side of App H's mitigation."""

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
from memharness.cli.runtime import DEFAULT_MODEL, device_for, progress, terminal, weights_options, writer_lock
from memharness.errors import MemharnessError
from memharness.mitigation.constants import DEFAULT_GAMMA, DEFAULT_METHODS, DEFAULT_TRANSITION_T, MITIGATION_METHODS


def _load(args: argparse.Namespace):
    """The denoiser as ``trace`` loads it: --model's card, or the card of --model-path."""
    from memharness.models import load_card, load_denoiser

    card = load_card(args.model or DEFAULT_MODEL) if args.model or not args.model_path else None
    return load_denoiser(card, device=device_for(args.device, card, None), model_path=args.model_path,
                         dtype=args.dtype, sampler="ddim", **weights_options(args))


# --------------------------------------------------------------------------- mitigate
def cmd_mitigate(args: argparse.Namespace) -> int:
    """Sample the fixture's prompts with each mitigation method; write its "mitigation" section."""
    from memharness.mitigation.record import MitigationSettings, record_mitigation, summarize
    from memharness.shipped import refuse_shipped, writable_fixture
    from memharness.trace.manifest import read_manifest

    if not args.fixtures and args.model_path and not args.model:
        raise MemharnessError("--fixtures: give the fixture folder of the --model-path model")
    root = Path(args.fixtures) if args.fixtures else writable_fixture(args.model or DEFAULT_MODEL)
    refuse_shipped(root, "--fixtures")  # before any weights load (the lock refuses it too)
    settings = MitigationSettings(methods=tuple(args.methods), gamma=args.gamma, transition_t=args.transition,
                                  guidance=args.guidance, batch_size=args.batch_size,
                                  image_dir=Path(args.images) if args.images else None)
    settings.policies()  # bad options fail before any weights load
    from memharness.progress import LongWork
    from memharness.runtime import set_threads

    args.threads = set_threads(args.threads)
    denoiser = _load(args)
    console, plain = terminal(sys.stderr)
    started = time.perf_counter()
    label = f"{denoiser.card.id} {' '.join(settings.methods)} g={settings.guidance:g}"
    with LongWork("mitigate", label, unit="prompts", stream=sys.stderr, plain=plain) as work:

        def progress(done: int, total: int, prompt_id: str, was_skipped: bool) -> None:
            work.update(done, total, skipped=was_skipped)

        with writer_lock(root, args, option="--fixtures"):  # one writer per fixture folder
            section = record_mitigation(denoiser, root, settings, overwrite=args.overwrite, progress=progress,
                                        limit=args.limit)
    skipped = work.skipped
    console.print(f"mitigated {len(section['files'])} prompts ({skipped} already done) × "
                  f"{len(section['settings']['seeds'])} seeds with {', '.join(section['settings']['methods'])} "
                  f"into {root / 'mitigation'} in {time.perf_counter() - started:.1f} s", soft_wrap=True)
    if len(section["files"]) < len(read_manifest(root)["prompts"]):  # --limit: a quick run, no summary yet
        console.print(f"{len(section['files'])} of {len(read_manifest(root)['prompts'])} prompts mitigated; run "
                      "the same command without --limit to finish the section", soft_wrap=True, markup=False)
        return 0
    for line in summarize(root):
        console.print(line, soft_wrap=True, markup=False)
    return 0


# --------------------------------------------------------------------------- generate
def _prompt(args: argparse.Namespace, denoiser):
    from memharness.models.base import Prompt

    if args.prompt_id is not None:
        if args.prompts:
            from memharness.data import load_prompt_file

            known = load_prompt_file(args.prompts)
        else:
            known = denoiser.prompts()  # models without built-in prompts say to pass --prompts
        for prompt in known:
            if prompt.id == args.prompt_id:
                return prompt
        names = ", ".join(p.id for p in known[:5]) + (", …" if len(known) > 5 else "")
        raise MemharnessError(f"--prompt-id: no prompt {args.prompt_id!r} (known: {names})")
    if not args.prompt.strip():
        raise MemharnessError("--prompt: give the prompt text")
    if denoiser.any_prompt_text:
        return Prompt(id="prompt", text=args.prompt)
    for prompt in denoiser.prompts():  # models with a fixed prompt set know only their own texts
        if prompt.text == args.prompt:
            return prompt
    example = denoiser.prompts()[0]
    raise MemharnessError(f"--prompt: model {denoiser.card.id} knows only its own prompts; use --prompt-id "
                          f"(e.g. --prompt-id {example.id}: {example.text!r})")


def cmd_generate(args: argparse.Namespace) -> int:
    """Sample one prompt with δ(t) detection (App H), optionally mitigated; write images and JSON."""
    from memharness.mitigation.generation import generate, write_generation

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MemharnessError(f"--out: {out} is a file; give a folder")
    if not args.guidance >= 0 or args.guidance == float("inf"):
        raise MemharnessError(f"--guidance: a finite scale ≥ 0 is needed, got {args.guidance}")
    if not (args.gamma >= 0 and args.gamma != float("inf")):
        raise MemharnessError(f"--gamma: must be a finite number ≥ 0, got {args.gamma}")
    denoiser = _load(args)
    prompt = _prompt(args, denoiser)
    console, plain = terminal(sys.stderr)
    seeds = list(range(args.seeds))
    with progress(console, plain, "generate", "steps") as bar:
        task = bar.add_task(f"{denoiser.card.id} {prompt.id} × {len(seeds)} seeds g={args.guidance:g}",
                            total=args.steps)
        gen = generate(denoiser, prompt, seeds=seeds, guidance_scale=args.guidance, num_inference_steps=args.steps,
                       mitigate=args.mitigate, gamma=args.gamma, hooks=[lambda state: bar.advance(task)])
    record = write_generation(gen, out, model=denoiser.card.id)
    steps = ", ".join(f"{s}: {d}" for s, d in record["detection_step"].items())
    what = "images" if record["output"] == "png" else "final latents (no decoder)"
    action = "mitigated (g = 0 from the detection step)" if args.mitigate else "detected only"
    console.print(f"wrote {len(seeds)} {what} of {prompt.id!r} to {out}; δ > −{args.gamma:g} flagged "
                  f"{record['flagged']} of {len(seeds)} seeds, {action}; detection step per seed: {steps}",
                  soft_wrap=True, markup=False)
    return 0


# --------------------------------------------------------------------------- parsers
def add_parsers(sub) -> None:
    """The ``mitigate`` and ``generate`` subcommands, on the main parser's subparsers."""
    mit = sub.add_parser("mitigate", help="sample a fixture's prompts with mitigation methods (App H, Jain et al.) "
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
    mit.set_defaults(func=cmd_mitigate)

    gen = sub.add_parser("generate", help="sample one prompt with real-time detection (App H), optionally "
                                          "mitigated; writes images and the detection step per seed")
    add_model_options(gen)
    which = gen.add_mutually_exclusive_group(required=True)
    which.add_argument("--prompt", metavar="TEXT", help="prompt text")
    which.add_argument("--prompt-id", metavar="ID", help="a prompt of the model's own set, or of --prompts")
    gen.add_argument("--prompts", metavar="FILE", help="prompt file to look --prompt-id up in (.jsonl/.json/.csv)")
    gen.add_argument("--seeds", type=positive_int, default=4, metavar="N", help="seeds 0..N-1 (default 4)")
    gen.add_argument("--guidance", type=float, default=7.5, metavar="G", help="guidance scale (default 7.5)")
    gen.add_argument("--steps", type=positive_int, default=50, metavar="T", help="DDIM steps (default 50)")
    gen.add_argument("--mitigate", action="store_true",
                     help="switch guidance off (g = 0) for a seed from its detection step on")
    gen.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, metavar="γ",
                     help=f"detection margin: flag once δ(t) > −γ (default {DEFAULT_GAMMA})")
    gen.add_argument("--out", required=True, metavar="DIR",
                     help="output folder: <seed>.png (or latents.safetensors without a decoder) and generate.json")
    gen.set_defaults(func=cmd_generate)
