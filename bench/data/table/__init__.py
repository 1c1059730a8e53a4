"""Any labelled flow table as a dataset (`dataset=table`): CSV, CSV.gz or Parquet files.

`load` reads a file, a list, a folder or a glob (`path`; optional fixed TEST files in
`test_path`), checks every header against the first before parsing anything, parses each file
in chunks into compact dtypes (cached as Parquet by content hash), then per file: drops blank
rows, maps the label column to the binary target (1 = attack) and applies the non-finite
policy, and finally concatenates the files, adding the metadata column `source_file`.
Identifier, label-proxy and metadata columns (declared, flagged from a list of well-known
flow identifier names, or text columns holding IP / MAC addresses) are in the schema's
non-feature roles and never reach a model.
See docs/datasets.md.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from bench.data.cache import TableCache
from bench.data.dataset import Dataset, Schema
from bench.data.table.clean import (
    CleanCounts,
    add_label,
    apply_non_finite,
    drop_empty_rows,
    fill_missing_text,
)
from bench.data.table.options import TableOptions
from bench.data.table.read import Header, load_file, read_header, resolve_paths
from bench.data.table.roles import (
    SOURCE_FILE,
    Roles,
    absent_hints,
    check_same_columns,
    resolve_roles,
    with_value_identifiers,
)
from bench.errors import ConfigError, DataError

__all__ = ["load"]
log = logging.getLogger(__name__)
SHOWN_LABEL_VALUES = 25  # label values listed (with counts) in the data.label_values note


def _is_text(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype)


def _check_same_types(frames: Mapping[Path, pd.DataFrame], headers: Mapping[Path, Header]
                      ) -> None:
    """Raise DataError naming both files when a column is numeric in one and text in another
    (a column with no value at all in a file is neutral and becomes text there)."""
    seen: dict[str, tuple[Path, bool]] = {}
    for path, frame in frames.items():
        for column in frame.columns:
            values = frame[column]
            if not _is_text(values) and values.isna().all():
                continue
            text = _is_text(values)
            first = seen.setdefault(column, (path, text))
            if first[1] != text:
                text_path, text_frame = (path, frame) if text else (first[0], frames[first[0]])
                numeric_path = first[0] if text else path
                strings = text_frame[column].astype("string")
                bad = strings.notna() & pd.to_numeric(strings, errors="coerce").isna()
                row = text_frame.index[int(bad.to_numpy().argmax())]
                header = headers[text_path]
                raise DataError(
                    f"column {header.describe(column)} is numeric in {numeric_path} but text in "
                    f"{text_path} (line {row + header.first_line}: {strings[row]!r}); make the "
                    "files agree or declare the column in dataset.categorical")


def _categorical(frame: pd.DataFrame, roles: Roles, options: TableOptions) -> tuple[list[str],
                                                                                    str]:
    """Categorical feature columns (declared, or every text column) and how they were chosen.

    Raises DataError for an inferred or undeclared text column with more than
    `max_categories` values (an address or an identifier, not a category).
    """
    skip = roles.not_features()
    text = [c for c in frame.columns if _is_text(frame[c]) and c not in skip]
    if options.categorical is not None:
        undeclared = [c for c in text if c not in options.categorical]
        if undeclared:
            raise DataError(f"{_files_of(frame)}: text column(s) {undeclared} are not declared "
                            "in dataset.categorical: declare them there, or as dataset.identifiers "
                            "/ dataset.metadata, or list them in dataset.drop")
        return [c for c in options.categorical if c not in skip], "declared"
    for column in text:
        count = frame[column].nunique()
        if count > options.max_categories:
            raise DataError(
                f"{_files_of(frame)}: column {column!r} is text with {count:,} distinct values "
                f"(more than dataset.max_categories={options.max_categories}): an address or "
                "identifier rather than a category; declare it in dataset.identifiers or "
                "dataset.drop (or in dataset.categorical to keep it)")
    return text, "inferred (text columns)"


def _files_of(frame: pd.DataFrame) -> str:
    """The source files of `frame`'s rows, for messages: `a.csv`, or `a.csv, b.csv (+3 more)`."""
    names = [str(n) for n in pd.unique(frame[SOURCE_FILE])] if SOURCE_FILE in frame else []
    shown = ", ".join(names[:2]) or "the data"
    return shown + (f" (+{len(names) - 2} more)" if len(names) > 2 else "")


