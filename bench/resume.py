"""A cell's identity, and `resume=true`: reuse a cell's finished run (docs/resume.md).

A cell is one Hydra job. Its identity joins four parts:

- the config id (`tracking.config_id`: the unresolved config without seed, tracking, paths,
  hydra, evaluation, resume keys; plus the chosen group options),
- the seed,
- the content hash of the data: the sha256 of every file the dataset's loader reads (the
  table loader's `path` / `test_path` resolved as it resolves them, FILE_LISTS; the other
  loaders' `*_file`, `*_files` found in its data_dir), or for generated data the hash of its
  resolved config (the generator is deterministic in it),
- the code version: the git commit of bench, else its package version.

`cell_identity` is the one function that says which runs are "the same cell": every run is
tagged with `cell_id` (all four parts) and `cell_base_id` (without the code version, which
`resume_code=any` matches). The data hash is computed before any data is loaded: file hashes
come from the Parquet cache's stat index (bench.data.cache), so an unchanged file is not
re-read; without a cache_dir the files are hashed once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench import cells, tracking
from bench.errors import ConfigError
from bench.objective import objective_value

CELL_TAG, BASE_TAG = "cell_id", "cell_base_id"
RESUME_CODE = ("commit", "any")  # what code counts as the same: the same commit, or any
# Loaders that name their files otherwise than by `*_file` / `*_files` keys: the function
# listing the files a load with the same options reads ({key: path}, resolved as the loader
# resolves them: a glob or folder to the files it holds now).
FILE_LISTS = {"bench.data.table.load": "bench.data.table.data_files"}


@dataclass(frozen=True)
class CellIdentity:
    config_id: str
    seed: str
    data_hash: str
    code_version: str

    @property
    def base_id(self) -> str:
        """16 hex of config id + seed + data hash (the code version left out)."""
        return _hex(self.config_id, self.seed, self.data_hash)

    @property
    def cell_id(self) -> str:
        """16 hex of all four parts: the identity resume matches by default."""
        return _hex(self.config_id, self.seed, self.data_hash, self.code_version)

    def tags(self) -> dict[str, str]:
        return {CELL_TAG: self.cell_id, BASE_TAG: self.base_id,
                "cell.data_hash": self.data_hash, "cell.code_version": self.code_version}


def _hex(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`git:<commit>` of the bench source, else `bench-<version>` (an installed wheel)."""
    commit = tracking.git_commit()
    if commit != "unknown":
        return f"git:{commit}"
    from bench import __version__

    return f"bench-{__version__}"


def cell_identity(cfg: DictConfig, choices: Mapping[str, str]) -> CellIdentity:
    """The identity of the cell `cfg` (one job's config) with Hydra's group `choices`."""
    unresolved = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(unresolved, dict)
    return CellIdentity(tracking.config_id(unresolved, choices), str(cfg.seed),
                        data_hash(cfg.dataset), code_version())


def data_hash(dataset: DictConfig) -> str:
    """`files:<hex>` of the sha256 of every file the dataset's loader reads (`data_files`;
    keyed by config key or role, so editing a file changes the hash, and so does adding a
    file to a table's folder or glob); `generated:<hex>` of the resolved config for a
    dataset that reads no files (no data_dir)."""
    plain = OmegaConf.to_container(dataset, resolve=True)
    assert isinstance(plain, dict)
    if str(plain.get("_target_")) not in FILE_LISTS and not plain.get("data_dir"):
        return "generated:" + _hex(json.dumps(plain, sort_keys=True, default=str))
    from bench.data.cache import TableCache

    cache = TableCache(plain.get("cache_dir"))
    digests = {key: _file_sha256(cache, path) for key, path in data_files(plain).items()}
    return "files:" + _hex(json.dumps(digests, sort_keys=True))


def data_files(plain: Mapping[str, Any]) -> dict[str, Path]:
    """{key: path} of every file a load of the dataset config `plain` (resolved) reads: its
    loader's own list (FILE_LISTS), else the `*_file` values and `*_files` mappings found in
    its data_dir (plain or .gz, as the loaders look them up; a missing optional file is not
    read, so not listed). Raises the DataError the loader would for a name that resolves
    to nothing it can read."""
    target = str(plain.get("_target_"))
    if target in FILE_LISTS:
        module, _, name = FILE_LISTS[target].rpartition(".")
        options = {k: v for k, v in plain.items() if k != "_target_"}
        return dict(getattr(importlib.import_module(module), name)(**options))
    from bench.data.files import find

    named = {}
    for key, value in plain.items():
        if key.endswith("_file") and value:
            named[key] = str(value)
        elif key.endswith("_files") and isinstance(value, Mapping):
            named.update({f"{key}.{k}": str(v) for k, v in value.items() if v})
    found = {key: find(plain["data_dir"], name) for key, name in sorted(named.items())}
    return {key: path for key, path in found.items() if path is not None}


