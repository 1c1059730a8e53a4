"""Parquet cache of parsed, validated tables, keyed by the source file's content hash.

A table is cached as `<cache_dir>/<loader version>-<sha256 of the uncompressed source>.parquet`,
written to a temporary file in the same folder and moved into place with `os.replace`, so a
reader never sees a partial file. Nothing is cached unless the table passed validation. Each
file carries the source's sha256 and the frame's own digest (`frame_digest`) in its Parquet
metadata; a file whose content no longer matches them is discarded and rebuilt, so a checksum
verdict about the source also holds for what was read from the cache.

Hashing a source costs about as much as a quarter of parsing it, so a small index
(`file-index.json`: absolute path, size, mtime_ns, ctime_ns, inode -> checksums) lets a second
load skip re-hashing an unchanged file. The cache key is still the content hash; the index only
remembers it. Delete the cache folder at any time: it is rebuilt on the next load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench.data.files import (
    FileDigest,
    TableSpec,
    Verification,
    digest_file,
    read_table,
    source_name,
    verify_file,
)

log = logging.getLogger(__name__)

CACHE_FORMAT = "c2"  # bump when the cached layout changes for every loader (c2: digests)
META_KEY = b"bench.cache"
INDEX_NAME = "file-index.json"
_STALE_TMP_SECONDS = 3600.0


class CacheWarning(UserWarning):
    """The cache could not be read or written; the data was parsed from the source instead."""


def stat_key(path: Path) -> dict[str, int]:
    """What says a file is unchanged without reading it: size, mtime_ns, ctime_ns and inode
    (an edit, a copy over it or a rename onto it changes at least one)."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "ino": st.st_ino}


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of a frame's content: its column names, dtypes, index and every value (pandas'
    per-row hashes, which are stable across processes and Parquet round trips)."""
    head = json.dumps([[str(c) for c in frame.columns], [str(d) for d in frame.dtypes]])
    rows = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(head.encode() + rows.tobytes()).hexdigest()


def _write_parquet(frame: pd.DataFrame, target: Path, meta: dict[str, str]) -> None:
    """Write `frame` (index included) to `target` as Parquet, `meta` (the source's sha256 and
    the frame's digest) in the file's key-value metadata under `bench.cache`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=True)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, target)