def _clean(frames: dict[Path, pd.DataFrame], headers: Mapping[Path, Header],
           options: TableOptions, roles: Roles, counts: CleanCounts) -> dict[Path, pd.DataFrame]:
    out = {}
    for path, frame in frames.items():
        frame = drop_empty_rows(frame, counts)
        frame = add_label(frame, headers[path], options, roles)
        numeric = [c for c in frame.columns if c not in roles.not_features()
                   and not _is_text(frame[c])]
        out[path] = apply_non_finite(frame, headers[path], numeric, options.non_finite, counts)
    return out


def _concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate keeping categorical columns categorical (categories unified first)."""
    frames = list(frames)
    for column in frames[0].columns:
        if _is_text(frames[0][column]) or any(_is_text(f[column]) for f in frames):
            categories = pd.api.types.union_categoricals(
                [f[column].astype(str).astype("category") if not _is_text(f[column])
                 else f[column] for f in frames], ignore_order=True).categories
            for frame in frames:
                frame[column] = frame[column].astype(pd.CategoricalDtype(categories))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(
        drop=True)


def _read_all(paths: Sequence[Path], headers: Mapping[Path, Header], options: TableOptions,
              cache: TableCache, pins: Mapping[str, str]
              ) -> tuple[dict[Path, pd.DataFrame], dict[str, str], dict[Path, str]]:
    """Parse (or load from the cache) every file; check sha256 pins first. Returns frames, one
    note per file and each file's sha256."""
    frames, notes, shas = {}, {}, {}
    for i, path in enumerate(paths):
        digest = cache.digest(path)
        shas[path] = digest.sha256
        pinned = pins.get(path.name) or pins.get(path.name.removesuffix(".gz"))
        if pinned and pinned != digest.sha256:
            raise DataError(f"{path}: sha256 {digest.sha256} differs from the value pinned in "
                            f"dataset.sha256 ({pinned})")
        frame, hit = load_file(headers[path], options, cache, digest)
        cache.remember(path, digest)
        frames[path] = frame
        notes[f"data.file.{i}"] = (f"{path.name}: {len(frame):,} rows, sha256 {digest.sha256}"
                                   f"{' (pinned, ok)' if pinned else ''}, "
                                   f"{'cache' if hit else 'parsed'}")
    return frames, notes, shas


def _source_notes(roles_of: Mapping[str, list[Path]], shas: Mapping[Path, str],
                  configured: Mapping[str, object]) -> dict[str, str]:
    """data.file.<role> and data.sha256.<role> per partition, as the fixed loaders write them
    (the run's MLflow dataset inputs name them): its file, or for several files the
    configured path and a sha256 of their sha256s and names, in order."""
    notes = {}
    for role, group in roles_of.items():
        if len(group) == 1:
            notes[f"data.file.{role}"], notes[f"data.sha256.{role}"] = group[0].name, shas[group[0]]
        else:
            listing = "".join(f"{shas[p]}  {p.name}\n" for p in group)
            notes[f"data.file.{role}"] = str(configured[role])
            notes[f"data.sha256.{role}"] = hashlib.sha256(listing.encode()).hexdigest()
    return notes


def _pins(sha256: Sequence[str] | None) -> dict[str, str]:
    """{file name: sha256} from lines in `sha256sum` output form: '<sha256>  <file name>'.

    (A list rather than a mapping: file names such as KDDTrain+.txt are not valid MLflow param
    keys, and the flattened config is logged as params.)
    """
    if isinstance(sha256, str | Mapping):
        raise ConfigError("dataset.sha256 must be a list of '<sha256>  <file name>' lines (as "
                          f"printed by sha256sum), got {sha256!r}")
    pins = {}
    for line in sha256 or ():
        parts = str(line).split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ConfigError(f"dataset.sha256: {line!r} is not '<sha256>  <file name>'")
        pins[parts[1].strip().lstrip("*")] = parts[0].lower()
    return pins


