"""NSL-KDD (UNB CIC): KDDTrain+.txt -> TRAIN/VAL, KDDTest+.txt (or KDDTest-21.txt) -> TEST,
and further test files (KDDTest-21.txt as `test21`) scored by the same fit.

The .txt files have no header and 43 fields per row: the 41 KDD'99 features, the attack name
(`normal` or an attack), and the difficulty level (0-21, how many of 21 learners got the row
right; metadata, never a feature). label = attack != "normal". `attack_family` maps every attack
name of KDDTrain+, KDDTest+ and KDDTest-21 to DoS / Probe / R2L / U2R; an unmapped name is a
DataError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data.cache import TableCache, load_table, source_notes, verify_summary
from bench.data.dataset import Dataset, Schema
from bench.data.files import PUBLISHERS, TableSpec, bound_arguments, check_verify_mode, find, locate
from bench.errors import ConfigError

LOADER_VERSION = "nslkdd.v1"

# The 41 KDD'99 features in file order (the header of the Kaggle Train_data.csv).
FEATURES: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
CATEGORICAL: tuple[str, ...] = ("protocol_type", "service", "flag")
NUMERIC: tuple[str, ...] = tuple(c for c in FEATURES if c not in CATEGORICAL)

# The standard KDD'99 attack -> category mapping (training_attack_types for the 22 training
# attacks; the 17 attacks new in the test set as in the KDD'99 / DARPA 1999 attack tables).
# Some code puts httptunnel under R2L and worm under DoS; here they are U2R and R2L.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "normal": ("normal",),
    "DoS": ("back", "land", "neptune", "pod", "smurf", "teardrop",
            "apache2", "mailbomb", "processtable", "udpstorm"),
    "Probe": ("ipsweep", "nmap", "portsweep", "satan", "mscan", "saint"),
    "R2L": ("ftp_write", "guess_passwd", "imap", "multihop", "phf", "spy", "warezclient",
            "warezmaster", "named", "sendmail", "snmpgetattack", "snmpguess", "worm", "xlock",
            "xsnoop"),
    "U2R": ("buffer_overflow", "loadmodule", "perl", "rootkit",
            "httptunnel", "ps", "sqlattack", "xterm"),
}
ATTACK_FAMILY: dict[str, str] = {a: fam for fam, attacks in _FAMILIES.items() for a in attacks}

SPEC = TableSpec(
    columns=(*FEATURES, "attack", "difficulty"),
    numeric=(*NUMERIC, "difficulty"),
    header=False,
    allowed={"attack": frozenset(ATTACK_FAMILY)},
)

SCHEMA = Schema(
    label="label",
    categorical=CATEGORICAL,
    numeric=NUMERIC,
    family="attack_family",
    label_proxies=("attack", "attack_family"),
    metadata=("difficulty",),
)


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `label` (int 0/1, 1 = attack) and `attack_family` to a validated frame."""
    frame["label"] = (frame["attack"] != "normal").astype("int64")
    frame["attack_family"] = frame["attack"].map(ATTACK_FAMILY)
    return frame


# One flat sequence (files -> tables -> notes -> Dataset) a little over 50 lines.
def _files(data_dir: str | Path, verify: str, train_file: str, test_file: str | None,
           extra_test_files: Mapping[str, str] | None
           ) -> tuple[dict[str, Path], dict[str, str]]:
    """({role: path} of the files `load` reads, notes on extra test files not found); raises
    what `load` would before reading a row: a missing train/test file, a bad name or mode."""
    check_verify_mode(verify)
    paths = {"train": locate(data_dir, train_file, "nslkdd")}
    if test_file:
        paths["test"] = locate(data_dir, test_file, "nslkdd")
    notes: dict[str, str] = {}
    for extra, file in (extra_test_files or {}).items():
        if not re.fullmatch(r"test[a-z0-9]+", str(extra)):
            raise ConfigError(f"dataset.extra_test_files: name {extra!r} must match "
                              "test[a-z0-9]+ (its metrics are <name>_f1, ...)")
        path = find(data_dir, file)
        if path is None:
            notes[f"data.{extra}"] = f"{file} not found in {data_dir}: not scored"
        else:
            paths[extra] = path
    return paths, notes


def check_options(**options: Any) -> None:
    """What `load(**options)` refuses before reading a row (its files exist); bench.validate
    calls it for every config of a command, so a grid stops before its first cell."""
    args = bound_arguments(load, options)
    _files(args["data_dir"], args["verify"], args["train_file"], args["test_file"],
           args["extra_test_files"])


def load(
    data_dir: str | Path,
    cache_dir: str | Path | None = None,
    verify: str = "warn",
    train_file: str = "KDDTrain+.txt",
    test_file: str | None = "KDDTest+.txt",
    name: str = "nslkdd",
    extra_test_files: Mapping[str, str] | None = None,
) -> Dataset:
    """Load NSL-KDD: `train_file` -> `Dataset.train`, `test_file` -> `Dataset.test`.

    Files are found in `data_dir` plain or gzip. `test_file=None` leaves `test` None (TEST is
    re-split from the training file, and the notes say so). `extra_test_files` (name -> file,
    names matching `test[a-z0-9]+`, e.g. {"test21": "KDDTest-21.txt"}) are loaded into
    `Dataset.extra_tests` when present; a missing one is skipped with a note. Raises DataError
    for a missing train/test, malformed or (with verify="strict") non-matching file.
    """
    paths, notes = _files(data_dir, verify, train_file, test_file, extra_test_files)
    cache = TableCache(cache_dir)
    tables = {role: load_table(path, SPEC, cache, LOADER_VERSION, verify, _prepare)
              for role, path in paths.items()}
    notes["data.source"] = " ".join(PUBLISHERS["nslkdd"])
    for role, table in tables.items():
        notes.update(source_notes(role, table))
    notes["data.verify"] = verify_summary(tables)
    if "test" in tables:
        notes["data.partition"] = (f"official files: {tables['train'].name} -> TRAIN/VAL, "
                                   f"{tables['test'].name} -> TEST" + "".join(
                                       f", {tables[e].name} -> {e.upper()}"
                                       for e in tables if e not in ("train", "test")))
    else:
        notes["data.partition"] = f"{tables['train'].name} only"
        notes["data.resplit"] = (f"no test file configured: TEST is re-split from "
                                 f"{tables['train'].name}")
    return Dataset(
        name=name,
        schema=SCHEMA,
        train=tables["train"].frame,
        test=tables["test"].frame if "test" in tables else None,
        extra_tests={e: t.frame for e, t in tables.items() if e not in ("train", "test")},
        notes=notes,
    )
