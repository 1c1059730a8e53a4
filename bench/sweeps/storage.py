"""Optuna storages from one string (`hydra.sweeper.storage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import ConfigError


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
    return JournalStorage(JournalFileBackend(str(path)))


def open_storage(spec: str | None) -> Any:
    """`make_storage(spec)` as an optuna BaseStorage object (a URL opened as RDBStorage), for
    the storage's public lookups (study id by name, trial id by number)."""
    from optuna.storages import RDBStorage

    storage = make_storage(spec)
    if storage is None:
        raise ConfigError("an in-memory study (hydra.sweeper.storage=null) cannot be reached "
                         "from the jobs: give a storage file or URL")
    return RDBStorage(storage) if isinstance(storage, str) else storage
