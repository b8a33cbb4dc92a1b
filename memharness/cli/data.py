"""``memharness data fetch``: download a prompt set's paired training images (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memharness.cli.options import add_wait_option, positive_int
from memharness.cli.runtime import terminal, writer_lock
from memharness.errors import MemharnessError


def add_parser(subparsers) -> None:
    data = subparsers.add_parser("data", help="paired training images of a prompt set")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="download a set's paired training images (resumable)")
    fetch.add_argument("--set", default="webster", metavar="NAME", help="prompt set (default webster)")
    fetch.add_argument("--out", required=True, metavar="DIR", help="folder for images/, the manifest, prompts.jsonl")
    fetch.add_argument("--timeout", type=float, default=15.0, metavar="S", help="seconds per attempt (default 15)")
    fetch.add_argument("--retries", type=int, default=3, metavar="N", help="retries of transient failures (default 3)")
    fetch.add_argument("--backoff", type=float, default=1.0, metavar="S",
                       help="first wait before a retry, doubled each time (default 1)")
    fetch.add_argument("--max-redirects", type=int, default=5, metavar="N", help="redirects to follow (default 5)")
    fetch.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                       help="downloads at once (default 8)")
    fetch.add_argument("--max-bytes", type=positive_int, default=20_000_000, metavar="B",
                       help="size cap per image (default 20 MB)")
    add_wait_option(fetch, folder="--out")
    fetch.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    console, plain = terminal(sys.stderr)
    with writer_lock(out, args), LongWork("fetch", args.set, unit="images", total=len(items), plain=plain) as work:
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
