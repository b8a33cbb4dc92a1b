"""``memharness generate``: one prompt with real-time detection (App H), optionally mitigated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memharness.cli.mitigate import load_model
from memharness.cli.options import add_model_options, positive_int
from memharness.cli.runtime import terminal
from memharness.errors import MemharnessError
from memharness.mitigation.constants import DEFAULT_GAMMA


def add_parser(subparsers) -> None:
    gen = subparsers.add_parser(
        "generate", help="sample one prompt with real-time detection (App H), optionally "
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
    gen.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    """Sample one prompt with δ(t) detection (App H), optionally mitigated; write images and JSON."""
    from memharness.mitigation.generation import generate, write_generation

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MemharnessError(f"--out: {out} is a file; give a folder")
    if not args.guidance >= 0 or args.guidance == float("inf"):
        raise MemharnessError(f"--guidance: a finite scale ≥ 0 is needed, got {args.guidance}")
    if not (args.gamma >= 0 and args.gamma != float("inf")):
        raise MemharnessError(f"--gamma: must be a finite number ≥ 0, got {args.gamma}")
    denoiser = load_model(args)
    prompt = _prompt(args, denoiser)
    console, plain = terminal(sys.stderr)
    seeds = list(range(args.seeds))
    from memharness.progress import LongWork

    label = f"{denoiser.card.id} {prompt.id} × {len(seeds)} seeds g={args.guidance:g}"
    with LongWork("generate", label, unit="steps", total=args.steps, stream=sys.stderr, plain=plain) as work:
        gen = generate(denoiser, prompt, seeds=seeds, guidance_scale=args.guidance, num_inference_steps=args.steps,
                       mitigate=args.mitigate, gamma=args.gamma, hooks=[lambda state: work.advance()])
    record = write_generation(gen, out, model=denoiser.card.id)
    steps = ", ".join(f"{s}: {d}" for s, d in record["detection_step"].items())
    what = "images" if record["output"] == "png" else "final latents (no decoder)"
    action = "mitigated (g = 0 from the detection step)" if args.mitigate else "detected only"
    console.print(f"wrote {len(seeds)} {what} of {prompt.id!r} to {out}; δ > −{args.gamma:g} flagged "
                  f"{record['flagged']} of {len(seeds)} seeds, {action}; detection step per seed: {steps}",
                  soft_wrap=True, markup=False)
    return 0
