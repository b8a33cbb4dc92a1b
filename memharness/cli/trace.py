"""``memharness trace``: sample a model and record trace fixtures (alone, or sharded under accelerate)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from memharness.cli.options import add_model_options, add_run_options, add_wait_option, positive_int
from memharness.cli.runtime import DEFAULT_MODEL, command_line, device_for, terminal, weights_options, writer_lock
from memharness.errors import MemharnessError


def add_parser(subparsers) -> None:
    from memharness.schedule import SAMPLERS

    tr = subparsers.add_parser("trace", help="sample a model and record trace fixtures")
    add_model_options(tr)
    tr.add_argument("--out", metavar="DIR", help="fixture folder (default ./fixtures/<model>)")
    tr.add_argument("--sampler", choices=SAMPLERS, default="ddim", help="DDIM (Eq 7) or DDPM (Eq 22)")
    tr.add_argument("--guidance", type=float, nargs="+", metavar="G",
                    help="guidance scales (default from the model card, e.g. 1 2 7.5)")
    tr.add_argument("--seeds", type=positive_int, metavar="N", help="seeds 0..N-1 per prompt (default from the card)")
    tr.add_argument("--steps", type=positive_int, default=50, metavar="T", help="denoising steps (default 50)")
    tr.add_argument("--full-latents", action="store_true", help="also store every latent x_t (large)")
    tr.add_argument("--overwrite", action="store_true", help="replace a run recorded with other settings")
    tr.add_argument("--prompts", metavar="FILE",
                    help="prompts with paired training images (.jsonl/.json/.csv: id, text, image)")
    tr.add_argument("--batch-size", type=positive_int, metavar="B", help="seeds per UNet batch (default: all)")
    tr.add_argument("--images", metavar="DIR",
                    help="also write decoded final images, DIR/<sampler>/g<G>/<prompt>/<seed>.png, for image scorers")
    add_wait_option(tr, folder="--out")
    add_run_options(tr, weights=True)
    tr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memharness.models import backend_class, load_card, load_denoiser

    card = load_card(args.model or DEFAULT_MODEL) if args.model or not args.model_path else None
    if card is not None and args.images and not backend_class(card.backend, card_id=card.id).can_decode:
        raise MemharnessError(f"--images: the {card.id} model has no decoder; its scores use latents")
    prompts = None
    if args.prompts:
        from memharness.data import load_prompt_file

        prompts = load_prompt_file(args.prompts)
    # Bad settings fail in one line before any weights load. With --model-path alone the card (and its
    # default seeds and scales) is known only after loading, so what was given is checked against generic ones.
    _trace_settings(args, card)
    state = _distributed_state()
    device = device_for(args.device, card, state)
    from memharness.runtime import set_threads

    args.threads = set_threads(args.threads)  # physical cores, or one per process under accelerate
    denoiser = load_denoiser(card, device=device, model_path=args.model_path, dtype=args.dtype,
                             sampler=args.sampler, **weights_options(args))
    card = denoiser.card
    settings = _trace_settings(args, card)
    out = Path(args.out) if args.out else Path("fixtures") / card.id
    prompt_set = Path(args.prompts).stem if args.prompts else card.id
    if state is not None:
        return _trace_sharded(state, denoiser, out, settings, prompts, prompt_set, args)

    with writer_lock(out, args):  # one writer per fixture folder: a second one fails at once, naming this one
        return _trace_locked(denoiser, card, out, settings, prompts, prompt_set, args)


def _trace_locked(denoiser, card, out: Path, settings, prompts, prompt_set: str, args: argparse.Namespace) -> int:
    from memharness.progress import LongWork
    from memharness.runtime import provenance
    from memharness.scoring.latent import write_latent_scores
    from memharness.trace.tracer import trace

    console, plain = terminal(sys.stderr)
    started = time.perf_counter()
    per_prompt = settings.unet_evaluations()
    scales = ",".join(f"{g:g}" for g in settings.guidance)
    label = f"{card.id} {args.sampler} {len(settings.seeds)} seeds g={scales}"
    with LongWork("trace", label, unit="prompts", stream=sys.stderr, plain=plain) as work:

        def progress(done: int, total: int, prompt_id: str, was_skipped: bool) -> None:
            traced = done - work.skipped - int(was_skipped)
            note = f"{traced * per_prompt / work.elapsed:,.0f} UNet evals/s" if traced > 0 else None
            work.update(done, total, skipped=was_skipped, note=note)

        record = provenance(denoiser, command=command_line(args), batch_size=settings.batch_size,
                            threads=args.threads)
        writer = trace(denoiser, out, settings, prompts=prompts, prompt_set=prompt_set,
                       overwrite=args.overwrite, progress=progress, limit=args.limit, provenance=record)
    skipped = work.skipped
    # The latent score (Eq 9 with latent cosines) labels prompts until an image scorer has run;
    # scores of another scorer (SSCD) are never replaced here.
    kept = write_latent_scores(out) is None
    n_prompts = len(writer.manifest["prompts"])
    console.print(
        f"traced {n_prompts} prompts ({skipped} already done) × {len(settings.seeds)} seeds × "
        f"g={', '.join(f'{g:g}' for g in settings.guidance)} with {args.sampler}, {args.steps} steps "
        f"into {out} in {time.perf_counter() - started:.1f} s"
    )
    if kept:
        scorer = writer.manifest.get("scores", {}).get("scorer")
        console.print(f"kept the fixture's {scorer} scores; score new runs with `memharness score --images DIR`",
                      soft_wrap=True, markup=False)
    return 0


def _distributed_state():
    """accelerate's PartialState when launched with several processes (accelerate launch, torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # gloo on CPU-only machines
    return state if state.num_processes > 1 else None


