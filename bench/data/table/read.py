"""Finding the files of a table dataset, reading their headers, parsing them memory-aware.

A parsed file is a frame whose index is the 0-based data row of the file (the line number is
`index + first_line`), numeric columns in the smallest lossless dtype (integers downcast, floats
as float32 where every value survives the round trip, else float64), text columns as pandas
categoricals. It is cached as Parquet keyed by the file's sha256 and the parse options.
"""

from __future__ import annotations

import csv
import glob
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.cache import CACHE_FORMAT, TableCache
from bench.data.files import FileDigest, open_binary
from bench.data.table.options import TableOptions, canonical
from bench.errors import DataError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
PROGRESS_SECONDS = 5.0


def _is_table_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)


def resolve_paths(spec: str | Sequence[str], data_dir: str | Path, key: str) -> list[Path]:
    """The files named by `spec`: a file, a folder (its table files), a glob, or a list of those.

    Relative names are looked up under `data_dir`. A plain file name also finds `name.gz`.
    Raises DataError for a name that matches nothing, naming it and where it looked.
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    if not items:
        raise DataError(f"dataset.{key} is empty: name a file, a folder or a glob")
    base = Path(data_dir).expanduser()
    found: list[Path] = []
    for item in items:
        matches = _matches(str(item), base, key)
        found.extend(m for m in matches if m not in found)
    return found


def _matches(item: str, base: Path, key: str) -> list[Path]:
    """The table files one entry of dataset.<key> names (a glob, a folder or a file)."""
    raw = Path(item).expanduser()
    full = raw if raw.is_absolute() else base / raw
    if glob.has_magic(item):
        matches = sorted(Path(p) for p in glob.glob(str(full)) if _is_table_file(Path(p)))
        if not matches:
            raise DataError(f"dataset.{key}: the glob {str(full)!r} matches no CSV, CSV.gz "
                            "or Parquet file")
        return matches
    if full.is_dir():
        matches = sorted(p for p in full.iterdir() if _is_table_file(p))
        if not matches:
            raise DataError(f"dataset.{key}: the folder {str(full)!r} holds no CSV, CSV.gz "
                            "or Parquet file")
        return matches
    if full.is_file() or Path(f"{full}.gz").is_file():
        return [full if full.is_file() else Path(f"{full}.gz")]
    raise DataError(f"dataset.{key}: file {str(full)!r} not found (nor {full.name}.gz; "
                    f"relative names are looked up in paths.data_dir = {base.resolve()}, "
                    "set by BENCH_DATA_DIR)")


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


@dataclass(frozen=True)
class Header:
    """A file's columns: `names` (normalised, unique, in file order) and where they came from.

    `original[name]` is the header text as written; `positions[name]` its field index;
    `first_line` the line number of the first data row (1-based); `dropped` the names of
    dataset.drop found in this header.
    """

    path: Path
    names: tuple[str, ...]
    original: dict[str, str]
    positions: dict[str, int]
    n_fields: int
    first_line: int
    dropped: tuple[str, ...] = ()

    def describe(self, name: str) -> str:
        """`'name'`, plus the header text when normalisation changed it."""
        raw = self.original.get(name, name)
        return repr(name) if raw == name else f"{name!r} (header {raw!r})"


def _raw_header(path: Path, options: TableOptions) -> list[str]:
    if is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    if options.columns is not None:
        return list(options.columns)
    try:
        with open_binary(path) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig",
                                    errors=options.encoding_errors, newline="")
            row = next(csv.reader(text), None)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the header line ({exc})") from exc
    if not row:
        raise DataError(f"{path}: empty file (no header line)")
    return row


def read_header(path: Path, options: TableOptions) -> Header:
    """The normalised header of `path`, with the duplicate-name policy applied.

    Raises DataError naming the file for a header of more than `max_columns` columns (a
    100,000-column header took minutes to parse and cache), and naming the column for a
    duplicate name under `duplicate_columns=error`, for an empty column name, and for a
    dataset.drop name that is not in the header but differs from a column only by case,
    spaces or punctuation (the column would have been read; a drop name matching nothing is
    allowed: files may differ).
    """
    raw = _raw_header(path, options)
    if len(raw) > options.max_columns:
        raise DataError(f"{path}: line 1 (header): {len(raw):,} columns, more than "
                        f"dataset.max_columns={options.max_columns:,}; is it the right file "
                        "and delimiter? (raise dataset.max_columns for a table this wide)")
    names: list[str] = []
    dropped: list[str] = []
    original: dict[str, str] = {}
    positions: dict[str, int] = {}
    for index, text in enumerate(raw):
        name = text.strip() if options.header == "strip" else text
        if not name:
            raise DataError(f"{path}: line 1 (header), field {index + 1}: empty column name")
        if name in positions:
            first = positions[name] + 1
            if options.duplicate_columns == "error":
                raise DataError(
                    f"{path}: line 1 (header), column {name!r}: duplicate column name (fields "
                    f"{first} and {index + 1}); set dataset.duplicate_columns=keep_first or "
                    "rename")
            if options.duplicate_columns == "keep_first":
                continue
            suffix = 1
            while f"{name}.{suffix}" in positions:
                suffix += 1
            name = f"{name}.{suffix}"
        if name in options.drop:
            dropped.append(name)
            continue
        names.append(name)
        original[name] = text
        positions[name] = index
    for name in options.drop:
        near = [n for n in names if canonical(name) and canonical(n) == canonical(name)]
        if name not in dropped and near:
            raise DataError(f"{path}: line 1 (header): drop (dataset.drop) column {name!r} not "
                            f"found (did you mean {', '.join(repr(n) for n in near)}?); "
                            "declared names must match the header as written (after "
                            "stripping spaces)")
    first_line = 2 if options.columns is None and not is_parquet(path) else 1
    return Header(path, tuple(names), original, positions, len(raw), first_line,
                  tuple(dropped))


# --------------------------------------------------------------------------------------------
# Parsing


def compact(values: pd.Series) -> pd.Series:
    """`values` in the smallest lossless dtype: integers downcast, floats as float32 when every
    value survives float64 -> float32 -> float64 unchanged (NaN and inf included)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("int8")
    if pd.api.types.is_integer_dtype(values):
        return pd.to_numeric(values, downcast="integer")
    if pd.api.types.is_float_dtype(values) and values.dtype != np.float32:
        array = values.to_numpy(dtype=np.float64)
        small = array.astype(np.float32)
        same = (small.astype(np.float64) == array) | np.isnan(array)
        if bool(same.all()):
            return pd.Series(small, index=values.index, name=values.name)
    return values


