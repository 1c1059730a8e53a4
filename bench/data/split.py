"""TRAIN / VAL / TEST partitions of a dataset.

Strategies are small callables selected by Hydra (`conf/split/`): `split(dataset) -> Splits`.
When the dataset defines its own TEST partition, only TRAIN / VAL are drawn from `dataset.train`.
Row indices of the source frame are kept, so the audit can recover the original order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bench.data.dataset import Dataset
from bench.errors import ConfigError


@dataclass
class Splits:
    """The three partitions: TRAIN fits, VAL chooses, TEST is read once at the end.

    `extra_tests` are further TEST sets (the dataset's, attached by the experiment; name ->
    frame), scored by the same fit at the same threshold.
    """

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    description: str
    extra_tests: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def tests(self) -> dict[str, pd.DataFrame]:
        """Every TEST set by metric prefix: {"test": test, **extra_tests}."""
        return {"test": self.test, **self.extra_tests}

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val),
                **{name: len(frame) for name, frame in self.tests.items()}}


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"split.{name} must be in (0, 1), got {value!r}")


@dataclass
class StratifiedSplit:
    """Shuffled split stratified on the label, seeded.

    `val_size` and `test_size` are fractions of all labelled rows; with a fixed TEST partition,
    `val_size` is the fraction of `dataset.train` held out for VAL and `test_size` is unused.
    """

    val_size: float = 0.2
    test_size: float = 0.2
    seed: int = 0

    def __call__(self, dataset: Dataset) -> Splits:
        _check_fraction("val_size", self.val_size)
        y = dataset.train[dataset.schema.label]
        if dataset.test is not None:
            train, val = train_test_split(
                dataset.train, test_size=self.val_size, stratify=y, random_state=self.seed
            )
            return Splits(train, val, dataset.test, "official TEST partition; TRAIN/VAL "
                          f"stratified from the training partition (val_size={self.val_size})")
        _check_fraction("test_size", self.test_size)
        if self.val_size + self.test_size >= 1.0:
            raise ConfigError("split.val_size + split.test_size must be < 1, got "
                              f"{self.val_size} + {self.test_size}")
        rest, test = train_test_split(
            dataset.train, test_size=self.test_size, stratify=y, random_state=self.seed
        )
        val_of_rest = self.val_size / (1.0 - self.test_size)
        train, val = train_test_split(
            rest, test_size=val_of_rest, stratify=rest[dataset.schema.label],
            random_state=self.seed,
        )
        return Splits(train, val, test, "stratified shuffled re-split "
                      f"(val_size={self.val_size}, test_size={self.test_size}, seed={self.seed})")


@dataclass
class BlockedSplit:
    """Contiguous blocks in the source order: TRAIN first, then VAL, then TEST.

    For rows collected over time (polled counters), where a shuffled split lets near-identical
    neighbours sit on both sides and overstates accuracy. With `per_class=True` every class is
    cut into blocks separately (first rows of each class to TRAIN, last to TEST), so that a file
    sorted by class still has every class in every partition.
    """

    val_size: float = 0.2
    test_size: float = 0.2
    per_class: bool = True

    def __call__(self, dataset: Dataset) -> Splits:
        _check_fraction("val_size", self.val_size)
        frame, schema = dataset.train, dataset.schema
        groups = [frame]
        if self.per_class:
            key = schema.family or schema.label
            groups = [g for _, g in frame.groupby(key, sort=False)]
        parts: dict[str, list[pd.DataFrame]] = {"train": [], "val": [], "test": []}
        test_size = 0.0 if dataset.test is not None else self.test_size
        if self.val_size + test_size >= 1.0:  # TRAIN would be empty
            raise ConfigError("split.val_size + split.test_size must be < 1, got "
                              f"{self.val_size} + {test_size}")
        for group in groups:
            n = len(group)
            n_test = round(n * test_size)
            n_val = round(n * self.val_size)
            n_train = n - n_val - n_test
            parts["train"].append(group.iloc[:n_train])
            parts["val"].append(group.iloc[n_train : n_train + n_val])
            parts["test"].append(group.iloc[n_train + n_val :])
        train, val = pd.concat(parts["train"]), pd.concat(parts["val"])
        test = dataset.test if dataset.test is not None else pd.concat(parts["test"])
        per = " per class" if self.per_class else ""
        return Splits(train, val, test, f"contiguous blocks{per} in collection order "
                      f"(val_size={self.val_size}, test_size={test_size})")


@dataclass
class GroupedSplit:
    """Novel-attack validation: whole attack groups are held out of TRAIN into VAL, seeded.

    `group` names the column whose values are the attack groups (None: the dataset's family
    column, e.g. NSL-KDD `attack_family`; or a finer one such as NSL-KDD `attack`). Groups are
    the values seen on attack rows (label 1). `holdout` is the share of those groups (rounded,
    at least one) drawn, with `seed`, into VAL in full; every other row (normal traffic and the
    attack groups TRAIN keeps) is split label-stratified into TRAIN / VAL with `val_size`, so
    VAL holds known and novel attacks while TRAIN holds only the known ones. TEST is the
    dataset's official partition, or else a label-stratified `test_size` share of all rows
    drawn first (it then holds rows of every group, like a real test set). Repeated draws are
    seeds (`-m seed=0,1,2`): see docs/validation.md.
    """

    group: str | None = None
    holdout: float = 0.3
    val_size: float = 0.2
    test_size: float = 0.2
    seed: int = 0

    def _groups(self, frame: pd.DataFrame, label: str, column: str) -> list[str]:
        groups = sorted(frame.loc[frame[label] == 1, column].astype(str).unique())
        if len(groups) < 2:
            raise ConfigError(f"split.group={column!r}: the data has {len(groups)} attack "
                              "group(s); holding one out would leave TRAIN without attacks")
        return groups

    def _held_out(self, groups: list[str]) -> list[str]:
        _check_fraction("holdout", self.holdout)
        n_out = max(1, round(self.holdout * len(groups)))
        if n_out >= len(groups):
            raise ConfigError(f"split.holdout={self.holdout} holds out all {len(groups)} attack "
                              "groups: TRAIN would have no attacks")
        rng = np.random.default_rng(self.seed)
        return sorted(rng.choice(groups, size=n_out, replace=False).tolist())

    def __call__(self, dataset: Dataset) -> Splits:
        _check_fraction("val_size", self.val_size)
        schema, frame = dataset.schema, dataset.train
        column = self.group or schema.family
        if column is None:
            raise ConfigError(f"split.group is null and dataset {dataset.name!r} declares no "
                              "attack family column: a grouped split needs attack groups")
        if column not in frame.columns:
            raise ConfigError(f"split.group={column!r}: dataset {dataset.name!r} has no such "
                              f"column (its family column: {schema.family!r})")
        test = dataset.test
        if test is None:
            _check_fraction("test_size", self.test_size)
            frame, test = train_test_split(frame, test_size=self.test_size,
                                           stratify=frame[schema.label], random_state=self.seed)
        held = self._held_out(self._groups(frame, schema.label, column))
        novel = (frame[schema.label] == 1) & frame[column].astype(str).isin(held)
        rest = frame.loc[~novel]
        train, val_known = train_test_split(rest, test_size=self.val_size,
                                            stratify=rest[schema.label], random_state=self.seed)
        val = pd.concat([val_known, frame.loc[novel]])
        where = "official TEST partition" if dataset.test is not None else (
            f"stratified TEST (test_size={self.test_size})")
        return Splits(train, val, test, f"{where}; attack groups of {column!r} held out of "
                      f"TRAIN into VAL: {held} (holdout={self.holdout}, seed={self.seed}); "
                      f"other rows stratified (val_size={self.val_size})")


# --------------------------------------------------------------------------------------------
# Splits by file and by time (datasets that record each row's file in `source_file`).

SOURCE_FILE = "source_file"


def _pick_files(available: list[str], wanted: list[str], key: str) -> list[str]:
    """The `available` file names matching `wanted` (with or without .gz); ConfigError if not."""
    picked = []
    for name in wanted:
        match = [a for a in available if name in (a, a.removesuffix(".gz"), f"{a}.gz")]
        if not match:
            raise ConfigError(f"split.{key}: no file {name!r} in the dataset; its files: "
                              f"{available}")
        picked.extend(m for m in match if m not in picked)
    return picked


def _non_empty(parts: dict[str, pd.DataFrame], how: str) -> None:
    for name, part in parts.items():
        if part.empty:
            raise ConfigError(f"{how} leaves {name.upper()} empty")


@dataclass
class ByFileSplit:
    """TEST = whole files (`test_files`), VAL = whole files (`val_files`) or a label-stratified
    `val_size` share of the TRAIN files' rows, TRAIN = `train_files` (default: all the others).

    For captures stored one file per day or per scenario, where rows of one file resemble each
    other more than rows of different files. With a fixed TEST partition in the dataset,
    `test_files` must be empty.
    """

    test_files: tuple[str, ...] = ()
    val_files: tuple[str, ...] = ()
    train_files: tuple[str, ...] = ()
    val_size: float = 0.2
    seed: int = 0

    def __call__(self, dataset: Dataset) -> Splits:
        frame = dataset.train
        self._check(dataset)
        files = frame[SOURCE_FILE].astype(str)
        available = list(dict.fromkeys(files))
        train, val, test = self._files(available)
        parts = {"train": frame.loc[files.isin(train).to_numpy()],
                 "test": (dataset.test if dataset.test is not None
                          else frame.loc[files.isin(test).to_numpy()])}
        if val:
            parts["val"] = frame.loc[files.isin(val).to_numpy()]
            how = f"VAL = {val}"
        else:
            _check_fraction("val_size", self.val_size)
            parts["train"], parts["val"] = train_test_split(
                parts["train"], test_size=self.val_size, random_state=self.seed,
                stratify=parts["train"][dataset.schema.label])
            parts["train"], parts["val"] = parts["train"].sort_index(), parts["val"].sort_index()
            how = f"VAL = a stratified {self.val_size} share of TRAIN (seed={self.seed})"
        _non_empty(parts, "split=by_file")
        unused = [f for f in available if f not in {*train, *val, *test}]
        return Splits(parts["train"], parts["val"], parts["test"],
                      f"by file: TRAIN = {train}; {how}; TEST = "
                      f"{test or 'the dataset TEST partition'}"
                      + (f"; unused: {unused}" if unused else ""))

    def _check(self, dataset: Dataset) -> None:
        """The dataset records each row's file, and TEST comes from exactly one place."""
        if SOURCE_FILE not in dataset.train.columns:
            raise ConfigError(f"split=by_file needs a dataset that records each row's file "
                              f"(column {SOURCE_FILE!r}), such as dataset=table")
        if dataset.test is not None and self.test_files:
            raise ConfigError("split.test_files must be empty: the dataset has a fixed TEST "
                              "partition (dataset.test_path)")
        if dataset.test is None and not self.test_files:
            raise ConfigError("split.test_files must name the TEST file(s)")

    def _files(self, available: list[str]) -> tuple[list[str], list[str], list[str]]:
        """(TRAIN, VAL, TEST) file names; TRAIN defaults to every file not named elsewhere;
        a file in two partitions is a ConfigError."""
        test = _pick_files(available, list(self.test_files), "test_files")
        val = _pick_files(available, list(self.val_files), "val_files")
        train = (_pick_files(available, list(self.train_files), "train_files")
                 or [f for f in available if f not in {*test, *val}])
        clash = (set(train) & set(test)) | (set(train) & set(val)) | (set(val) & set(test))
        if clash:
            raise ConfigError(f"split: file(s) {sorted(clash)} are in more than one partition")
        if not train:
            raise ConfigError(f"split=by_file leaves no file for TRAIN: the dataset's files "
                              f"{available} are all TEST or VAL files; name fewer in "
                              "split.test_files / split.val_files, or add files")
        return train, val, test