def _read_parquet(target: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(frame, bench.cache metadata or {}) of a cache file."""
    import pyarrow.parquet as pq

    table = pq.read_table(target)
    raw = (table.schema.metadata or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {}
    return table.to_pandas(), meta if isinstance(meta, dict) else {}


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp)` on a temporary file next to `target`, then rename it onto `target`.

    On any failure the temporary file is removed and the exception propagates; `target` is
    either absent or a complete earlier version.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; cache files are shareable like any output
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class TableCache:
    """Parquet tables and the stat index in `cache_dir`; `cache_dir=None` disables caching."""

    def __init__(self, cache_dir: str | Path | None) -> None:
        self.dir = Path(cache_dir).expanduser() if cache_dir not in (None, "") else None

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    # -- content hashes -----------------------------------------------------------------------
    def _index(self) -> dict[str, dict]:
        if self.dir is None:
            return {}
        try:
            data = json.loads((self.dir / INDEX_NAME).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def digest(self, path: Path) -> FileDigest:
        """Checksums of `path`'s uncompressed bytes: from the index when the file is unchanged
        (same size, mtime_ns, ctime_ns and inode), else by hashing it."""
        entry = self._index().get(str(path.resolve()))
        if isinstance(entry, dict) and entry.get("stat") == stat_key(path):
            with contextlib.suppress(KeyError, TypeError):
                return FileDigest(**entry["digest"])
        return digest_file(path)

    def remember(self, path: Path, digest: FileDigest) -> None:
        """Record `path`'s checksums in the index (atomically; a failure only warns)."""
        if self.dir is None:
            return
        index = self._index()
        entry = {"stat": stat_key(path), "digest": asdict(digest)}
        if index.get(str(path.resolve())) == entry:
            return
        index[str(path.resolve())] = entry
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.dir / INDEX_NAME,
                          lambda tmp: tmp.write_text(json.dumps(index, indent=1)))
        except OSError as exc:
            warnings.warn(f"cannot write the file index in {self.dir}: {exc}", CacheWarning,
                          stacklevel=2)

    # -- tables -------------------------------------------------------------------------------
    def path_for(self, key: str) -> Path | None:
        """Where the table with cache key `key` lives (None when caching is off)."""
        return None if self.dir is None else self.dir / f"{key}.parquet"

    def get(self, key: str, source_sha256: str) -> pd.DataFrame | None:
        """The cached table for `key`, or None when missing. A file that cannot be read, was
        not made from the source whose sha256 is `source_sha256` (required: the caller must
        say what it reads), or whose content no longer matches its stored digest (edited,
        truncated) is deleted with a CacheWarning, and None returned: the caller parses the
        source again."""
        target = self.path_for(key)
        if target is None or not target.is_file():
            return None
        try:
            frame, meta = _read_parquet(target)
        except Exception as exc:  # a damaged cache file must never stop a run
            self._discard(target, f"ignoring unreadable cache file {target}: {exc}")
            return None
        stored = meta.get("source_sha256")
        if stored != source_sha256:
            why = (f"made from another source file (sha256 {stored}), not from this one "
                   f"(sha256 {source_sha256})" if stored else
                   "it stores no source sha256 (written by an older bench)")
            self._discard(target, f"discarding cache file {target}: {why}")
            return None
        if meta.get("frame_digest") != frame_digest(frame):
            self._discard(target, f"discarding cache file {target}: its content does not "
                          "match the digest stored with it (edited or damaged)")
            return None
        return frame

    def _discard(self, target: Path, message: str) -> None:
        warnings.warn(f"{message}; parsing the source again and rebuilding it", CacheWarning,
                      stacklevel=3)
        with contextlib.suppress(OSError):
            target.unlink()

    def put(self, key: str, frame: pd.DataFrame, source_sha256: str) -> Path | None:
        """Store `frame` under `key` atomically with its source's sha256 and the frame's digest;
        returns its path, or None if it failed (a warning: the cache is an optimisation, the
        loaded data is still valid)."""
        target = self.path_for(key)
        if target is None:
            return None
        meta = {"source_sha256": source_sha256, "frame_digest": frame_digest(frame)}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale_tmp()
            _atomic_write(target, lambda tmp: _write_parquet(frame, tmp, meta))
        except Exception as exc:
            warnings.warn(f"cannot write cache file {target}: {exc}", CacheWarning, stacklevel=2)
            return None
        return target

    def _remove_stale_tmp(self) -> None:
        """Delete temporary files left by writers that died more than an hour ago."""
        assert self.dir is not None
        now = time.time()
        for tmp in self.dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    tmp.unlink()


@dataclass
class Table:
    """A parsed, validated source file."""

    path: Path
    name: str  # the file name without .gz
    frame: pd.DataFrame
    digest: FileDigest
    verification: Verification
    cache_hit: bool


def load_table(
    path: Path,
    spec: TableSpec,
    cache: TableCache,
    version: str,
    verify: str = "warn",
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> Table:
    """Load `path` from the cache, or parse, validate, `prepare` and cache it.

    The cache key is `version`, CACHE_FORMAT and the sha256 of the uncompressed source; bump
    `version` whenever the loader's output changes. Verification against the published
    checksums runs first (`verify="strict"` raises before anything is parsed or cached).
    Raises DataError for any invalid file; nothing is written to the cache in that case.
    """
    name = source_name(path)
    digest = cache.digest(path)
    verification = verify_file(name, digest, verify)
    key = f"{version}-{CACHE_FORMAT}-{digest.sha256}"
    frame = cache.get(key, digest.sha256)
    hit = frame is not None
    if frame is None:
        frame = read_table(path, spec)
        if prepare is not None:
            frame = prepare(frame)
        cache.put(key, frame, digest.sha256)
    cache.remember(path, digest)
    log.info("%s: %d rows (%s)", path, len(frame), "cache" if hit else "parsed")
    return Table(path, name, frame, digest, verification, hit)


def source_notes(role: str, table: Table) -> dict[str, str]:
    """Notes (MLflow tags) describing one source file; keys use the role, not the file name
    (MLflow tag keys may not contain `+`). The same whether the frame came from the cache or
    the source: a cache file is only used when its digests tie it to this source."""
    return {
        f"data.file.{role}": table.path.name,
        f"data.rows.{role}": str(len(table.frame)),
        f"data.sha256.{role}": table.digest.sha256,
        f"data.verify.{role}": f"{table.verification.status}: {table.verification.message}",
    }


def verify_summary(tables: dict[str, Table]) -> str:
    """One line: whether every file matched its published checksum."""
    bad = [f"{role}={t.verification.status}" for role, t in tables.items()
           if t.verification.status != "ok"]
    if not bad:
        return "ok: every file matches its published checksum"
    return "not all files verified: " + ", ".join(bad)
