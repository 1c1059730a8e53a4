"""Loaded, split and audited data, and the fitted stages, kept for the next cell of a grid.

The cells of a grid usually differ only after the data (model, selector, threshold), and each
would otherwise load, split and audit the same rows again; cells that differ only in their
model would fit the same preprocessing and selector again (a random forest or an autoencoder
for `selector=rf_importance|autoencoder`), and cells that differ only in their threshold (a
threshold grid, an epsilon sweep) the same pipeline. A result is reused only when everything
its stage reads is equal: the content hash of the data files (bench.resume.data_hash, so an
edited file is read again), the resolved dataset, split and audit settings, and the seed; for
the preprocessing also its resolved settings, for the selector also its own, for the whole
fit also the model's. One entry per stage is kept, and a stage that is made anew drops the
later stages' entries first, so memory stays at one dataset's worth whatever the grid. Reuse
is on only while a process runs a grid or a sweep (bench.app turns it on for Hydra's multirun);
a single run, or a program calling run_experiment itself, loads afresh every time.

The frames, the fitted stages and the matrices they made are shared, not copied: nothing along
the path writes to them (sklearn, xgboost and Keras read their inputs, scoring reads the fitted
pipeline; the
evaluation builds new frames), and tests run cells back to back in one process and compare
them with the same cells run alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
T = TypeVar("T")
_kept: dict[str, tuple[str, Any]] = {}  # stage -> (key, value)
_reused: dict[str, bool] = {}  # stage -> whether its last `kept` call returned a kept value
_reusing = False
# Each stage's key extends the previous one's, so a miss drops the later stages' entries too.
# ("fit" is looked up first, around "preprocess" and "select": its miss drops only itself.)
_STAGES = ("split", "audit", "preprocess", "select", "fit")


def reuse_across_cells(on: bool) -> None:
    """Turn reuse on (a grid or sweep in this process) or off (and drop what is kept)."""
    global _reusing
    _reusing = on
    if not on:
        forget()


def data_key(cfg: DictConfig) -> str:
    """What loading and splitting read: the content of every file the loader reads (the
    cell identity's bench.resume.data_hash, so an edited file, or another file behind the same
    glob, is loaded again), the resolved dataset and split settings, the seed."""
    from bench.resume import data_hash

    return _digest(data_hash(cfg.dataset), _plain(cfg.dataset), _plain(cfg.split), cfg.seed)


def audit_key(cfg: DictConfig) -> str:
    """What the audit reads besides the splits: its own settings."""
    return _digest(data_key(cfg), _plain(cfg.audit))


def preprocess_key(cfg: DictConfig) -> str:
    """What fitting the preprocessing reads besides the audited splits: its settings
    (resolved, so `${seed}` and other interpolations count with their values)."""
    return _digest(audit_key(cfg), _plain(cfg.preprocess))


def select_key(cfg: DictConfig) -> str:
    """What fitting the selector reads: the preprocessed splits and its settings."""
    return _digest(preprocess_key(cfg), _plain(cfg.selector))


def fit_key(cfg: DictConfig) -> str:
    """What fitting the whole pipeline reads: the selected features and the model settings."""
    return _digest(select_key(cfg), _plain(cfg.model))


def kept(stage: str, key: str, make: Callable[[], T]) -> T:
    """`make()`, or the value it returned for the same `stage` and `key` earlier in this
    process while reuse is on (only the last key per stage is kept)."""
    _reused[stage] = False
    if not _reusing:
        return make()
    held = _kept.get(stage)
    if held is not None and held[0] == key:
        log.debug(f"[{stage}] reusing the previous cell's result")
        _reused[stage] = True
        return held[1]
    for dropped in _STAGES[_STAGES.index(stage):] if stage in _STAGES else (stage,):
        _kept.pop(dropped, None)  # free old values (this stage's, and later stages' whose keys
        # extend this one's, so they cannot match any more) before making the new one
    value = make()
    _kept[stage] = (key, value)
    return value


def reused(stage: str) -> bool:
    """Whether the last `kept` call for `stage` returned the previous cell's value."""
    return _reused.get(stage, False)


def forget() -> None:
    """Drop everything kept (tests; a process that wants its memory back)."""
    _kept.clear()
    _reused.clear()


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