def _times(values: pd.Series, column: str, dayfirst: bool, unit: str | None) -> pd.Series:
    """`values` as timestamps; DataError naming the column, how many rows and the first row
    (its source row position) whose value is missing or not a date/time: such a row belongs to
    no period, and would otherwise land in TEST."""
    from bench.errors import DataError

    if pd.api.types.is_numeric_dtype(values):
        times = pd.to_datetime(values, unit=unit or "s", errors="coerce")
        shown = values
    else:
        shown = values.astype("string")
        times = pd.to_datetime(shown, format="mixed", dayfirst=dayfirst, errors="coerce")
    bad = times.isna()
    if bad.any():
        first, value = shown.index[bad.to_numpy()][0], shown[bad].iloc[0]
        what = ("has no value" if pd.isna(value) else
                f"has {value!r}, not a date/time (set split.dayfirst or split.unit?)")
        raise DataError(f"split=by_time: column {column!r}: {int(bad.sum())} row(s) without a "
                        f"time; row {first} (source row position) {what}. Drop or fill those "
                        "rows: a row without a time belongs to no period")
    return times


def _cut(value: object, dayfirst: bool, unit: str | None, key: str) -> pd.Timestamp:
    try:
        if unit is not None and isinstance(value, int | float):
            return pd.to_datetime(value, unit=unit)
        return pd.to_datetime(str(value), dayfirst=dayfirst)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"split.{key}: {value!r} is not a date/time ({exc})") from exc


