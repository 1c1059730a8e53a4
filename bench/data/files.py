"""Finding, hashing, verifying and parsing the raw dataset files.

A file `name` is looked up in the data directory as `name` or `name.gz`. Checksums are taken over
the *uncompressed* bytes, so a gzip copy verifies against the published value of the original.
Parsing (`read_table`) validates the whole table and raises one `DataError` that names the file,
the line (1-based, header counted), the column and the offending value.
"""

from __future__ import annotations

import csv
import errno
import gzip
import hashlib
import inspect
import io
import logging
import os
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from bench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "BENCH_DATA_DIR"
VERIFY_MODES = ("warn", "strict", "off")
_CHUNK = 1 << 20


class DataWarning(UserWarning):
    """A data file differs from its published version (checksum or name); the run goes on."""


# Where a user can obtain each dataset (named in "file not found" errors).
PUBLISHERS: dict[str, tuple[str, str]] = {
    "unsw": ("UNSW-NB15 (UNSW Canberra)", "https://research.unsw.edu.au/projects/unsw-nb15-dataset"),
    "nslkdd": ("NSL-KDD (UNB CIC)", "https://www.unb.ca/cic/datasets/nsl.html"),
    "kaggle_nid": ("Kaggle 'Network Intrusion Detection' (sampadab17)",
                   "https://www.kaggle.com/datasets/sampadab17/network-intrusion-detection"),
    "snmp_mib": ("SNMP-MIB dataset (Al-Kasassbeh, Al-Naymat, Al-Hawari 2016)",
                 "https://www.researchgate.net/publication/309807745"),
}


@dataclass(frozen=True)
class KnownFile:
    """A published file: name, uncompressed size, data rows and checksums of the original bytes."""

    name: str
    dataset: str
    description: str
    rows: int
    size: int
    sha256: str | None
    md5: str | None = None
    hint: str = ""


# From ../shared/datasets/PROVENANCE.md (sha256 of the uncompressed official files).
KNOWN_FILES: dict[str, KnownFile] = {k.name: k for k in (
    KnownFile("UNSW_NB15_training-set.csv", "unsw", "UNSW-NB15 official training partition",
              175_341, 32_293_018, None, "e55caabaa6cd4a8f1c06a227bcfababc",
              "no sha256 is published for it; size and md5 come from an audit of the "
              "official zip"),
    KnownFile("UNSW_NB15_testing-set.csv", "unsw", "UNSW-NB15 official testing partition",
              82_332, 15_380_800,
              "734fe6642edf758f7c94d7d9149426b49d202fe8e7bf0bef47392489c3c0a559",
              "e0beea40262e46168cdb81476dbc27b4"),
    KnownFile("KDDTrain+.txt", "nslkdd", "NSL-KDD KDDTrain+", 125_973, 19_109_424,
              "1b86d2f957b33082081bba410fe129b475efebcc13c9014c3f447c8271aadf95"),
    KnownFile("KDDTest+.txt", "nslkdd", "NSL-KDD KDDTest+", 22_544, 3_441_513,
              "fa46b0935342616aa83b7c2578db355b6a7aaabbc492248172c7a1e8b7ab8f84"),
    KnownFile("KDDTest-21.txt", "nslkdd", "NSL-KDD KDDTest-21", 11_850, 1_814_092,
              "746993ac9e25868827cacf09eab450050a2a1056e1ce48a1ad39f5dc801d531d"),
    KnownFile("KDDTrain+_20Percent.txt", "nslkdd", "NSL-KDD KDDTrain+_20Percent", 25_192,
              3_822_033, "7ea86479faab5ca2190b7f18b4982fb058ce5bf2b46e0e1017d0d9ef90f9c16e"),
    KnownFile("Train_data.csv", "kaggle_nid", "Kaggle NID Train_data (CRLF)", 25_192, 2_875_560,
              "1e40eb667611ab507870fc5b5ef0a844201ec094915d78d79f4665937e43b07a",
              hint="an LF-only copy (2,850,367 bytes) with the same rows is also in circulation"),
    KnownFile("Test_data.csv", "kaggle_nid", "Kaggle NID Test_data (CRLF)", 22_544, 2_416_180,
              "a58db8c605e58411f6432dd9ab2fe10e1d768f058f5453e9e279788c7219caf8",
              hint="an LF-only copy (2,393,635 bytes) with the same rows is also in circulation"),
    KnownFile("SNMP-MIB.csv", "snmp_mib", "SNMP-MIB dataset", 4_998, 842_462,
              "4cd07f7919f45d304b638591431bd9ee8f124709303661eaad14e9b71a7a5395"),
)}


