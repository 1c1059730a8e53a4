"""Output files written whole: a report, an analysis, their tables.

Each file goes to a temporary file in its folder and is moved into place with `os.replace`,
so a kill or a full disk leaves the previous file or none, never a truncated one under the
final name. (The standard library has no atomic write; `atomicwrites`, which had one, is
unmaintained.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from bench.errors import BenchError


class OutputError(BenchError):
    """An output file cannot be written (no space left, no permission, a read-only disk)."""


def write_whole(path: str | Path, data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` whole; OutputError naming the path and the
    reason when it cannot be written, with no temporary file left behind."""
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(blob)
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from error
    return path


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """`frame` (without its index) as CSV at `path`, written whole (see write_whole)."""
    return write_whole(path, frame.to_csv(index=False))