def _first_non_numeric(chunks: list[pd.Series]) -> tuple[int, str] | None:
    """(row index, value) of the first value that is present and not a number, if any."""
    for chunk in chunks:
        if pd.api.types.is_numeric_dtype(chunk):
            continue
        bad = chunk.notna() & pd.to_numeric(chunk, errors="coerce").isna()
        if bad.any():
            row = bad.idxmax()
            return int(row), str(chunk[row])
    return None


def _join(header: Header, name: str, chunks: list[pd.Series], text: set[str]) -> pd.Series:
    """One column from its per-chunk pieces: category for text, compact numbers otherwise.

    Raises DataError when a column that is not declared as text holds numbers and text (a
    numeric column with a stray value), naming file, line, column and value.
    """
    # A chunk with no value at all (blank rows) parses as float NaN: neutral either way.
    numeric = [pd.api.types.is_numeric_dtype(c) for c in chunks if c.notna().any()]
    if name not in text and not all(numeric):
        # Text somewhere: a text column, unless most of its values are numbers.
        values = pd.concat(chunks)
        parsed = pd.to_numeric(values, errors="coerce")
        if any(numeric) or parsed.notna().sum() > 0.5 * values.notna().sum() > 0:
            row, value = _first_non_numeric(chunks) or (0, "")
            raise DataError(f"{header.path}: line {row + header.first_line}, column "
                            f"{header.describe(name)}: non-numeric value {value!r} in a numeric "
                            "column (declare it in dataset.categorical if it is text)")
    if name in text or not all(numeric):
        from pandas.api.types import union_categoricals

        pieces = [c.astype(str).astype("category") for c in chunks]
        return pd.Series(union_categoricals(pieces, ignore_order=True),
                         index=np.concatenate([c.index.to_numpy() for c in chunks]), name=name)
    return compact(pd.concat(chunks))