_hashed: dict[tuple[str, tuple[tuple[str, int], ...]], str] = {}


def _file_sha256(cache: Any, path: Path) -> str:
    """sha256 of `path`: the cache's stat index when it knows the file, else hashed once per
    process while it is unchanged (the index's test: size, mtime, ctime, inode), and
    remembered in the index for the loader."""
    from bench.data.cache import stat_key

    key = (str(path.resolve()), tuple(sorted(stat_key(path).items())))
    if key not in _hashed:
        digest = cache.digest(path)
        cache.remember(path, digest)
        _hashed[key] = digest.sha256
    return _hashed[key]


# ------------------------------------------------------------------------------ resume
@contextmanager
def claim(cfg: DictConfig, identity: CellIdentity, echo: Any = print) -> Iterator[None]:
    """With `resume=true`: hold this host's claim on the cell while the body runs, so two
    commands resuming one grid together compute each cell once. The claim is an exclusive
    lock (filelock: flock, released when the process dies, kill -9 included) on
    `<sqlite file>.cells/<cell id>.lock`, or for a server store on
    `<paths.cache_dir>/claims/<hash of the store URI>/<cell id>.lock`. A process finding the
    cell claimed prints one line and waits; then `reuse_finished` finds the other's run.
    Processes on other hosts sharing a server store do not see each other's claims."""
    if not cfg.get("resume", False):
        yield
        return
    from filelock import FileLock, Timeout

    uri = str(cfg.tracking.uri)
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///").split("?", 1)[0] + ".cells")
    else:
        folder = (Path(str(cfg.paths.cache_dir)).expanduser() / "claims"
                  / hashlib.sha256(uri.encode()).hexdigest()[:16])
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"{identity.cell_id}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        echo(f"[resume] cell {identity.cell_id} is being computed by another bench command on "
             "this host: waiting for it to end")
        lock.acquire()
    # another command's run may still be RUNNING after its claim ended: a grid ends a run once
    # its figures are logged, while its next cell already runs (experiment.finish_runs_later)
    _wait_for_live_runs(uri, identity.cell_id)
    try:
        yield
    finally:
        lock.release()


CLAIM_WAIT_S = 600.0  # the longest a run of a live process is waited for after its claim ends


def _wait_for_live_runs(uri: str, cell_id: str) -> None:
    """Until no run of the cell `cell_id` is RUNNING in a live process on this host (at most
    CLAIM_WAIT_S): then the cell's FINISHED run, if any, is there to reuse."""
    import time

    deadline = time.monotonic() + CLAIM_WAIT_S
    while time.monotonic() < deadline and tracking.live_runs_of_cell(uri, CELL_TAG, cell_id):
        time.sleep(0.25)


def reuse_finished(cfg: DictConfig, choices: Mapping[str, str], identity: CellIdentity,
                   echo: Any = print) -> float | list[float] | None:
    """With `resume=true`: the objective of this cell's earliest FINISHED run, after printing
    one line naming it and recording the cell as SKIPPED (bench.cells); None when the cell has
    no finished run (or that run lacks the objective metric), so the cell runs."""
    if not cfg.get("resume", False):
        return None
    by_code = cfg.get("resume_code", "commit") == "commit"
    tag, value = (CELL_TAG, identity.cell_id) if by_code else (BASE_TAG, identity.base_id)
    # the experiment bench.experiment logs the cell to
    experiment = str(cfg.tracking.experiment or choices.get("dataset", "?"))
    run = tracking.find_finished_cell(str(cfg.tracking.uri), experiment, tag, value)
    if run is None:
        return None
    metrics = run.data.metrics
    try:
        objective = objective_value(metrics, cfg.optimized_metric)
    except ConfigError:  # the run predates the objective metric: compute the cell again
        return None
    echo(f"[resume] skipped cell {identity.cell_id}: reused FINISHED run {run.info.run_id} "
         f"({cfg.optimized_metric}={objective})")
    cells.record(cells.CellOutcome(cells.SKIPPED, run.info.run_id, objective,
                                   metrics.get("test_f1"), 0.0))
    return objective
