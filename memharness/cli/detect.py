"""``memharness detect``: detectors (App H's δ per reference, Wen et al.) scored on one model's fixture."""

from __future__ import annotations

import argparse
import sys

from memharness.cli.options import add_fixture_options, positive_int
from memharness.cli.runtime import display_path, fixture_targets, open_fixture, terminal


def add_parser(subparsers) -> None:
    detect = subparsers.add_parser("detect", help="memorization detectors (App H's δ(t), Wen et al.) scored on a "
                                                  "model's fixture: AUC, TPR at 1%% FPR, detection step")
    add_fixture_options(detect)
    detect.add_argument("--gamma", type=float, default=0.2, metavar="γ",
                        help="App H's margin: flag at δ > −γ (default 0.2, Fig 25)")
    detect.add_argument("--window", type=positive_int, default=10, metavar="K",
                        help="δ score = max δ over states 1..K (default 10)")
    detect.add_argument("--rho2", type=float, metavar="R",
                        help="ρ², the squared data norm the online reference x̂0(t) is rescaled to "
                             "(default d, the latent size: unit-variance latents)")
    detect.add_argument("--wen-start", type=int, default=0, metavar="S", help="Wen score from step S (default 0)")
    detect.add_argument("--wen-end", type=int, default=1, metavar="E",
                        help="Wen score up to step E, exclusive (default 1: the first step only)")
    detect.add_argument("--wen-generations", type=positive_int, default=4, metavar="N",
                        help="Wen score over the first N seeds (default 4)")
    detect.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    detect.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """AUC, TPR at 1 % FPR and detection steps of each detector, as a table or JSON."""
    import dataclasses
    import json

    from memharness.detection import evaluate_detectors

    [(model, root)] = fixture_targets([args.model] if args.model else [], args.fixtures)
    _, fixture = open_fixture(model, root)
    result = evaluate_detectors(fixture, gamma=args.gamma, window=args.window, rho2=args.rho2,
                                wen_start=args.wen_start, wen_end=args.wen_end, wen_generations=args.wen_generations)
    result = dataclasses.replace(result, fixture=display_path(root))
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return 0
    from memharness.report.detectors import detector_table, note_lines

    console, plain = terminal()
    console.print(detector_table(result, plain=plain))
    for line in note_lines(result):
        console.print(line, soft_wrap=True, markup=False)
    return 0