@dataclass
class ByTimeSplit:
    """TRAIN < `val_from` <= VAL < `test_from` <= TEST on the time column `column`.

    Without `val_from`, VAL = the latest `val_size` share (in time) of the rows before
    `test_from`. The time column must not be a feature (declare it identifier or metadata;
    well-known names such as Timestamp / ts are flagged by dataset=table). Rows whose time is
    missing are an error.
    """

    column: str = "Timestamp"
    test_from: str | float | None = None
    val_from: str | float | None = None
    val_size: float = 0.2
    dayfirst: bool = False
    unit: str | None = None

    def __call__(self, dataset: Dataset) -> Splits:
        frame = dataset.train
        if self.column not in frame.columns:
            raise ConfigError(f"split.column: no column {self.column!r} in the dataset")
        if self.column in dataset.schema.features:
            raise ConfigError(f"split.column {self.column!r} is a feature: declare it in "
                              "dataset.identifiers or dataset.metadata first")
        if dataset.test is not None or self.test_from is None:
            raise ConfigError("split=by_time needs split.test_from and a dataset without a "
                              "fixed TEST partition")
        times = _times(frame[self.column], self.column, self.dayfirst, self.unit)
        test_cut = _cut(self.test_from, self.dayfirst, self.unit, "test_from")
        before = (times < test_cut).to_numpy()
        parts = {"test": frame.loc[~before]}
        if self.val_from is not None:
            val_cut = _cut(self.val_from, self.dayfirst, self.unit, "val_from")
            early = (times < val_cut).to_numpy()
            parts["train"], parts["val"] = frame.loc[early], frame.loc[before & ~early]
            how = f"VAL from {val_cut}"
        else:
            _check_fraction("val_size", self.val_size)
            order = times[before].sort_values(kind="stable").index
            n_val = round(len(order) * self.val_size)
            cut = len(order) - n_val
            parts["train"] = frame.loc[order[:cut]].sort_index()
            parts["val"] = frame.loc[order[cut:]].sort_index()
            how = f"VAL = the latest {self.val_size} share before TEST"
        _non_empty(parts, f"split=by_time (test_from={self.test_from})")
        return Splits(parts["train"], parts["val"], parts["test"],
                      f"by time on {self.column!r}: TEST from {test_cut}; {how}")