def load(
    path: str | Sequence[str] | None = None,
    label: str | None = None,
    normal: Sequence[object] | object | None = None,
    attack: Sequence[object] | object | None = None,
    test_path: str | Sequence[str] | None = None,
    data_dir: str | Path = "data",
    cache_dir: str | Path | None = None,
    name: str = "table",
    sha256: Sequence[str] | None = None,
    **options: object,
) -> Dataset:
    """Load a labelled table (see the module doc and `TableOptions` for the options).

    `train` holds the rows of `path` (TRAIN/VAL, and TEST unless `test_path` is given or the
    split picks TEST by file or time); `test` the rows of `test_path`. The frame keeps the
    source columns (normalised names), adds the binary target `label` (1 = attack) and
    `source_file`; rows are in file order, files in the listed order. Raises ConfigError /
    DataError (naming file, line, column, value) before anything is fitted.
    """
    opts, roles_of, pins = _checked(path, label, normal, attack, test_path, data_dir, sha256,
                                    options)
    paths = [p for group in roles_of.values() for p in group]
    headers = {p: read_header(p, opts) for p in paths}  # all headers before any parsing
    check_same_columns(list(headers.values()))
    roles = resolve_roles(headers[paths[0]], opts)
    warnings = _unmatched_names(headers, opts, roles)
    frames, notes, shas = _read_all(paths, headers, opts, TableCache(cache_dir), pins)
    notes.update(_source_notes(roles_of, shas, {"train": path, "test": test_path}))
    _check_same_types(frames, headers)
    counts = CleanCounts()
    frames = _clean(frames, headers, opts, roles, counts)
    _check_declared_values(frames, opts, roles)
    names = pd.CategoricalDtype([p.name for p in paths])
    for p, frame in frames.items():
        frame[SOURCE_FILE] = pd.Series(p.name, index=frame.index).astype(names)
    parts = {role: _concat([frames[p] for p in group]) for role, group in roles_of.items()}
    roles = with_value_identifiers(roles, parts["train"], opts)
    categorical, how = _categorical(parts["train"], roles, opts)
    for role, frame in parts.items():
        parts[role] = fill_missing_text(frame, categorical, counts)
    schema = _schema(parts["train"], roles, categorical)
    notes.update(_notes(opts, roles, counts, categorical, how, parts))
    notes["data.label_values"], near = _label_values(parts, opts, roles)
    for warning in [*warnings, *near]:
        log.warning(f"[data] {warning}")
    return Dataset(name=name, schema=schema, train=parts["train"], test=parts.get("test"),
                   notes=notes)


def _unmatched_names(headers: Mapping[Path, Header], options: TableOptions, roles: Roles
                     ) -> list[str]:
    """Warnings for declared column names that match no column: identifiers, label proxies
    and metadata absent from the header (each with a "did you mean"), dataset.drop names in
    no file's header. (A name differing from a column only by case or punctuation is already
    an error: roles.resolve_roles, read.read_header.)"""
    first = next(iter(headers.values()))
    out = []
    if roles.absent:
        out.append(f"declared column(s) not in the files, so nothing was excluded under these "
                   f"names: {absent_hints(first, roles.absent)} (dataset.identifiers / "
                   "label_proxies / metadata)")
    unused = [n for n in options.drop if not any(n in h.dropped for h in headers.values())]
    if unused:
        out.append(f"dataset.drop names column(s) in no file: {absent_hints(first, unused)}")
    return out


