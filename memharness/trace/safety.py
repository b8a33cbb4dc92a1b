"""Containment and locking for fixture folders and the files memharness writes.

One id rule (:func:`check_id`) for every name that becomes part of a path: prompt ids
(``<sampler>/<id>.safetensors``, image folders), model ids (``reports/<id>``) and the ids
``data fetch`` turns into image file names. Paths a manifest names are resolved inside their
folder (:func:`contained`), never outside it. Outputs (``--output``) go where they are asked
to go without replacing what is not a regular file (:func:`write_output`). Every writer of a
folder holds its lock (:class:`FolderLock`): a second writer fails at once, naming the first.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from memharness.errors import FieldError, MemharnessError

MAX_ID_LENGTH = 200
LOCK_NAME = ".memharness.lock"
_MANIFEST = "manifest.json"


# --------------------------------------------------------------------------- ids
def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be an id (a file name inside a folder), or None when it can."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if (value.startswith(".") or len(value) > MAX_ID_LENGTH
            or any(c in value for c in "/\\\0") or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        return (f"{value!r} cannot be used as a file name (no /, \\, control characters or leading dot; "
                f"at most {MAX_ID_LENGTH} characters)")
    return None


def check_id(value: object, where: str) -> str:
    """``value`` when it is a usable id; else one line naming ``where`` (a file and key, or a flag)."""
    problem = id_problem(value)
    if problem is not None:
        raise MemharnessError(f"{where}: id {problem}")
    return value  # type: ignore[return-value]


# --------------------------------------------------------------------------- paths inside a folder
def relative_problem(rel: object) -> str | None:
    """Why a manifest's relative file entry is unsafe (absolute, ``..``, empty), or None."""
    if not isinstance(rel, str) or not rel:
        return "must be a non-empty relative path"
    if "\0" in rel or "\\" in rel:
        return f"{rel!r} holds a NUL or backslash"
    path = Path(rel)
    if path.is_absolute() or rel.startswith("/"):
        return f"{rel!r} is absolute; a fixture names its files relative to its folder"
    if any(part in ("..", "") for part in rel.split("/")) or ".." in path.parts:
        return f"{rel!r} leaves the fixture folder (..)"
    return None


def contained(root: Path, rel: str, where: str) -> Path:
    """``root / rel``, refused unless it resolves inside ``root`` (symlinks followed)."""
    problem = relative_problem(rel)
    if problem is not None:
        raise MemharnessError(f"{where}: {problem}")
    path = Path(root) / rel
    try:
        inside = path.resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # symlink loops
        inside = False
    if not inside:
        raise MemharnessError(f"{path}: points outside the fixture folder {root} (symlink?); refusing to read it")
    return path


def fixture_folder_of(path: Path) -> Path | None:
    """The fixture folder ``path`` lies in (itself or an ancestor holding a fixture manifest), or None."""
    try:
        here = Path(os.path.abspath(path)).resolve()
    except (OSError, RuntimeError):
        return None
    for folder in [here, *here.parents]:
        manifest = folder / _MANIFEST
        try:
            if manifest.is_file() and manifest.stat().st_size < 64 << 20:
                data = json.loads(manifest.read_bytes())
                if isinstance(data, dict) and "schema_version" in data and "runs" in data:
                    return folder
        except (OSError, ValueError, RecursionError):
            continue
    return None


def refuse_inside_fixture(path: Path, option: str) -> None:
    """An output must not land in a fixture folder (it could replace the manifest or a prompt file)."""
    target = Path(path)
    folder = fixture_folder_of(target if target.is_dir() else target.parent)
    if folder is not None:
        raise MemharnessError(f"{option}: {path} is inside the fixture folder {folder}; write it elsewhere")


# --------------------------------------------------------------------------- outputs
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; fixtures are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(path: Path, data: bytes, option: str) -> None:
    """Write an output file as asked: a regular file atomically, anything else (FIFO, device,
    /dev/stdout) in place; a symlink keeps being a symlink (its target is written)."""
    path = Path(path)
    try:
        refuse_inside_fixture(path, option)
        if path.exists() and not path.is_file():  # follows symlinks: /dev/stdout -> a pipe or terminal
            if path.is_dir():
                raise MemharnessError(f"{option}: {path} is a folder; give a file name")
            with open(path, "wb") as handle:  # FIFO, character device, /dev/stdout: written, not replaced
                handle.write(data)
            return
        if path.is_symlink():
            path = Path(os.path.realpath(path))  # the link stays; the regular file it points to is replaced
            refuse_inside_fixture(path, option)
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise MemharnessError(f"{option}: cannot write {path} ({exc.strerror or exc.__class__.__name__})") from None


# --------------------------------------------------------------------------- lock
def _holder_text(command: str | None) -> str:
    if command is None:
        command = " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _describe_holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, `{info['command']}` since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process"


class FolderLock:
    """An exclusive lock on a fixture (or data) folder, held by every writer.

    ``fcntl.flock`` on ``<folder>/.memharness.lock``: the kernel drops it when its holder exits,
    killed or not, so a crash never leaves the folder locked. The file holds the holder's pid,
    host and command, for the message the next writer prints. It is removed when the lock is
    released (a waiter that opened the removed file notices and retries on the new one).
    Its errors are FieldErrors on ``field``, the setting that named the folder (``out``, ``fixtures``).
    """

    def __init__(self, folder: Path, *, wait: bool = False, field: str = "out", command: str | None = None,
                 create: bool = True):
        self.folder, self.wait, self.field, self.command = Path(folder), wait, field, command
        self.create = create
        self._fd: int | None = None
        self._created_folder = False

    def __enter__(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no lock (memharness is tested on Linux and macOS)
            return self

        try:
            if self.folder.exists() and not self.folder.is_dir():
                raise FieldError(self.field, f"{self.folder} exists and is not a folder")
            if not self.folder.exists():
                if not self.create:
                    raise FieldError(self.field, f"{self.folder} not found")
                self.folder.mkdir(parents=True)
                self._created_folder = True
        except OSError as exc:
            raise FieldError(self.field, f"cannot create {self.folder} ({exc.strerror})") from None
        path = self.folder / LOCK_NAME
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            except OSError as exc:
                raise MemharnessError(f"{path}: cannot open the lock file ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                holder = _describe_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
                os.close(fd)
                raise FieldError(self.field, f"another writer holds it ({holder}); wait for it to finish or pass "
                                             "{wait}", value=self.folder, mentions=("wait",)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file as we waited on it: lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_text(self.command).encode(), 0)
        self._fd = fd
        self._remove_stale_temporaries()
        return self

    def _remove_stale_temporaries(self) -> None:
        """Half-written ``.<name>.<random>.tmp`` files of writers that were killed: with the lock held,
        no live writer owns one."""
        for path in self.folder.rglob(".*.tmp"):
            try:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
            except OSError:
                pass

    def __exit__(self, *exc_info) -> None:
        if self._fd is None:
            return
        try:
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        if self._created_folder:
            try:
                self.folder.rmdir()  # only when empty: a writer that wrote nothing leaves nothing
            except OSError:
                pass
