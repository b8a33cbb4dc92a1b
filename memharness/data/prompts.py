"""Prompt files: which prompts to trace and the training image each is paired with.

JSON Lines (``.jsonl``, one object per line), a JSON array (``.json``) or CSV with a header
(``.csv``). Fields: ``id`` (unique), ``text``, ``image`` (path, relative to the file's folder),
optional ``kind`` ("memorized" / "normal", when known), ``category`` (Webster's MV / TV / RV / N)
and ``duplicates`` (an integer ≥ 0: copies of the image in training, for model organisms). Ids
follow the one id rule of ``memharness.trace.safety`` (they become file names).
For example::

    {"id": "p000", "text": "A photo of a cat", "image": "images/p000.jpg"}
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from memharness.errors import FieldError, MemharnessError
from memharness.models.base import Prompt
from memharness.trace.safety import check_id

_PROMPT_FIELDS = {f.name for f in dataclasses.fields(Prompt)}  # "duplicates" where Prompt carries it
_FIELDS = ("id", "text", "image", "kind", "category", "duplicates")
CATEGORIES = ("MV", "TV", "RV", "N")  # Webster (2023): matching, template, retrieved verbatim; none


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs; ``where`` names the line or item for error messages."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets write a byte-order mark
    except UnicodeDecodeError:
        raise MemharnessError(f"{path}: not UTF-8 text; save the prompt file as UTF-8") from None
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((f"line {number}", json.loads(line)))
                except json.JSONDecodeError:
                    raise MemharnessError(f"{path}: line {number} is not valid JSON") from None
                except RecursionError:
                    raise MemharnessError(f"{path}: line {number} nests too deeply") from None
        return rows
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise MemharnessError(f"{path}: not valid JSON") from None
        except RecursionError:
            raise MemharnessError(f"{path}: nests too deeply") from None
        if not isinstance(data, list):
            raise MemharnessError(f"{path}: expected a JSON array of prompt objects")
        return [(f"item {i}", row) for i, row in enumerate(data)]
    if path.suffix == ".csv":
        return [(f"line {i + 2}", row) for i, row in enumerate(csv.DictReader(text.splitlines()))]
    raise MemharnessError(f"{path}: unknown prompt file type; use .jsonl, .json or .csv")


def load_prompt_file(path: str | Path) -> list[Prompt]:
    path = Path(path)
    if not path.is_file():
        raise FieldError("prompts", f"{path} not found")
    prompts, seen = [], set()
    for where, row in _rows(path):
        if not isinstance(row, dict):
            raise MemharnessError(f"{path}: {where} is not an object with id, text, image")
        for key in ("id", "text"):
            if not isinstance(row.get(key), str) or not row[key].strip() and key == "id":
                raise MemharnessError(f"{path}: {where} needs a string {key!r}")
        if None in row:
            raise MemharnessError(f"{path}: {where} has more cells than the header has columns")
        unknown = sorted(set(row) - set(_FIELDS))
        if unknown:
            raise MemharnessError(f"{path}: {where} has unknown field {unknown[0]!r}; fields: {', '.join(_FIELDS)}")
        check_id(row["id"], f"{path}: {where}")
        duplicates = row.get("duplicates")
        if duplicates not in (None, ""):
            if isinstance(duplicates, str) and duplicates.strip().isdigit():
                duplicates = int(duplicates)  # a CSV cell
            if not isinstance(duplicates, int) or isinstance(duplicates, bool) or not 0 <= duplicates <= 10**9:
                raise MemharnessError(f"{path}: {where} field 'duplicates' must be an integer ≥ 0")
        else:
            duplicates = None
        if row["id"] in seen:
            raise MemharnessError(f"{path}: {where} repeats id {row['id']!r}")
        if row.get("kind") not in (None, "", "memorized", "normal"):
            raise MemharnessError(f"{path}: {where} kind must be 'memorized' or 'normal'")
        if row.get("category") not in (None, "", *CATEGORIES):
            raise MemharnessError(f"{path}: {where} category must be one of {', '.join(CATEGORIES)}")
        seen.add(row["id"])
        image = row.get("image") or None
        if image is not None and not isinstance(image, str):
            raise MemharnessError(f"{path}: {where} field 'image' must be a path string")
        extra = {"duplicates": duplicates} if duplicates is not None and "duplicates" in _PROMPT_FIELDS else {}
        prompts.append(Prompt(
            id=row["id"], text=row["text"], kind=row.get("kind") or None, category=row.get("category") or None,
            image=str((path.parent / image).resolve()) if image else None, **extra,
        ))
    if not prompts:
        raise MemharnessError(f"{path}: no prompts")
    return prompts