def source_name(path: Path | str) -> str:
    """The file's name without a trailing `.gz` (the name checksums are published under)."""
    name = Path(path).name
    return name[:-3] if name.endswith(".gz") else name


def bound_arguments(function: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """`function`'s arguments for the call `function(**options)`, defaults filled in (a
    loader's check_options reads the same values its load would; validation already refused
    unknown option names)."""
    bound = inspect.signature(function).bind_partial(**options)
    bound.apply_defaults()
    return dict(bound.arguments)


def check_verify_mode(verify: str) -> str:
    """Return `verify` if it is one of VERIFY_MODES, else raise ConfigError."""
    if verify not in VERIFY_MODES:
        raise ConfigError(f"dataset.verify must be one of {VERIFY_MODES}, got {verify!r}")
    return verify


def locate(data_dir: str | Path, name: str, dataset: str) -> Path:
    """Path of `name` or `name.gz` in `data_dir` (plain file preferred).

    Raises DataError naming the file, the absolute directory searched, BENCH_DATA_DIR and the
    publisher's URL when neither exists.
    """
    path = find(data_dir, name)
    if path is None:
        raise missing_files_error(data_dir, [name], dataset)
    return path


def _candidates(name: str) -> list[str]:
    if name.endswith(".gz"):
        return [name, name[:-3]]
    return [name, f"{name}.gz"]


def find(data_dir: str | Path, name: str) -> Path | None:
    """Path of `name` or `name.gz` in `data_dir` (plain file preferred), or None."""
    directory = Path(data_dir).expanduser()
    if directory.exists() and not directory.is_dir():
        raise DataError(f"{directory}: is a file, not a directory; the data directory "
                        f"(BENCH_DATA_DIR or dataset.data_dir) must be a folder holding {name}")
    for candidate in _candidates(name):
        path = directory / candidate
        if path.is_symlink() and not path.exists():
            raise DataError(f"{path}: {_link_problem(path)}; {name} must be a file (plain or "
                            "gzip)")
        if path.is_file():
            return path
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a file; {name} must be a file "
                            "(plain or gzip)")
    return None


def _link_problem(path: Path) -> str:
    """Why the symbolic link `path` does not lead to a file: a loop, or its missing target."""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "a symbolic link loop (the link leads back to itself)"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop (the link leads back to itself)"
        return f"a symbolic link to {os.readlink(path)}, which does not exist"
    return "not a file"


def missing_files_error(data_dir: str | Path, names: list[str], dataset: str) -> DataError:
    """The DataError for files `names` not found in `data_dir` (see `locate`)."""
    directory = Path(data_dir).expanduser().resolve()
    title, url = PUBLISHERS.get(dataset, (dataset, ""))
    env = os.environ.get(DATA_DIR_ENV)
    env_text = f"{DATA_DIR_ENV}={env}" if env else f"{DATA_DIR_ENV} is not set"
    wanted = " nor ".join(repr(source_name(n)) for n in names)
    looked = ", ".join(c for n in names for c in _candidates(n))
    return DataError(
        f"{title} file {'' if len(names) == 1 else 'neither '}{wanted} not found: looked for "
        f"{looked} in {directory} ({env_text}). Set {DATA_DIR_ENV}=/path/to/datasets (or "
        "dataset.data_dir=...) to the folder that holds it, plain or gzip."
        + (f" The dataset is published at {url}" if url else "")
    )


