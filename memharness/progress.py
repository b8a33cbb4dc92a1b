"""Progress of long commands (trace, mitigate, score, report, data fetch, generate, check --null), one helper for all.

In a terminal it is a rich progress bar on standard error that disappears when done. Elsewhere
(``NO_COLOR`` set, or standard error not a terminal: CI logs, ``nohup``, a pipe) a bar would
print nothing until the end, so it prints one plain line each time another 10 % is done, with the
rate and the time left::

    trace analytic ddim 8 seeds g=1,7.5: 4/32 prompts (12 %), 1.9 prompts/s, ETA 15 s

Items skipped because an earlier run finished them (a resumed trace) count as done but not in
the rate, so the ETA is about the work that is left.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, TextIO


def is_plain(stream: TextIO | None = None) -> bool:
    """True when output should be plain lines: NO_COLOR set, or the stream is not a terminal."""
    stream = stream or sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return bool(os.environ.get("NO_COLOR")) or not tty


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 2 h 04 min."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _rate(per_second: float, unit: str) -> str:
    if per_second >= 1 or per_second == 0:
        return f"{per_second:,.1f} {unit}/s"
    return f"{1 / per_second:,.1f} s per {unit.rstrip('s') or unit}"


class LongWork:
    """A context manager: ``with LongWork("trace", label, unit="prompts") as work: work.update(done, total)``.

    ``update(done, total, skipped=True)`` marks an item finished by an earlier run; ``note`` adds a
    short text (e.g. "1,234 UNet evals/s") to the bar and to the plain lines.
    """

    def __init__(self, verb: str, label: str, *, unit: str = "prompts", total: int | None = None,
                 stream: TextIO | None = None, plain: bool | None = None, steps: int = 10):
        self.verb, self.label, self.unit, self.total = verb, label, unit, total
        self.stream = stream or sys.stderr
        self.plain = is_plain(self.stream) if plain is None else plain
        self.steps = steps  # plain lines: one per 1/steps of the total (10 %)
        self.done = 0
        self.skipped = 0
        self.note = ""
        self._printed = 0  # the last tenth a plain line was printed for
        self._started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self.lines: list[str] = []  # the plain lines printed (tests, summaries)

    # ----------------------------------------------------------------- context
    def __enter__(self) -> LongWork:
        self._started = time.perf_counter()
        if not self.plain:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(file=self.stream, highlight=False)
            self._bar = Progress(TextColumn(f"[bold]{self.verb}[/] {{task.description}}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn(f"{self.unit} {{task.fields[note]}}"),
                                 TimeRemainingColumn(), console=console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, note="", markup=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    # ----------------------------------------------------------------- updates
    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def rate(self) -> float:
        """Items per second, over the items this run did (skipped ones excluded)."""
        worked = self.done - self.skipped
        return worked / self.elapsed if worked > 0 and self.elapsed > 0 else 0.0

    def eta(self) -> float:
        rate = self.rate()
        if self.total is None or rate <= 0:
            return math.nan
        return max(0, self.total - self.done) / rate

    def update(self, done: int, total: int | None = None, *, skipped: bool = False, note: str | None = None) -> None:
        """``done`` items finished of ``total``; the item just finished was skipped (done before)."""
        if total is not None:
            self.total = total
        if skipped:
            self.skipped += max(1, done - self.done)
        self.done = done
        if note is not None:
            self.note = note
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total, note=self.note)
        else:
            self._plain_line()

    def advance(self, n: int = 1, **kwargs: Any) -> None:
        self.update(self.done + n, **kwargs)

    def _plain_line(self) -> None:
        if not self.total:
            return
        tenth = min(self.steps, self.done * self.steps // self.total)
        if tenth <= self._printed and self.done < self.total:
            return
        if self.done >= self.total and self._printed >= self.steps:
            return
        self._printed = self.steps if self.done >= self.total else tenth
        if tenth == 0:
            return
        self.emit(self.line())

    def line(self) -> str:
        parts = [f"{self.done}/{self.total} {self.unit} ({100 * self.done // max(1, self.total or 1)} %)"]
        if self.skipped:
            parts.append(f"{self.skipped} done before")
        if self.done - self.skipped > 0:
            parts.append(_rate(self.rate(), self.unit))
        if self.total is not None and self.done < self.total:
            parts.append(f"ETA {duration(self.eta())}")
        else:
            parts.append(f"{duration(self.elapsed)}")
        if self.note:
            parts.append(self.note)
        return f"{self.verb} {self.label}: " + ", ".join(parts)

    def emit(self, text: str) -> None:
        self.lines.append(text)
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe: progress is not worth failing the work
            pass
