"""The data shipped inside the package, read through importlib.resources: the claim files
(``memharness/claims/definitions/*.yaml``) and the trace fixtures of the shipped models
(``memharness/fixtures/<model>/``).

Both are read-only. A fixture a user records lives in ``./fixtures/<model>`` of the working
directory (or wherever --out / --fixtures say); writers never aim at the package.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path

from memharness.errors import FieldError

# A package imported from a zip has no folders on disk: its resources are extracted once per process.
_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def _package_path(*parts: str) -> Path:
    resource = resources.files("memharness")
    for part in parts:  # Traversable.joinpath takes one part on Python 3.10
        resource = resource / part
    if isinstance(resource, Path):  # an ordinary install (wheel, editable, source tree)
        return resource
    return _EXTRACTED.enter_context(resources.as_file(resource))


def claims_folder() -> Path:
    """The shipped claim files."""
    return _package_path("claims", "definitions")


def shipped_fixtures() -> Path:
    """The folder of the shipped fixtures, one ``<model>/`` each."""
    return _package_path("fixtures")


def shipped_fixture(model: str) -> Path:
    """The shipped fixture of ``model`` (absent for models that ship none)."""
    return shipped_fixtures() / model


def local_fixture(model: str) -> Path:
    """``./fixtures/<model>``: where a user's fixture of ``model`` lives and where writers aim by default."""
    return Path("fixtures") / model


def writable_fixture(model: str) -> Path:
    """The recorded fixture that ``score`` / ``mitigate`` update when no --fixtures is given: ``./fixtures/<model>``.

    Never the shipped one: without a local fixture the error says how to get one."""
    local = local_fixture(model)
    if (local / "manifest.json").is_file():
        return local
    hint = (f"copy the shipped one there (cp -r {shipped_fixture(model)} {local}) or "
            if (shipped_fixture(model) / "manifest.json").is_file() else
            f"record one with `memharness trace --model {model}`, or ")
    raise FieldError("fixtures", f"no fixture here to update (the shipped fixtures are read-only); "
                                 f"{hint}give another folder", value=local)


def is_shipped(path: Path) -> bool:
    """Whether ``path`` is, or lies inside, the shipped fixtures (symlinks followed)."""
    root = shipped_fixtures().resolve()
    target = Path(path).resolve()
    return target == root or root in target.parents


def refuse_shipped(path: Path, field: str) -> None:
    """Writers call this before touching ``path``, given in ``field``: the shipped fixtures are package data,
    read-only."""
    if is_shipped(path):
        raise FieldError(field, f"{path} is shipped inside the memharness package and is read-only; give your "
                                "own folder, or run from a folder where fixtures/<model> holds (or will hold) your "
                                "recording")
