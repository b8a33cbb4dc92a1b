"""The published memorization prompt sets that ship with memharness.

===========  =======================  ====  =====================================================
name         file (``data/sets/``)    rows  what
===========  =======================  ====  =====================================================
``webster``  ``webster-sdv1.jsonl``    500  Webster (2023), SD v1.4, MV / TV / RV / N labels
``wen``      ``wen-sdv1-500.jsonl``    500  Wen et al. (2024) memorized prompts, NeMo VM / TM labels
``sd2-219``  ``sd2-219.jsonl``         219  SD v2 memorized prompts (Ren et al. 2024), text only
===========  =======================  ====  =====================================================

``data/sets/PROVENANCE.md`` says where each came from, under what license, and how
``scripts/convert_prompt_sets.py`` made it. The files hold prompts and LAION metadata only; the paired
training images are not included: pass their paths to :func:`as_prompts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from memharness.data.prompts import CATEGORIES
from memharness.errors import MemharnessError
from memharness.models.base import Prompt

_FILES = {  # short name -> file under memharness/data/sets/
    "sd2-219": "sd2-219.jsonl",
    "webster": "webster-sdv1.jsonl",
    "wen": "wen-sdv1-500.jsonl",
}
_CORE = ("id", "text", "url", "category", "laion_index")


@dataclass(frozen=True)
class SetEntry:
    """One prompt of a set; ``extra`` holds the set's other fields (scores, labels, seeds, ...)."""

    id: str
    text: str
    url: str | None = None  # LAION URL of the paired training image, where the source gives it
    category: str | None = None  # Webster (2023) category: MV, TV, RV or N, where known
    laion_index: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


def available_sets() -> list[str]:
    """Short names :func:`load_set` accepts, sorted."""
    return sorted(_FILES)


def _file_name(name: str) -> str:
    if name in _FILES:
        return _FILES[name]
    for file in _FILES.values():  # the file's own name works too: "webster-sdv1", "wen-sdv1-500.jsonl"
        if name in (file, file.removesuffix(".jsonl")):
            return file
    raise MemharnessError(f"unknown prompt set {name!r}; known sets: {', '.join(available_sets())}")


def load_set(name: str) -> list[SetEntry]:
    """The entries of set ``name`` (see :func:`available_sets`), in the set's order."""
    return list(_load(_file_name(name)))


@cache
def _load(file: str) -> tuple[SetEntry, ...]:
    where = f"memharness/data/sets/{file}"
    try:
        text = resources.files("memharness.data").joinpath("sets").joinpath(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MemharnessError(f"{where}: missing from this installation; reinstall memharness") from None
    entries, ids = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        at = f"{where}: line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise MemharnessError(f"{at} is not valid JSON") from None
        if not isinstance(row, dict):
            raise MemharnessError(f"{at} is not a JSON object")
        entry_id, prompt = row.get("id"), row.get("text")
        if not isinstance(entry_id, str) or not entry_id.strip():
            raise MemharnessError(f"{at} needs a non-empty string 'id'")
        if entry_id in ids:
            raise MemharnessError(f"{at} repeats id {entry_id!r}")
        if not isinstance(prompt, str) or not prompt.strip():
            raise MemharnessError(f"{at} needs a non-empty string 'text'")
        url, category, index = row.get("url"), row.get("category"), row.get("laion_index")
        if url is not None and not isinstance(url, str):
            raise MemharnessError(f"{at}: 'url' must be a string")
        if category is not None and category not in CATEGORIES:
            raise MemharnessError(f"{at}: 'category' must be one of {', '.join(CATEGORIES)}, not {category!r}")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            raise MemharnessError(f"{at}: 'laion_index' must be an integer")
        ids.add(entry_id)
        entries.append(SetEntry(
            id=entry_id, text=prompt, url=url, category=category, laion_index=index,
            extra={k: v for k, v in row.items() if k not in _CORE},
        ))
    if not entries:
        raise MemharnessError(f"{where}: no entries")
    return tuple(entries)


def category_counts(entries: list[SetEntry]) -> dict[str, int]:
    """Entries per Webster category, in the order MV, TV, RV, N; categories with no entry are left
    out, and so are entries without a category (``sum`` can be less than ``len(entries)``)."""
    counts = {c: 0 for c in CATEGORIES}
    for entry in entries:
        if entry.category is not None:
            counts[entry.category] += 1
    return {c: n for c, n in counts.items() if n}


def as_prompts(entries: list[SetEntry], images: dict[str, str] | None = None) -> list[Prompt]:
    """The entries as :class:`Prompt` objects; ``images`` maps an entry id to its training image path.

    ``kind`` is left unset: a set's membership says how its prompts were found, not a per-prompt truth.
    """
    images = images or {}
    return [Prompt(id=e.id, text=e.text, image=images.get(e.id), category=e.category) for e in entries]
