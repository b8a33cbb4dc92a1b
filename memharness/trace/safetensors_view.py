"""Zero-copy reading of safetensors bytes: a file read into a reusable buffer, its header parsed and
checked against the buffer's bounds, and the wanted arrays returned as read-only views of it.

The ``safetensors`` package copies every array of a file; the fixture reader wants a few arrays of each
of hundreds of files, so it reads each file once into one buffer and views only those.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memharness.errors import MemharnessError
from memharness.trace import validate

_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16,
              "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def read_into(path: Path, buffer: list[bytearray]) -> memoryview:
    """The bytes of ``path`` read into ``buffer`` (one bytearray, replaced by a larger one when the file does
    not fit) and a view of them; the next read overwrites it. OSError as raised."""
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        if len(buffer[0]) <= size:
            buffer[0] = bytearray(size + 1)  # a new one: views of the old stay valid
        view = memoryview(buffer[0])
        got = 0
        while True:  # to the end of the file, even if it grew since fstat
            n = handle.readinto(view[got:])
            if not n:
                break
            got += n
            if got == len(view):
                buffer[0] = bytearray(2 * got)
                buffer[0][:got] = view
                view = memoryview(buffer[0])
        return view[:got]


def st_header(data: bytes | memoryview) -> tuple[int, dict[str, Any]]:
    """The safetensors header of ``data``: (offset of the data section, {name: entry}); ValueError if malformed."""
    if len(data) < 8:
        raise ValueError("file shorter than its header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("header length beyond the end of the file")
    header = json.loads(bytes(data[8:8 + size]))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    header.pop("__metadata__", None)
    start = 8 + size
    for name, entry in header.items():
        if not (isinstance(entry, dict) and entry.get("dtype") in _ST_DTYPES
                and isinstance(entry.get("shape"), list) and isinstance(entry.get("data_offsets"), list)
                and len(entry["data_offsets"]) == 2):
            raise ValueError(f"bad header entry {name!r}")
        lo, hi = entry["data_offsets"]
        count = int(np.prod(entry["shape"], dtype=np.int64))
        itemsize = np.dtype(_ST_DTYPES[entry["dtype"]]).itemsize
        if not (0 <= lo <= hi <= len(data) - start and hi - lo == count * itemsize):
            raise ValueError(f"data offsets of {name!r} out of bounds or not its size")
    return start, header


def st_array(data: bytes | memoryview, start: int, entry: dict[str, Any]) -> np.ndarray:
    """One array of a safetensors buffer, without copying it."""
    lo, hi = entry["data_offsets"]
    dtype = np.dtype(_ST_DTYPES[entry["dtype"]]).newbyteorder("<")
    value = np.frombuffer(data, dtype=dtype, count=(hi - lo) // dtype.itemsize, offset=start + lo)
    return value.reshape(entry["shape"])


def checked_views(path: Path, data: bytes | memoryview,
                  names: Callable[[str], bool]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The accepted arrays of a checked file's bytes, as views, checked; and their offsets in the file."""
    try:
        start, header = st_header(data)
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise MemharnessError(f"{path}: not a readable safetensors file ({exc})") from None
    arrays = {name: st_array(data, start, item) for name, item in header.items() if names(name)}
    for name, value in arrays.items():
        validate.check_array(name, value, str(path))
    return arrays, {name: start + header[name]["data_offsets"][0] for name in arrays}