def _label_values(parts: Mapping[str, pd.DataFrame], options: TableOptions, roles: Roles
                  ) -> tuple[str, list[str]]:
    """(note, warnings): each label value with its row count and side (normal / attack), most
    frequent first; a warning for each value that is not declared but differs from a declared
    normal (attack) value only by surrounding spaces or case, or is the same number written
    otherwise ('0.0' for 0), so it went to the other side."""
    counts = pd.concat([frame.groupby([roles.raw, roles.target], observed=True).size()
                        for frame in parts.values()])
    counts = counts.groupby(level=[0, 1]).sum().sort_values(ascending=False, kind="stable")
    counts.index = counts.index.set_levels(counts.index.levels[0].astype(str), level=0)
    sides = {0: "normal", 1: "attack"}
    counted = {0: "normal", 1: "an attack"}
    shown = [f"{value!r} {count:,} {sides[int(side)]}"
             for (value, side), count in counts.head(SHOWN_LABEL_VALUES).items()]
    if len(counts) > SHOWN_LABEL_VALUES:
        shown.append(f"... ({len(counts) - SHOWN_LABEL_VALUES} more)")

    def fold(value: str) -> str:
        return value.strip().casefold()

    declared = {0: {fold(v): v for v in options.normal}, 1: {fold(v): v for v in options.attack}}
    numbers = {side: {_as_number(v): v for v in values if _as_number(v) is not None}
               for side, values in ((0, options.normal), (1, options.attack))}
    keys = {0: "dataset.normal", 1: "dataset.attack"}
    warnings = []
    for (value, side), count in counts.items():
        if value in options.normal or value in options.attack:
            continue
        other = 1 - int(side)  # the side whose declared value it resembles
        match = declared[other].get(fold(value))
        how = "only by surrounding spaces or case"
        if match is None and _as_number(value) is not None:
            match = numbers[other].get(_as_number(value))
            how = "only in how the number is written (equal in value)"
        if match is not None:
            rows = f"{count:,} row{'s' * (count != 1)}"
            warnings.append(
                f"label value {value!r} ({rows}) differs from the {keys[other]} value {match!r} "
                f"{how}: counted as {counted[int(side)]}; add it to {keys[other]} (or fix the "
                f"files) if it is {sides[other]}")
    return ", ".join(shown), warnings


