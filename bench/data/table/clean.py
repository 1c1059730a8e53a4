"""Per-file checks and policies on a parsed table: blank rows, labels, non-finite values.

Errors name the file, the line (1-based, header counted; assumes no quoted line breaks), the
column as written in the header and the value as written in the file.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.data.files import open_binary
from bench.data.table.options import TableOptions
from bench.data.table.read import Header, is_parquet
from bench.data.table.roles import Roles
from bench.errors import DataError

MISSING_CATEGORY = "(missing)"
CLIP_HIGH = float(np.finfo(np.float32).max)


@dataclass
class CleanCounts:
    """What the policies changed, summed over files (logged as run tags)."""

    empty_rows: int = 0
    non_finite_rows: int = 0
    cells: Counter = field(default_factory=Counter)  # (column, "inf"|"NaN") -> count
    missing_text: Counter = field(default_factory=Counter)  # column -> count

    def non_finite_note(self, policy: str) -> str:
        if not self.cells:
            return f"none found (policy {policy})"
        cells = ", ".join(f"{c} {n} {kind}" for (c, kind), n in sorted(self.cells.items())
                          if n)
        done = {"drop_rows": f"{self.non_finite_rows:,} rows dropped",
                "clip": "+/-inf set to +/-float32 max, NaN set to 0"}.get(policy, "")
        return f"policy {policy}: {done}; cells: {cells}"


def raw_value(header: Header, row: int, column: str, frame: pd.DataFrame) -> str:
    """The text of `column` at data row `row` as written in the file (parquet: the value)."""
    if is_parquet(header.path):
        return str(frame.at[row, column])
    line = row + header.first_line
    with open_binary(header.path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text)
        for fields in reader:
            if reader.line_num >= line:
                index = header.positions[column]
                return fields[index] if index < len(fields) else ""
    return ""


def _fail(header: Header, row: int, column: str, problem: str, value: str) -> DataError:
    return DataError(f"{header.path}: line {row + header.first_line}, column "
                     f"{header.describe(column)}: {problem} {value!r}")


def add_label(frame: pd.DataFrame, header: Header, options: TableOptions, roles: Roles
              ) -> pd.DataFrame:
    """Add the binary target (1 = attack) from the label column; map families if configured.

    Raises DataError at the first missing label or label value that is neither declared normal
    nor attack (when both lists are given).
    """
    values = frame[options.label].astype("string")
    if values.isna().any():
        row = int(values.isna().to_numpy().argmax())
        raise _fail(header, frame.index[row], options.label, "missing label value", "")
    normal = values.isin(options.normal).to_numpy()
    attack = values.isin(options.attack).to_numpy() if options.attack else ~normal
    if options.normal and options.attack:
        unknown = ~normal & ~attack
        if unknown.any():
            row = int(unknown.argmax())
            raise _fail(header, frame.index[row], options.label,
                        f"label value neither in dataset.normal {list(options.normal)} nor in "
                        f"dataset.attack {list(options.attack)}:", str(values.iat[row]))
    frame = frame.rename(columns={options.label: roles.raw})
    frame[roles.target] = attack.astype("int64") if options.attack else (~normal).astype("int64")
    if options.families:
        mapped = values.map(options.families).fillna(values)
        frame["attack_family"] = mapped.astype("category")
    elif options.family and options.family != options.label and frame[options.family].isna().any():
        # A family column empty on normal rows (Zeek's "-"): the row's label value instead.
        filled = frame[options.family].astype(object).fillna(values.astype(object))
        frame[options.family] = filled.astype(str).astype("category")
    return frame


def drop_empty_rows(frame: pd.DataFrame, counts: CleanCounts) -> pd.DataFrame:
    """Rows with no value in any field (blank or only separators) are dropped and counted."""
    empty = frame.isna().all(axis=1).to_numpy()
    counts.empty_rows += int(empty.sum())
    return frame.loc[~empty] if empty.any() else frame


def apply_non_finite(frame: pd.DataFrame, header: Header, numeric: list[str], policy: str,
                     counts: CleanCounts) -> pd.DataFrame:
    """Apply `policy` to NaN / +-inf cells of the `numeric` feature columns.

    error: DataError at the first such cell (row order, then column order). drop_rows: drop
    the rows. clip: +-inf -> +-float32 max and NaN -> 0 (fixed values, no statistic of any
    split is used, so nothing crosses from TEST).
    """
    floats = [c for c in numeric if pd.api.types.is_float_dtype(frame[c])]
    bad_rows = np.zeros(len(frame), dtype=bool)
    first: tuple[int, int, str] | None = None
    for position, column in enumerate(floats):
        values = frame[column].to_numpy()
        nan, inf = np.isnan(values), np.isinf(values)
        if not (nan.any() or inf.any()):
            continue
        counts.cells.update({(column, "NaN"): int(nan.sum()), (column, "inf"): int(inf.sum())})
        bad = nan | inf
        bad_rows |= bad
        row = int(bad.argmax())
        if first is None or (row, position) < first[:2]:
            first = (row, position, column)
        if policy == "clip":
            fixed = np.where(nan, 0.0, np.clip(values, -CLIP_HIGH, CLIP_HIGH))
            frame[column] = fixed.astype(values.dtype)
    if first is not None and policy == "error":
        row, _, column = first
        index = frame.index[row]
        raise _fail(header, index, column, "non-finite value (dataset.non_finite=error; "
                    "drop_rows or clip handle it):", raw_value(header, index, column, frame))
    if policy == "drop_rows" and bad_rows.any():
        counts.non_finite_rows += int(bad_rows.sum())
        frame = frame.loc[~bad_rows]
    return frame


def fill_missing_text(frame: pd.DataFrame, columns: list[str], counts: CleanCounts
                      ) -> pd.DataFrame:
    """Missing cells of categorical feature columns become the category '(missing)'."""
    for column in columns:
        missing = frame[column].isna()
        if missing.any():
            counts.missing_text[column] += int(missing.sum())
            values = frame[column]
            if MISSING_CATEGORY not in values.cat.categories:
                values = values.cat.add_categories([MISSING_CATEGORY])
            frame[column] = values.fillna(MISSING_CATEGORY)
    return frame