@dataclass(frozen=True)
class FileDigest:
    """Checksums and size of a file's uncompressed bytes."""

    sha256: str
    md5: str
    size: int


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Turn decompression and decoding failures into a DataError naming `path`."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc


def _not_utf8(path: Path) -> DataError:
    """DataError at the first line and column whose bytes are not UTF-8.

    Decoders report an offset into the chunk they were given, not the file; this scans the
    file line by line to find the line, the column (in characters) and the byte.
    """
    offset = 0
    with open_binary(path) as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
                return DataError(
                    f"{path}: line {number}, column {column}: not UTF-8 text (byte "
                    f"0x{raw[exc.start]:02x} at byte offset {offset + exc.start}); save the "
                    "file as UTF-8")
            offset += len(raw)
    return DataError(f"{path}: not UTF-8 text")


def open_binary(path: Path) -> IO[bytes]:
    """The uncompressed bytes of `path` (gzip when its name ends in .gz)."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def open_text(path: Path) -> io.TextIOWrapper:
    """`path` as UTF-8 text (a leading BOM dropped), newlines untranslated (for `csv`)."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")


def digest_file(path: Path) -> FileDigest:
    """sha256, md5 and size of the uncompressed bytes of `path`, streamed in 1 MiB chunks."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with _read_errors(path), open_binary(path) as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileDigest(sha.hexdigest(), md5.hexdigest(), size)


def known_by_content(digest: FileDigest) -> KnownFile | None:
    """The published file whose checksum equals `digest` (sha256, or md5 + size), if any."""
    for known in KNOWN_FILES.values():
        if known.sha256 is not None and known.sha256 == digest.sha256:
            return known
        if known.sha256 is None and known.md5 == digest.md5 and known.size == digest.size:
            return known
    return None


@dataclass(frozen=True)
class Verification:
    """Outcome of comparing a file with the published checksums.

    status: "ok" (content and name match), "renamed" (content of another published file),
    "mismatch" (published name, different content), "unknown" (no published checksum), "off".
    """

    status: str
    message: str
    content: KnownFile | None = None


def verify_file(name: str, digest: FileDigest, mode: str = "warn") -> Verification:
    """Compare a file (published name `name`, without .gz) with the known-good table.

    A checksum mismatch warns (DataWarning) naming the file and both hashes, or raises
    DataError when `mode` is "strict". `mode="off"` skips the comparison.
    """
    check_verify_mode(mode)
    content = known_by_content(digest)
    if mode == "off":
        return Verification("off", "not verified (verify=off)", content)
    if content is not None:
        how = "sha256" if content.sha256 else "md5 and size"
        if content.name == name:
            return Verification("ok", f"{how} matches the published {content.description}",
                                content)
        return Verification("renamed", f"{how} matches the published {content.description} "
                            f"({content.name}), under the name {name}", content)
    known = KNOWN_FILES.get(name)
    if known is None:
        return Verification("unknown", f"no published checksum for {name}; not verified")
    if known.sha256 is not None:
        expected, got = f"sha256 {known.sha256}", f"sha256 {digest.sha256}"
    else:
        expected, got = (f"md5 {known.md5} ({known.size:,} bytes)",
                         f"md5 {digest.md5} ({digest.size:,} bytes), sha256 {digest.sha256}")
    message = (f"{name}: checksum mismatch with the published {known.description}: expected "
               f"{expected}, got {got}" + (f" ({known.hint})" if known.hint else ""))
    if mode == "strict":
        raise DataError(message + " [dataset.verify=strict]")
    warnings.warn(message, DataWarning, stacklevel=2)
    log.warning(message)
    return Verification("mismatch", message)


# --------------------------------------------------------------------------------------------
# Parsing and validation


@dataclass(frozen=True)
class TableSpec:
    """What a CSV file must hold.

    `columns`: the expected columns (for a headerless file, in field order; with a header, in
    any order). `numeric`: columns that must hold finite numbers. Every other column must be a
    non-empty string. `allowed`: columns whose values must lie in a fixed set (labels).
    """

    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    header: bool = True
    allowed: Mapping[str, frozenset[str] | frozenset[int]] = field(default_factory=dict)


def _fail(path: Path, line: int, column: str | None, problem: str, value: object) -> DataError:
    where = f"line {line}" + (f", column {column!r}" if column is not None else "")
    shown = repr(value)
    if len(shown) > 80:
        shown = f"{shown[:60]}... ({len(str(value)):,} characters)"
    return DataError(f"{path}: {where}: {problem} {shown}")


def _read_header(path: Path) -> list[str]:
    with _read_errors(path), open_text(path) as text:
        reader = csv.reader(text)
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise _csv_error(path, 1, exc) from None
    if row is None:
        raise DataError(f"{path}: empty file (no header line, no data rows)")
    return row


def _check_header(path: Path, header: list[str], spec: TableSpec) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise _fail(path, 1, name, "duplicate column in the header:", name)
        seen.add(name)
    missing = [c for c in spec.columns if c not in seen]
    unexpected = [c for c in header if c not in set(spec.columns)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if unexpected:
            parts.append(f"unexpected column(s) {unexpected}")
        raise DataError(f"{path}: line 1 (header), column {(missing or unexpected)[0]!r}: "
                        + "; ".join(parts))


def _line_fields(path: Path, line: int) -> list[str]:
    """The fields of physical line `line` (1-based) of `path`."""
    with _read_errors(path), open_text(path) as text:
        reader = csv.reader(text)
        try:
            for row in reader:
                if reader.line_num >= line:
                    return row
        except csv.Error:  # e.g. a field over the csv module's limit: show the raw text
            return _physical_line(path, line).rstrip("\r\n").split(",")
    return []


def _csv_error(path: Path, line: int, exc: csv.Error) -> DataError:
    """A csv module error as a DataError at `line` (where the row that failed starts)."""
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return DataError(f"{path}: line {line}: a field longer than the CSV field limit of "
                         f"{limit:,} characters (an unterminated quote, or a huge value)")
    return DataError(f"{path}: line {line}: malformed CSV: {exc}")


def _find_bad_field_count(path: Path, expected: int, header: bool) -> None:
    """Raise DataError at the first line whose field count is not `expected`; else return.

    A row whose quoted field spans lines is reported where it starts (the opening quote),
    not where the reader finally closed it.
    """
    with _read_errors(path), open_text(path) as text:
        reader = csv.reader(text)
        if header:
            next(reader, None)
        start = reader.line_num + 1
        try:
            for row in reader:
                if len(row) != expected:
                    shown = ",".join(row)
                    shown = shown if len(shown) <= 120 else shown[:117] + "..."
                    if reader.line_num > start and '"' in _physical_line(path, start):
                        raise DataError(
                            f"{path}: line {start}: a quoted field opened here is not closed "
                            f"on this line (the quote runs to line {reader.line_num}); "
                            f"{len(row)} fields, expected {expected}")
                    raise _fail(path, start, None,
                                f"{len(row)} fields, expected {expected}:", shown)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise _csv_error(path, start, exc) from None


def _physical_line(path: Path, line: int) -> str:
    """Text of physical line `line` (1-based) of `path`, '' past the end."""
    with _read_errors(path), open_text(path) as text:
        for number, content in enumerate(text, start=1):
            if number == line:
                return content
    return ""


def _drop_trailing_blank_lines(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Blank lines at the end of a file (an editor's artefact) are not rows: drop them.

    They read as rows with every cell missing; only trailing ones whose lines are empty
    are dropped, so a row of empty fields (`,,,`) is still reported.
    """
    empty = frame.isna().all(axis=1).to_numpy()
    n = len(empty) - int(np.flatnonzero(~empty)[-1]) - 1 if (~empty).any() else len(empty)
    if n == 0:
        return frame
    with _read_errors(path), open_text(path) as text:
        tail = text.read().splitlines()[-n:]
    if all(not line.strip() for line in tail):
        return frame.iloc[: len(frame) - n]
    return frame


