"""Temporary folders of a run (its figures, its model before it is logged), named after the
process that made them, so that the folders of a process killed before it removed them are
removed by the next bench process that makes one (kill -9 of a grid leaves no litter)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.tracking import process_alive

_PREFIX = "bench-"  # bench-<kind>-<pid>-<random>
_cleaned = False


def make(kind: str) -> Path:
    """A new empty folder for this process's `kind` of scratch ("figures", "model")."""
    global _cleaned
    if not _cleaned:
        remove_folders_of_dead_processes()
        _cleaned = True
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{kind}-{os.getpid()}-"))


def remove_folders_of_dead_processes() -> None:
    """The scratch folders whose process no longer runs."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*-*"):
        parts = folder.name.split("-")
        if len(parts) >= 4 and parts[2].isdigit() and not process_alive(int(parts[2]), None):
            shutil.rmtree(folder, ignore_errors=True)
