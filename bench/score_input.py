"""What `bench score` reads: its input files in chunks, each checked against the model's
input signature before it is scored (bench.score).

CSV (with a header) is read `rows` at a time with bench.data.files' checks and messages; key
(non-model) columns are read as text, exactly as written; blank lines at the end of a file are
not rows. Parquet is read in record batches, key columns keeping the file's types. Every chunk
goes through `check_frame`: duplicated or missing columns, a column whose type the input cannot
take, and missing, non-numeric or non-finite values are a DataError naming the source, row
(CSV: line), column and value.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import DataError

NUMERIC_TYPES = ("double", "float", "long", "integer", "boolean")  # MLflow signature types
INPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")

@dataclass
class Chunk:
    """Rows of one source; `first` = 0-based position of the first row in its source."""

    frame: pd.DataFrame
    source: Path | str
    first: int


def input_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(INPUT_SUFFIXES))
        if not files:
            raise DataError(f"{path}: no .csv, .csv.gz or .parquet file in this folder")
        return files
    if not path.is_file():
        from bench.data.files import find

        found = find(path.parent, path.name)  # name or name.gz, as the loaders look
        if found is None:
            raise DataError(f"{path}: no such file or folder (nor {path.name}.gz)")
        path = found
    if not path.name.endswith(INPUT_SUFFIXES):
        raise DataError(f"{path}: bench score reads .csv, .csv.gz or .parquet files with a "
                        "header; for a dataset's own files (e.g. the headerless NSL-KDD "
                        ".txt) use dataset=<name>")
    return [path]


def read_csv_chunks(path: Path, inputs: list[tuple[str, str]], rows: int) -> Iterator[Chunk]:
    """Validated chunks of a CSV file with a header (bench.data.files' checks and messages).
    Key (non-model) columns are read as text, exactly as written; blank lines at the end of
    the file are dropped (a blank line before a row is reported)."""
    from bench.data.files import _check_values, _fail, _read_header

    header = _read_header(path)
    seen: set[str] = set()
    for index, name in enumerate(header):
        if not str(name).strip():  # pandas would key it "Unnamed: <n>" in the output
            raise DataError(f"{path}: line 1 (header), field {index + 1}: empty column name "
                            "(an index written by pandas' to_csv? write it with index=False, "
                            "or name the column)")
        if name in seen:
            raise _fail(path, 1, name, "duplicate column in the header:", name)
        seen.add(name)
    missing = [name for name, _ in inputs if name not in header]
    if missing:
        raise DataError(f"{path}: line 1 (header), column {missing[0]!r}: missing column(s) "
                        f"{missing} that the model needs (a headerless file? use dataset=)")
    numeric = {name for name, kind in inputs if kind in NUMERIC_TYPES}
    spec = _spec(inputs)
    first = 0
    try:
        reader = pd.read_csv(path, chunksize=rows,
                             dtype={name: str for name in header if name not in numeric},
                             index_col=False, keep_default_na=False, na_values=[""],
                             skip_blank_lines=False, encoding="utf-8-sig")
        with reader:
            for frame in _without_trailing_blank_lines(path, reader):
                frame = _booleans_as_integers(frame, inputs)
                # key columns are not checked: blank them in the frame the checker sees
                checked = frame.assign(**{c: "" for c in header if c not in spec.columns})
                _check_values(path, checked, spec, first_line=2 + first)
                yield Chunk(frame, path, first)
                first += len(frame)
    except (pd.errors.ParserError, EOFError, OSError, zlib.error) as error:
        # an unterminated quote, a row with more fields, a truncated or corrupt gzip
        raise DataError(f"{path}: cannot be read as CSV (rows from line {first + 2} on): "
                        f"{' '.join(str(error).split())}") from error


def _without_trailing_blank_lines(path: Path, frames: Iterable[pd.DataFrame]
                                  ) -> Iterator[pd.DataFrame]:
    """`frames` without the rows of blank lines at the end of the file (an editor's artefact,
    as bench.data.files drops them). A chunk ending in empty rows is held until the next
    chunk shows whether a row follows them (then they are reported); a row of empty fields
    (`,,,`) is not a blank line and stays."""
    held: list[pd.DataFrame] = []  # held[0] ends in empty rows; the others are all empty
    for frame in frames:
        empty = frame.isna().all(axis=1).to_numpy()
        if held and not empty.all():  # a row follows: the empty rows are in the middle
            yield from held
            held = []
        if len(frame) and empty[-1]:
            held.append(frame)
        else:
            yield frame
    if not held:
        return
    empty = held[0].isna().all(axis=1).to_numpy()
    rows = np.flatnonzero(~empty)
    trailing = len(empty) - (int(rows[-1]) + 1 if len(rows) else 0)
    after = sum(len(frame) for frame in held[1:])
    kept = len(held[0]) + after - min(trailing + after, _trailing_blank_lines(path))
    for index, frame in enumerate(held):
        part = frame.iloc[:max(kept, 0)]
        kept -= len(frame)
        if len(part) or index == 0:  # a file of blank lines only: no rows, like a bare header
            yield part


def _trailing_blank_lines(path: Path) -> int:
    """How many lines at the end of `path` are blank (empty or whitespace only)."""
    from bench.data.files import open_binary

    space = b" \t\r\n\x0b\x0c"
    newlines, after = 0, False  # after the last non-blank byte: line ends, and text past them
    with open_binary(path) as stream:
        if not path.name.endswith(".gz"):  # read only the blank end of a plain file
            size = start = stream.seek(0, os.SEEK_END)
            while start > 0:
                start = max(0, start - (1 << 16))
                stream.seek(start)
                if stream.read(min(1 << 16, size - start)).strip(space):
                    break
            stream.seek(start)
        while block := stream.read(1 << 20):
            content = len(block.rstrip(space))
            tail = block[content:]
            if content:
                newlines, after = 0, False
            if b"\n" in tail:
                newlines += tail.count(b"\n")
                after = not tail.endswith(b"\n")
            else:
                after = after or bool(tail)
    return max(newlines - 1, 0) + (1 if after and newlines else 0)


# inputs that take True/False as 1/0: bench's table loader reads a True/False column as
# 0/1 integers, so its model's signature says integer (or long) for it
BOOLEAN_AS_INTEGER = ("integer", "long", "boolean")


def _booleans_as_integers(frame: pd.DataFrame, inputs: list[tuple[str, str]]) -> pd.DataFrame:
    """`frame` with the True/False columns of integer inputs as 0/1 (int8)."""
    columns = {name: frame[name].astype("int8") for name, kind in inputs
               if kind in BOOLEAN_AS_INTEGER and name in frame
               and pd.api.types.is_bool_dtype(frame[name])}
    return frame.assign(**columns) if columns else frame


def _spec(inputs: list[tuple[str, str]]) -> Any:
    from bench.data.files import TableSpec

    return TableSpec(columns=tuple(name for name, _ in inputs),
                     numeric=tuple(name for name, kind in inputs if kind in NUMERIC_TYPES))


def read_parquet_chunks(path: Path, inputs: list[tuple[str, str]], rows: int
                        ) -> Iterator[Chunk]:
    """Chunks of a Parquet file, `rows` at a time (pyarrow record batches); key columns keep
    the file's types (pyarrow-backed), so every chunk writes with the same schema."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as error:
        raise DataError(f"{path}: not a readable Parquet file ({error})") from error
    names = handle.schema_arrow.names
    for index, name in enumerate(names):
        if name in names[:index]:
            raise DataError(f"{path}: schema, column {name!r}: duplicate column in the Parquet "
                            f"schema: {name!r} (columns {names.index(name)} and {index})")
    features = {name for name, _ in inputs}
    first = 0
    import pyarrow as pa

    batches = handle.iter_batches(batch_size=rows)
    read_any = False
    while True:
        try:
            batch = next(batches, None)
        except Exception as error:  # a damaged page or column chunk
            raise DataError(f"{path}: cannot be read as Parquet (rows from {first} on): "
                            f"{' '.join(str(error).split())}") from error
        if batch is None and not read_any:  # no rows: one empty chunk gives the output columns
            batch = pa.RecordBatch.from_pylist([], schema=handle.schema_arrow)
        elif batch is None:
            return
        read_any = True
        frame = batch.to_pandas()
        keys = {name: batch.column(name).to_pandas(types_mapper=pd.ArrowDtype)
                for name in names if name not in features}
        frame = check_frame(frame.assign(**keys) if keys else frame, path, first, inputs)
        yield Chunk(frame, path, first)
        first += len(frame)


def check_frame(frame: pd.DataFrame, source: Path | str, first: int,
                inputs: list[tuple[str, str]]) -> pd.DataFrame:
    """`frame` with the model's columns as the model takes them (categoricals decoded,
    numbers given for a string input as text); DataError at the first duplicate or missing
    column, column of a type the input cannot take, or bad value (row = 0-based position in
    `source`): numeric inputs take finite numbers, or text that parses as one (true/false
    for an integer or boolean input); string inputs take text or numbers, never missing."""
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"{source}: column {duplicated[0]!r}: duplicate column name "
                        f"{duplicated[0]!r}")
    missing = [name for name, _ in inputs if name not in frame.columns]
    if missing:
        raise DataError(f"{source}: column {missing[0]!r}: missing column(s) {missing} that "
                        "the model needs")
    converted = {}
    for name, kind in inputs:
        values = frame[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = pd.Series(np.asarray(values), index=values.index, name=name)
        if kind in NUMERIC_TYPES:
            bad = ~np.isfinite(_numbers(values, kind, source, first, name))
            problem = "missing or non-numeric value"
        else:
            values = _text(values, kind, source, first, name)
            bad = values.isna().to_numpy()
            problem = "missing value"
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{source}: row {first + row}, column {name!r}: {problem} "
                            f"{values.iloc[row]!r}")
        if values is not frame[name]:
            converted[name] = values
    return frame.assign(**converted) if converted else frame