def _trace_sharded(state, denoiser, out: Path, settings, prompts, prompt_set: str, args) -> int:
    """Each rank traces its share of the prompts into its own shard; the main process merges them."""
    from memharness.scoring.latent import write_latent_scores
    from memharness.trace.shards import merge_shards, shard, shard_dir
    from memharness.trace.tracer import manifest_prompts, trace

    rank, world = state.process_index, state.num_processes
    all_prompts = list(prompts if prompts is not None else denoiser.prompts())[:args.limit]
    mine = shard(all_prompts, rank, world)
    started = time.perf_counter()
    if mine:
        trace(denoiser, shard_dir(out, rank, world), settings, prompts=mine, prompt_set=f"{prompt_set}/{rank}",
              overwrite=args.overwrite)
    state.wait_for_everyone()
    if state.is_main_process:
        from memharness.runtime import provenance

        record = {**provenance(denoiser, command=command_line(args), batch_size=settings.batch_size,
                               threads=args.threads), "processes": world}
        with writer_lock(out, args):
            merge_shards(out, world, sampler=settings.sampler, model=denoiser.card.to_dict(),
                         prompts=manifest_prompts(all_prompts, out),
                         prompt_set=prompt_set, overwrite=args.overwrite, provenance=record)
            write_latent_scores(out)
        print(f"traced {len(all_prompts)} prompts on {world} processes into {out} "
              f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    state.wait_for_everyone()
    return 0


def _trace_settings(args: argparse.Namespace, card):
    from memharness.trace.tracer import TraceSettings

    defaults = card.trace.get(args.sampler, {}) if card is not None else {}
    n_seeds = args.seeds if args.seeds is not None else int(defaults.get("seeds", 8))
    guidance = args.guidance if args.guidance is not None else defaults.get("guidance", [1.0, 7.5])
    settings = TraceSettings(
        sampler=args.sampler,
        num_inference_steps=args.steps,
        guidance=tuple(float(g) for g in guidance),
        seeds=tuple(range(n_seeds)),
        full_latents=args.full_latents,
        batch_size=args.batch_size,
        image_dir=Path(args.images) if args.images else None,
    )
    settings.validate()
    return settings
