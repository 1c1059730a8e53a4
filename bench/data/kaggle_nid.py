"""Kaggle "Network Intrusion Detection" (sampadab17): Train_data.csv and Test_data.csv.

A derivative of NSL-KDD: Train_data.csv holds the 41 features of KDDTrain+_20Percent row for row
with a binary `class` (normal / anomaly); Test_data.csv holds the features of KDDTest+ without
any label. So Train_data is the only labelled file: TRAIN/VAL/TEST are re-split from it
(`test` is None, announced in the notes) and Test_data is `unlabelled` (scored, never used for
metrics). There is no attack family; `class` is a label proxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.data.cache import TableCache, load_table, source_notes, verify_summary
from bench.data.dataset import Dataset, Schema
from bench.data.files import PUBLISHERS, TableSpec, bound_arguments, check_verify_mode, locate
from bench.data.nslkdd import CATEGORICAL, FEATURES, NUMERIC

LOADER_VERSION = "kaggle_nid.v1"

TRAIN_SPEC = TableSpec(
    columns=(*FEATURES, "class"),
    numeric=NUMERIC,
    header=True,
    allowed={"class": frozenset({"normal", "anomaly"})},
)
UNLABELLED_SPEC = TableSpec(columns=FEATURES, numeric=NUMERIC, header=True)

SCHEMA = Schema(
    label="label",
    categorical=CATEGORICAL,
    numeric=NUMERIC,
    family=None,
    label_proxies=("class",),
)


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `label` (int 0/1, 1 = anomaly)."""
    frame["label"] = (frame["class"] == "anomaly").astype("int64")
    return frame


def _files(data_dir: str | Path, verify: str, train_file: str, unlabelled_file: str | None
           ) -> tuple[Path, Path | None]:
    check_verify_mode(verify)
    return (locate(data_dir, train_file, "kaggle_nid"),
            locate(data_dir, unlabelled_file, "kaggle_nid") if unlabelled_file else None)


def check_options(**options: Any) -> None:
    """What `load(**options)` refuses before reading a row (its files exist); bench.validate
    calls it for every config of a command."""
    args = bound_arguments(load, options)
    _files(args["data_dir"], args["verify"], args["train_file"], args["unlabelled_file"])


def load(
    data_dir: str | Path,
    cache_dir: str | Path | None = None,
    verify: str = "warn",
    train_file: str = "Train_data.csv",
    unlabelled_file: str | None = "Test_data.csv",
    name: str = "kaggle_nid",
) -> Dataset:
    """Load the Kaggle NID files: `train_file` -> `train`, `unlabelled_file` -> `unlabelled`.

    `test` is always None (TEST is re-split from `train_file`). `unlabelled_file=None` skips
    the unlabelled file. Raises DataError for a missing or malformed file.
    """
    train_path, unlabelled_path = _files(data_dir, verify, train_file, unlabelled_file)
    cache = TableCache(cache_dir)
    tables = {"train": load_table(train_path, TRAIN_SPEC, cache, LOADER_VERSION, verify,
                                  _prepare)}
    if unlabelled_path is not None:
        tables["unlabelled"] = load_table(unlabelled_path, UNLABELLED_SPEC, cache,
                                          LOADER_VERSION, verify)
    notes = {"data.source": " ".join(PUBLISHERS["kaggle_nid"])}
    for role, table in tables.items():
        notes.update(source_notes(role, table))
    notes["data.verify"] = verify_summary(tables)
    notes["data.partition"] = (
        f"{tables['train'].name} is the only labelled file (the features of NSL-KDD "
        "KDDTrain+_20Percent, class normal/anomaly)"
        + (f"; {tables['unlabelled'].name} (KDDTest+ features, no labels) is unlabelled, "
           "never used for metrics" if "unlabelled" in tables else ""))
    notes["data.resplit"] = f"no labelled test file: TEST is re-split from {tables['train'].name}"
    return Dataset(
        name=name,
        schema=SCHEMA,
        train=tables["train"].frame,
        test=None,
        unlabelled=tables["unlabelled"].frame if "unlabelled" in tables else None,
        notes=notes,
    )