def read_table(path: Path, spec: TableSpec) -> pd.DataFrame:
    """Parse and validate a CSV file (plain or .gz) into a frame in file order.

    Raises one DataError naming the file, line (1-based, header counted), column and value for:
    an empty file, missing / unexpected / duplicate header columns, a row with the wrong number
    of fields, a missing value, a non-numeric, NaN or infinite value in a numeric column, a
    value outside `spec.allowed`, or a truncated / corrupt gzip stream.
    """
    first_line = 1
    expected = len(spec.columns)
    if spec.header:
        header = _read_header(path)
        _check_header(path, header, spec)
        first_line = 2
    try:
        with _read_errors(path), warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                header=0 if spec.header else None,
                names=None if spec.header else list(spec.columns),
                index_col=False, skip_blank_lines=False, keep_default_na=False,
                na_values=[""], encoding="utf-8-sig", low_memory=False,
                compression="gzip" if path.name.endswith(".gz") else None,
            )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: empty file (no data rows)") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning, csv.Error) as exc:
        _find_bad_field_count(path, expected, spec.header)
        raise DataError(f"{path}: cannot be parsed as CSV ({exc})") from exc
    frame = _drop_trailing_blank_lines(path, frame)
    if frame.empty:
        raise DataError(f"{path}: empty file (no data rows)")
    missing = frame.isna().to_numpy()
    if missing.any():
        _find_bad_field_count(path, expected, spec.header)
    _check_values(path, frame, spec, first_line)
    return frame