def parse_csv(header: Header, options: TableOptions, echo_progress: bool = True) -> pd.DataFrame:
    """Parse a CSV (plain or .gz) in chunks of `options.chunk_rows` rows (see module doc).

    Declared text columns are read as text up front; everything else is inferred per chunk and
    compacted at once, so peak memory stays near the size of the compact result. Prints a
    progress line every few seconds on long files.
    """
    text = options.text_columns() & set(header.names)
    names = [f"__unused_{i}" for i in range(header.n_fields)]
    for name, position in header.positions.items():
        names[position] = name
    started = last = time.perf_counter()
    pieces: dict[str, list[pd.Series]] = {n: [] for n in header.names}
    rows = 0
    try:
        reader = pd.read_csv(
            header.path, header=0 if header.first_line == 2 else None, names=names,
            usecols=list(header.names), dtype=dict.fromkeys(text, str), index_col=False,
            keep_default_na=False, na_values=list(options.missing_values),
            skip_blank_lines=False, encoding="utf-8-sig", encoding_errors=options.encoding_errors,
            chunksize=options.chunk_rows, compression="infer", low_memory=True)
        with reader:
            for chunk in reader:
                for name in header.names:
                    column = chunk[name]
                    pieces[name].append(column if name in text else compact(column)
                                        if pd.api.types.is_numeric_dtype(column) else column)
                rows += len(chunk)
                now = time.perf_counter()
                if echo_progress and now - last > PROGRESS_SECONDS:
                    print(f"[data] reading {header.path.name}: {rows:,} rows "
                          f"({now - started:.0f} s)", file=sys.stderr, flush=True)
                    last = now
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise DataError(f"{header.path}: cannot be parsed as CSV: {message}") from exc
    if rows == 0:
        raise DataError(f"{header.path}: no data rows")
    return pd.DataFrame({n: _join(header, n, pieces[n], text) for n in header.names})


def parse_parquet(header: Header, options: TableOptions) -> pd.DataFrame:
    """Read a Parquet file's columns (renamed as in `header`); text as category, numbers compact."""
    frame = pd.read_parquet(header.path, columns=[header.original[n] for n in header.names])
    frame.columns = list(header.names)
    text = options.text_columns()
    for name in header.names:
        column = frame[name]
        if name in text or not pd.api.types.is_numeric_dtype(column):
            frame[name] = column.astype(str).astype("category")
        else:
            frame[name] = compact(column)
    if frame.empty:
        raise DataError(f"{header.path}: no data rows")
    return frame.reset_index(drop=True)


def load_file(header: Header, options: TableOptions, cache: TableCache, digest: FileDigest
              ) -> tuple[pd.DataFrame, bool]:
    """The parsed file from the cache (keyed by its sha256 + parse options), else parsed and
    cached atomically. Returns (frame, cache hit). A cache file is used only when the source
    sha256 stored in it is `digest.sha256` and its content matches its own digest (else it
    is discarded with a CacheWarning and rebuilt), so a hit holds this source's rows."""
    if is_parquet(header.path):  # already columnar: reading it is as fast as the cache
        return parse_parquet(header, options), False
    key = f"{options.parse_fingerprint()}-{CACHE_FORMAT}-{digest.sha256}"
    frame = cache.get(key, digest.sha256)
    if frame is not None and list(frame.columns) == list(header.names):
        return frame, True
    frame = parse_csv(header, options)
    cache.put(key, frame, digest.sha256)
    return frame, False