def _wrong_type(values: pd.Series, kind: str, source: Path | str, first: int, name: str,
                what: str) -> DataError:
    """DataError naming the column's dtype and its first value (or the first odd one)."""
    present = values.notna().to_numpy()
    row = int(np.argmax(present)) if present.any() else 0
    value = values.iloc[row] if len(values) else None
    return DataError(f"{source}: row {first + row}, column {name!r}: {values.dtype} value "
                     f"{value!r} is not {what} (the model's input {name!r} is {kind})")


def _numbers(values: pd.Series, kind: str, source: Path | str, first: int, name: str
             ) -> np.ndarray:
    """`values` as float64 (NaN where missing or not a number) for a numeric input;
    DataError for a dtype that is not numbers or text (dates, durations, booleans for a
    float input, complex, bytes, ...); True/False count as 1/0 for an integer input."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if kind not in BOOLEAN_AS_INTEGER:
            raise _wrong_type(values, kind, source, first, name, "a number")
        return values.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise _wrong_type(values, kind, source, first, name, "a number")
    if pd.api.types.infer_dtype(values, skipna=True) not in _TEXT_OR_NUMBERS:
        _check_items(values, kind, source, first, name, "a number",
                     kind in BOOLEAN_AS_INTEGER)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


_TEXT_OR_NUMBERS = ("string", "empty", "integer", "floating", "mixed-integer-float", "decimal")


def _check_items(values: pd.Series, kind: str, source: Path | str, first: int, name: str,
                 what: str, booleans: bool) -> None:
    """DataError at the first value of an object column that is neither text nor a number
    (nor a boolean, unless `booleans`)."""
    def odd(value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return not booleans
        return not isinstance(value, str | int | float | Decimal | np.integer | np.floating)

    found = values.map(odd, na_action="ignore").fillna(False).to_numpy(dtype=bool)
    if found.any():
        row = int(np.argmax(found))
        raise _wrong_type(values.iloc[row:], kind, source, first + row, name, what)


def _text(values: pd.Series, kind: str, source: Path | str, first: int, name: str
          ) -> pd.Series:
    """`values` for a string input: text as it is; numbers and booleans as text (what a CSV
    gives); DataError for other dtypes and values (dates, durations, bytes, ...)."""
    dtype = values.dtype
    if (pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)
            or pd.api.types.is_float_dtype(dtype)):
        return values.astype(str).where(values.notna())
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise _wrong_type(values, kind, source, first, name, "text or a number")
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    _check_items(values, kind, source, first, name, "text or a number", booleans=True)
    return values.map(str, na_action="ignore")
