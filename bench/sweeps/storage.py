"""Optuna storages from one string (`hydra.sweeper.storage`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

log = logging.getLogger(__name__)


def make_storage(spec: str | None) -> Any:
    """An Optuna storage from `hydra.sweeper.storage`.

    None: in memory (lost at exit). A URL (`sqlite:///...`, `postgresql://...`): returned as
    is, for Optuna to open as an RDBStorage. Anything else is a file path, optionally written
    `journal:PATH`: a JournalStorage on a JournalFileBackend (file-locked appends), safe for
    several processes on one host - parallel sweeps of one study, and jobs reporting pruning
    values. SQLite is not meant for parallel writers.
    """
    if spec is None:
        return None
    spec = str(spec)
    if "://" in spec:
        if spec.startswith("sqlite:///"):
            Path(spec.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return spec
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(spec.removeprefix("journal:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    return JournalStorage(JournalFileBackend(str(path)))


def repair_journal(path: Path) -> int:
    """Drop the records of the journal file `path` that are not whole JSON lines (a power cut
    or kill -9 mid-append leaves half a line; Optuna then fails with a JSONDecodeError once a
    record follows it and loads none of the study). The file is first copied to `<path>.bak`;
    a WARNING names both. Runs under the journal's own lock, so no writer appends meanwhile.
    Returns how many records were dropped. Reads the whole file, as Optuna's load does."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
        lines = data.splitlines(keepends=True)
        kept = [line for line in lines if _whole_record(line)]
        if len(kept) == len(lines):
            return 0
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
        with open(path, "r+b") as handle:  # rewritten in place: the writers' inode stays
            handle.write(b"".join(kept))
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        lock.release()
    dropped = len(lines) - len(kept)
    log.warning(f"journal {path}: dropped {dropped} torn record(s) (not whole JSON lines); "
                f"the file as it was is kept in {backup}")
    return dropped


def _whole_record(line: bytes) -> bool:
    if not line.endswith(b"\n"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def open_storage(spec: str | None) -> Any:
    """`make_storage(spec)` as an optuna BaseStorage object (a URL opened as RDBStorage), for
    the storage's public lookups (study id by name, trial id by number)."""
    from optuna.storages import RDBStorage

    storage = make_storage(spec)
    if storage is None:
        raise ConfigError("an in-memory study (hydra.sweeper.storage=null) cannot be reached "
                         "from the jobs: give a storage file or URL")
    return RDBStorage(storage) if isinstance(storage, str) else storage
