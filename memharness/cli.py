"""Command-line entry point: ``memharness check | trace | models``.

Exit codes: 0 nothing failed; 1 a claim FAILed; 2 usage or data error.
torch is imported only by ``trace``, so ``check`` stays fast.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from memharness import __version__
from memharness.errors import MemharnessError

DEFAULT_MODEL = "analytic"
_REPO_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _console(stream=None):
    """A rich console and whether it is plain (NO_COLOR set, or not a terminal: no styles at all)."""
    from rich.console import Console

    out = stream or sys.stdout
    tty = out.isatty()
    plain = bool(os.environ.get("NO_COLOR")) or not tty
    # Logs and files are not 80 columns wide; a terminal keeps its own width.
    width = None if tty else 120
    kwargs = {"color_system": None} if plain else {}
    return Console(file=out, highlight=False, soft_wrap=False, width=width, **kwargs), plain


def _emit(text: str, output: str | None) -> None:
    """Print, or write FILE atomically (its folder is created)."""
    if not output:
        sys.stdout.write(text)
        return
    from memharness.trace.store import atomic_write_bytes

    path = Path(output)
    if path.is_dir():
        raise MemharnessError(f"--output: {path} is a folder; give a file name")
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as exc:
        raise MemharnessError(f"--output: cannot write {path} ({exc.strerror})") from None


def default_fixture_dir(model: str) -> Path:
    """./fixtures/<model> when present, else the fixtures shipped beside the package."""
    local = Path("fixtures") / model
    return local if local.is_dir() else _REPO_FIXTURES / model


# --------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    from memharness.claims import Outcome, load_specs, run_claims
    from memharness.models import load_card
    from memharness.report.terminal import reason_lines, summary_line, verdict_table
    from memharness.trace.store import Fixture

    models = args.model or [None if args.fixtures else DEFAULT_MODEL]
    if args.fixtures and len(models) > 1:
        raise MemharnessError("--fixtures: give one --model with it (it names one model's fixture folder)")
    specs = load_specs()
    reports = []
    for model in models:
        if args.fixtures:
            root = Path(args.fixtures)
            fixture = Fixture(root)
            recorded = fixture.model.get("id")
            if model is not None and model != recorded:
                raise MemharnessError(f"--model {model}: the fixture at {root} holds model {recorded!r}")
            model = recorded
        else:
            load_card(model)  # an unknown model name fails here, naming the known ones
            root = default_fixture_dir(model)
            fixture = Fixture(root)
        verdicts = run_claims(fixture, specs, only=args.claim or ())
        reports.append({
            "model": model,
            "harness_version": __version__,
            "fixtures": {
                "path": str(root),
                "model_card": fixture.model.get("id"),
                "harness_version": fixture.manifest.get("harness_version"),
                "prompt_set": fixture.manifest.get("prompt_set"),
                "runs": {name: {k: run["settings"][k] for k in ("num_inference_steps", "guidance", "seeds")}
                         for name, run in fixture.runs.items()},
                "scorer": (fixture.scores or {}).get("scorer"),
            },
            "claims": [v.to_dict() for v in verdicts],
            "_verdicts": verdicts,
        })

    failed = any(v.verdict is Outcome.FAIL for r in reports for v in r["_verdicts"])
    if args.format == "json":
        payload = [{k: v for k, v in r.items() if k != "_verdicts"} for r in reports]
        _emit(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2) + "\n", args.output)
    else:
        buffer = io.StringIO() if args.output else None
        console, plain = _console(buffer)
        for r in reports:
            console.print(verdict_table(r["model"], r["_verdicts"], plain=plain))
            for line in reason_lines(r["_verdicts"]):
                console.print(line, soft_wrap=True)
            console.print(summary_line(r["_verdicts"]))
        if buffer is not None:
            _emit(buffer.getvalue(), args.output)
    return 1 if failed else 0


# --------------------------------------------------------------------------- trace
def cmd_trace(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from memharness.models import load_card, load_denoiser
    from memharness.scoring.latent import write_latent_scores
    from memharness.trace.tracer import TraceSettings, trace

    card = load_card(args.model)
    defaults = card.trace.get(args.sampler, {})
    n_seeds = args.seeds if args.seeds is not None else int(defaults.get("seeds", 8))
    guidance = args.guidance if args.guidance is not None else defaults.get("guidance", [1.0, 7.5])
    settings = TraceSettings(
        sampler=args.sampler,
        num_inference_steps=args.steps,
        guidance=tuple(float(g) for g in guidance),
        seeds=tuple(range(n_seeds)),
        full_latents=args.full_latents,
    )
    settings.validate()
    out = Path(args.out) if args.out else Path("fixtures") / card.id
    denoiser = load_denoiser(card, device=args.device)

    console, plain = _console(sys.stderr)
    started = time.perf_counter()
    skipped = 0
    with Progress(
        TextColumn("[bold]trace[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("prompts"),
        TimeRemainingColumn(),
        console=console,
        disable=plain,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{card.id} {args.sampler} g={','.join(f'{g:g}' for g in settings.guidance)}",
                            total=None)

        def progress(done: int, total: int, prompt_id: str, was_skipped: bool) -> None:
            nonlocal skipped
            skipped += was_skipped
            bar.update(task, completed=done, total=total)

        writer = trace(denoiser, out, settings, prompt_set=card.id, overwrite=args.overwrite, progress=progress)
    if card.backend == "analytic":
        write_latent_scores(out)  # no decoder: the latent score stands in for SSCD (Eq 9)
    n_prompts = len(writer.manifest["prompts"])
    console.print(
        f"traced {n_prompts} prompts ({skipped} already done) × {len(settings.seeds)} seeds × "
        f"g={', '.join(f'{g:g}' for g in settings.guidance)} with {args.sampler}, {args.steps} steps "
        f"into {out} in {time.perf_counter() - started:.1f} s"
    )
    return 0


# --------------------------------------------------------------------------- claims
def cmd_claims(args: argparse.Namespace) -> int:
    from memharness.claims import load_specs

    specs = load_specs()
    if args.action == "show":
        if not args.id:
            raise MemharnessError("claims show: name a claim, e.g. `memharness claims show linear-in-guidance`")
        spec = next((s for s in specs if s.id == args.id), None)
        if spec is None:
            raise MemharnessError(f"claims show: unknown claim {args.id!r}; `memharness claims` lists them")
        print(Path(spec.source).read_text(), end="")
        return 0
    width = max(len(s.id) for s in specs)
    for spec in specs:
        print(f"{spec.id:<{width}}  {spec.reference:<24}  {spec.title}")
    return 0


# --------------------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from memharness.models import available_cards, load_card

    for name in available_cards():
        card = load_card(name)
        print(f"{card.id:<16} {card.backend:<10} latent {'×'.join(map(str, card.latent_shape)):<10} {card.title}")
    return 0


# --------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memharness",
        description="Check the claims of 'How Diffusion Models Memorize' against recorded diffusion traces.",
    )
    parser.add_argument("--version", action="version", version=f"memharness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="run the claim checks on a model's fixtures and print verdicts")
    check.add_argument("--model", action="append", metavar="M",
                       help=f"model id (repeatable; default {DEFAULT_MODEL}, the embedded analytic model)")
    check.add_argument("--fixtures", metavar="DIR", help="fixture folder (default: fixtures/<model>)")
    check.add_argument("--claim", action="append", metavar="ID", help="check only this claim (repeatable)")
    check.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    check.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    check.set_defaults(func=cmd_check)

    tr = sub.add_parser("trace", help="sample a model and record trace fixtures")
    tr.add_argument("--model", default=DEFAULT_MODEL, metavar="M",
                    help=f"model id or card file (default {DEFAULT_MODEL})")
    tr.add_argument("--out", metavar="DIR", help="fixture folder (default fixtures/<model>)")
    tr.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim", help="DDIM (Eq 7) or DDPM (Eq 22)")
    tr.add_argument("--guidance", type=float, nargs="+", metavar="G",
                    help="guidance scales (default from the model card, e.g. 1 2 7.5)")
    tr.add_argument("--seeds", type=_positive_int, metavar="N", help="seeds 0..N-1 per prompt (default from the card)")
    tr.add_argument("--steps", type=_positive_int, default=50, metavar="T", help="denoising steps (default 50)")
    tr.add_argument("--full-latents", action="store_true", help="also store every latent x_t (large)")
    tr.add_argument("--overwrite", action="store_true", help="replace a run recorded with other settings")
    tr.add_argument("--device", default="cpu", help="torch device (default cpu)")
    tr.set_defaults(func=cmd_trace)

    claims = sub.add_parser("claims", help="list the claims, or show one claim file")
    claims.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    claims.add_argument("id", nargs="?", help="claim id for `show`")
    claims.set_defaults(func=cmd_claims)

    models = sub.add_parser("models", help="list the model cards")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MemharnessError as exc:
        print(f"memharness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memharness: interrupted; finished prompts are kept, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