def _as_number(value: str) -> float | None:
    """`value` as a finite number ('0', '0.0', '1e0', ' 1 '), else None."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_declared_values(frames: Mapping[Path, pd.DataFrame], options: TableOptions,
                           roles: Roles) -> None:
    """DataError when no row of any file has a value of dataset.normal (or of
    dataset.attack): a misspelt or wrongly cased value made every row an attack, and the
    split then said TRAIN had no normal rows."""
    present = sorted(set().union(*(set(frame[roles.raw].astype(str).unique())
                                   for frame in frames.values())))
    for key in ("normal", "attack"):
        declared = list(getattr(options, key))
        if declared and not set(declared) & set(present):
            shown = present[:20] + (["..."] if len(present) > 20 else [])
            raise DataError(f"dataset.{key}={declared}: no row's {options.label!r} has one of "
                            f"these values (compared as text, case-sensitive); its values: "
                            f"{shown}")


def check_options(path: str | Sequence[str] | None = None, label: str | None = None,
                  normal: object = None, attack: object = None,
                  test_path: str | Sequence[str] | None = None, data_dir: str | Path = "data",
                  sha256: Sequence[str] | None = None, cache_dir: object = None,
                  name: object = None, **options: object) -> None:
    """ConfigError for what `load` would refuse before reading any row: the options, the
    files (they exist; none both TRAIN and TEST) and the checksum pins. bench.validate calls
    it for each config of a command, so a grid's bad value stops the command before its first
    cell (it stopped the cell that had it, after the cells before it had run)."""
    _checked(path, label, normal, attack, test_path, data_dir, sha256, options)


def _checked(path: str | Sequence[str] | None, label: str | None, normal: object,
             attack: object, test_path: str | Sequence[str] | None, data_dir: str | Path,
             sha256: Sequence[str] | None, options: Mapping[str, object]
             ) -> tuple[TableOptions, dict[str, list[Path]], dict[str, str]]:
    if not path:
        raise ConfigError("dataset.path must name the data: a file, a list of files, a folder "
                          "or a glob (relative to paths.data_dir)")
    opts = TableOptions.from_config(label=label, normal=normal, attack=attack, **options)
    roles_of = _files_by_role(path, test_path, data_dir)
    pins = _pins(sha256)
    _check_pins(pins, [p for group in roles_of.values() for p in group])
    return opts, roles_of, pins


def data_files(path: str | Sequence[str] | None = None,
               test_path: str | Sequence[str] | None = None, data_dir: str | Path = "data",
               **_: object) -> dict[str, Path]:
    """{"<role>.<i>:<file name>": file} of every file `load` reads with these options (role
    train or test, i its place in that role's files), resolved as `load` resolves them, so a
    glob or folder names the files it holds now (bench.resume.data_hash hashes them). Empty
    without `path` (`load` refuses that); raises the DataError `load` would for a name that
    matches nothing."""
    if not path:
        return {}
    return {f"{role}.{i}:{file.name}": file
            for role, files in _files_by_role(path, test_path, data_dir).items()
            for i, file in enumerate(files)}


def _files_by_role(path: str | Sequence[str], test_path: str | Sequence[str] | None,
                   data_dir: str | Path) -> dict[str, list[Path]]:
    """{"train": files of dataset.path[, "test": files of dataset.test_path]}, disjoint."""
    roles_of = {"train": resolve_paths(path, data_dir, "path")}
    if test_path:
        roles_of["test"] = resolve_paths(test_path, data_dir, "test_path")
        shared = set(roles_of["train"]) & set(roles_of["test"])
        if shared:
            raise ConfigError(f"file(s) {sorted(map(str, shared))} are in both dataset.path and "
                              "dataset.test_path")
    return roles_of


def _check_pins(pins: Mapping[str, str], paths: Sequence[Path]) -> None:
    """Every pinned file name must be one of the dataset's files (with or without .gz)."""
    unknown = [k for k in pins if not any(k in (p.name, p.name.removesuffix(".gz"))
                                          for p in paths)]
    if unknown:
        raise ConfigError(f"dataset.sha256 pins file(s) {unknown} that are not among the "
                          f"dataset's files {[p.name for p in paths]}")


def _schema(train: pd.DataFrame, roles: Roles, categorical: list[str]) -> Schema:
    """Column roles of the loaded frame: features are the categorical columns and the
    numeric columns that have no other role."""
    numeric = [c for c in train.columns if c not in roles.not_features()
               and c not in categorical and not _is_text(train[c])]
    return Schema(label=roles.target, categorical=tuple(categorical), numeric=tuple(numeric),
                  family=roles.family, identifiers=roles.identifiers,
                  label_proxies=roles.label_proxies, metadata=roles.metadata)


def _notes(options: TableOptions, roles: Roles, counts: CleanCounts, categorical: list[str],
           how: str, parts: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Facts to print and tag on the run (MLflow tags)."""
    notes = {
        "data.partition": ", ".join(f"{role}: {len(f):,} rows from "
                                    f"{f[SOURCE_FILE].nunique()} file(s)"
                                    for role, f in parts.items()),
        "data.categorical": f"{how}: {categorical}",
        "data.label": (f"{options.label!r} -> {roles.target} (1 = attack); normal = "
                       f"{list(options.normal) or 'all but dataset.attack'}"),
        "data.non_finite": counts.non_finite_note(options.non_finite),
        "data.non_finite_cells": str(sum(counts.cells.values())),
        "data.non_finite_rows_dropped": str(counts.non_finite_rows),
        "data.empty_rows_dropped": str(counts.empty_rows),
    }
    if roles.flagged:
        named = [c for c in roles.flagged if c not in (*roles.addresses, *roles.times)]
        found = ([f"well-known flow identifier columns {named}"] if named else []) + (
            [f"columns holding IP / MAC addresses {list(roles.addresses)}"]
            if roles.addresses else []) + (
            [f"columns holding dates or epoch times {list(roles.times)}"] if roles.times else [])
        notes["data.flow_identifiers"] = (
            f"{' and '.join(found)} are identifiers, never features "
            "(dataset.flow_identifiers=false to keep them)")
    if roles.proxies_by_name:
        notes["data.label_proxies"] = (
            f"columns named like a label {list(roles.proxies_by_name)} are label proxies, never "
            "features (declare one in dataset.categorical to keep it as a feature)")
    if roles.absent:
        notes["data.absent_columns"] = f"declared but not in the files: {list(roles.absent)}"
    if counts.missing_text:
        notes["data.missing_text"] = ", ".join(f"{c}: {n:,} set to '(missing)'"
                                               for c, n in counts.missing_text.items())
    return notes
