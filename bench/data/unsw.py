"""UNSW-NB15 (UNSW Canberra), the partitioned CSVs: training (175,341 rows), testing (82,332).

Both partitions found: the official split (training -> TRAIN/VAL, testing -> TEST). One found:
`test` is None, TEST is re-split from it, and the notes say so. A partition is recognised by its
content (published checksum, else row count), not only its name: the widely mirrored Kaggle copy
swaps the two file names, and a swapped name only warns.

The files are UTF-8 with a BOM and CRLF line endings. `id` is a row counter (identifier) and
`attack_cat` names the attack (label proxy, family); neither is ever a feature.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.cache import Table, TableCache, load_table, source_notes, verify_summary
from bench.data.dataset import Dataset, Schema
from bench.data.files import (
    PUBLISHERS,
    DataWarning,
    TableSpec,
    bound_arguments,
    check_verify_mode,
    find,
    missing_files_error,
)
from bench.errors import DataError

LOADER_VERSION = "unsw.v1"

COLUMNS: tuple[str, ...] = (
    "id", "dur", "proto", "service", "state", "spkts", "dpkts", "sbytes", "dbytes", "rate",
    "sttl", "dttl", "sload", "dload", "sloss", "dloss", "sinpkt", "dinpkt", "sjit", "djit",
    "swin", "stcpb", "dtcpb", "dwin", "tcprtt", "synack", "ackdat", "smean", "dmean",
    "trans_depth", "response_body_len", "ct_srv_src", "ct_state_ttl", "ct_dst_ltm",
    "ct_src_dport_ltm", "ct_dst_sport_ltm", "ct_dst_src_ltm", "is_ftp_login", "ct_ftp_cmd",
    "ct_flw_http_mthd", "ct_src_ltm", "ct_srv_dst", "is_sm_ips_ports", "attack_cat", "label",
)
CATEGORICAL: tuple[str, ...] = ("proto", "service", "state")
NUMERIC: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in {*CATEGORICAL, "id", "attack_cat", "label"})
ATTACK_CATEGORIES = frozenset({
    "Normal", "Generic", "Exploits", "Fuzzers", "DoS", "Reconnaissance", "Analysis",
    "Backdoor", "Shellcode", "Worms",
})

SPEC = TableSpec(
    columns=COLUMNS,
    numeric=("id", *NUMERIC, "label"),
    header=True,
    allowed={"label": frozenset({0, 1}), "attack_cat": ATTACK_CATEGORIES},
)

SCHEMA = Schema(
    label="label",
    categorical=CATEGORICAL,
    numeric=NUMERIC,
    family="attack_cat",
    identifiers=("id",),
    label_proxies=("attack_cat",),
)

OFFICIAL_NAMES = {"training": "UNSW_NB15_training-set.csv",
                  "testing": "UNSW_NB15_testing-set.csv"}
PARTITION_ROWS = {"training": 175_341, "testing": 82_332}


def _prepare_for(path: Path):
    """A `prepare` step for `path`: label as int64; label must agree with attack_cat."""

    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        frame["label"] = frame["label"].astype("int64")
        normal = (frame["attack_cat"] == "Normal").to_numpy()
        wrong = (frame["label"].to_numpy() == 1) == normal
        if wrong.any():
            row = int(np.argmax(wrong))
            raise DataError(
                f"{path}: line {row + 2}, column 'label': label {frame['label'].iat[row]} "
                f"contradicts attack_cat {frame['attack_cat'].iat[row]!r} (label must be 0 "
                "exactly for attack_cat 'Normal')")
        return frame

    return prepare


def _identify(table: Table, named_as: str) -> tuple[str, str]:
    """(partition, how it was recognised) of a loaded table: by checksum, row count or name."""
    content = table.verification.content
    if content is not None and content.dataset == "unsw":
        partition = next(p for p, n in OFFICIAL_NAMES.items() if n == content.name)
        return partition, "published checksum"
    for partition, rows in PARTITION_ROWS.items():
        if len(table.frame) == rows:
            return partition, f"row count {rows:,}"
    return named_as, "its configured name (unknown content, unexpected row count)"


def _partitions(found: dict[str, Path], cache: TableCache, verify: str
                ) -> dict[str, tuple[Table, str]]:
    """{partition: (table, how it was recognised)} of the files found, by content: a file
    named as one partition but holding the other is used as what it holds (DataWarning)."""
    by_partition: dict[str, tuple[Table, str]] = {}
    for named_as, path in found.items():
        table = load_table(path, SPEC, cache, LOADER_VERSION, verify, _prepare_for(path))
        partition, how = _identify(table, named_as)
        if partition != named_as:
            message = (f"{path} holds the UNSW-NB15 {partition} partition "
                       f"({len(table.frame):,} rows, recognised by {how}), although it is "
                       f"configured as the {named_as} file: mirrors such as Kaggle swap the two "
                       f"file names. Using it as the {partition} partition.")
            warnings.warn(message, DataWarning, stacklevel=3)
        if partition in by_partition:
            raise DataError(f"{by_partition[partition][0].path} and {path} both hold the "
                            f"UNSW-NB15 {partition} partition; configure one file per partition")
        by_partition[partition] = (table, how)
    return by_partition


def _resplit_notes(partition: str, described: str) -> dict[str, str]:
    """Notes announcing that only one partition was found and everything is re-split."""
    other = "testing" if partition == "training" else "training"
    return {"data.partition": (f"{described}; the {other} partition "
                               f"({OFFICIAL_NAMES[other]}) was not found"),
            "data.resplit": (f"only the {partition} partition found: TRAIN/VAL/TEST are all "
                             "re-split from it (not comparable with the official split)")}


def _files(data_dir: str | Path, verify: str, train_file: str | None, test_file: str | None
           ) -> dict[str, Path]:
    """{partition it is named as: path} of the configured files that exist (one at least)."""
    check_verify_mode(verify)
    configured = {"training": train_file, "testing": test_file}
    paths = {role: find(data_dir, fname) for role, fname in configured.items() if fname}
    found = {role: path for role, path in paths.items() if path is not None}
    if not found:
        names = [fname for fname in configured.values() if fname]
        raise missing_files_error(data_dir, names, "unsw")
    return found


def check_options(**options: Any) -> None:
    """What `load(**options)` refuses before reading a row (a file exists); bench.validate
    calls it for every config of a command."""
    args = bound_arguments(load, options)
    _files(args["data_dir"], args["verify"], args["train_file"], args["test_file"])


def load(
    data_dir: str | Path,
    cache_dir: str | Path | None = None,
    verify: str = "warn",
    train_file: str | None = "UNSW_NB15_training-set.csv",
    test_file: str | None = "UNSW_NB15_testing-set.csv",
    name: str = "unsw",
) -> Dataset:
    """Load UNSW-NB15 from whichever of `train_file` / `test_file` exist in `data_dir`.

    Both partitions: `train` = training partition, `test` = testing partition. One: `train` =
    that partition, `test` = None (re-split; announced in `notes["data.resplit"]`). A file whose
    content is the other partition than its name says is used as what it holds, with a
    DataWarning. Raises DataError when neither file exists, both hold the same partition, or a
    file is malformed (or, with verify="strict", fails its checksum).
    """
    by_partition = _partitions(_files(data_dir, verify, train_file, test_file),
                               TableCache(cache_dir), verify)
    notes = {"data.source": " ".join(PUBLISHERS["unsw"])}
    described = [f"{t.path.name} = {p} partition ({len(t.frame):,} rows, by {how})"
                 for p, (t, how) in by_partition.items()]
    if len(by_partition) == 2:
        train, test = by_partition["training"][0], by_partition["testing"][0]
        tables = {"train": train, "test": test}
        notes["data.partition"] = "official split: " + "; ".join(described)
    else:
        (partition, (train, _)), = by_partition.items()
        test = None
        tables = {"train": train}
        notes.update(_resplit_notes(partition, described[0]))
    for role, table in tables.items():
        notes.update(source_notes(role, table))
    notes["data.verify"] = verify_summary(tables)
    return Dataset(
        name=name,
        schema=SCHEMA,
        train=train.frame,
        test=None if test is None else test.frame,
        notes=notes,
    )