def _check_values(path: Path, frame: pd.DataFrame, spec: TableSpec, first_line: int) -> None:
    """Raise DataError at the first (earliest row) invalid cell of `frame`."""
    columns = list(frame.columns)
    worst: tuple[int, int, str, str] | None = None  # (row, column index, column, problem)

    def consider(mask: np.ndarray, column: str, problem: str) -> None:
        nonlocal worst
        if mask.any():
            row = int(np.argmax(mask))
            candidate = (row, columns.index(column), column, problem)
            if worst is None or candidate[:2] < worst[:2]:
                worst = candidate

    for column in spec.numeric:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            consider(np.ones(len(values), dtype=bool), column, "non-numeric value")
            continue
        if pd.api.types.is_numeric_dtype(values):
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
            consider(np.isnan(numbers), column, "missing value")
            consider(np.isinf(numbers), column, "infinite value")
            continue
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64",
                                                                   na_value=np.nan)
        absent = values.isna().to_numpy()
        text = values.where(~values.isna(), "").astype(str)  # ints beyond int64 are objects
        nan_token = text.str.strip().str.lower().isin(["nan", "-nan", "+nan"]).to_numpy()
        consider(absent, column, "missing value")
        consider(nan_token, column, "NaN value")
        consider(np.isinf(numbers), column, "infinite value")
        consider(~absent & ~nan_token & np.isnan(numbers), column, "non-numeric value")
    for column in columns:
        if column not in spec.numeric:
            consider(frame[column].isna().to_numpy(), column, "missing value")
    for column, allowed in spec.allowed.items():
        consider(~frame[column].isin(list(allowed)).to_numpy(), column,
                 "unknown label value (expected one of "
                 f"{sorted(allowed, key=str)[:12]}{' ...' if len(allowed) > 12 else ''}):")
    if worst is None:
        return
    row, index, column, problem = worst
    line = first_line + row
    fields = _line_fields(path, line)
    raw = fields[index] if index < len(fields) else ""
    raise _fail(path, line, column, problem.rstrip(":") + ":", raw)
