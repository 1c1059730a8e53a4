"""SNMP-MIB network anomaly dataset (Al-Kasassbeh, Al-Naymat, Al-Hawari 2016): SNMP-MIB.csv.

4,998 rows of 34 polled MIB counters in collection order, `class` = normal or one of seven
attacks. label = class != "normal"; `class` is the family and a label proxy. One file, no
official split: `test` is None. Neighbouring rows are near-identical (cumulative counters polled
in sequence), so a shuffled split overstates accuracy; use `split=blocked`. One column is
literally named `tcp?ActiveOpens` (as distributed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.data.cache import TableCache, load_table, source_notes, verify_summary
from bench.data.dataset import Dataset, Schema
from bench.data.files import PUBLISHERS, TableSpec, bound_arguments, check_verify_mode, locate

LOADER_VERSION = "snmp_mib.v1"

COUNTERS: tuple[str, ...] = (
    "ifInOctets11", "ifOutOctets11", "ifoutDiscards11", "ifInUcastPkts11", "ifInNUcastPkts11",
    "ifInDiscards11", "ifOutUcastPkts11", "ifOutNUcastPkts11", "tcpOutRsts", "tcpInSegs",
    "tcpOutSegs", "tcpPassiveOpens", "tcpRetransSegs", "tcpCurrEstab", "tcpEstabResets",
    "tcp?ActiveOpens", "udpInDatagrams", "udpOutDatagrams", "udpInErrors", "udpNoPorts",
    "ipInReceives", "ipInDelivers", "ipOutRequests", "ipOutDiscards", "ipInDiscards",
    "ipForwDatagrams", "ipOutNoRoutes", "ipInAddrErrors", "icmpInMsgs", "icmpInDestUnreachs",
    "icmpOutMsgs", "icmpOutDestUnreachs", "icmpInEchos", "icmpOutEchoReps",
)
CLASSES = frozenset({"normal", "tcp-syn", "slowloris", "udp-flood", "icmp-echo", "httpFlood",
                     "slowpost", "bruteForce"})

SPEC = TableSpec(columns=(*COUNTERS, "class"), numeric=COUNTERS, header=True,
                 allowed={"class": CLASSES})

SCHEMA = Schema(
    label="label",
    categorical=(),
    numeric=COUNTERS,
    family="class",
    label_proxies=("class",),
)


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `label` (int 0/1, 1 = attack)."""
    frame["label"] = (frame["class"] != "normal").astype("int64")
    return frame


def _file(data_dir: str | Path, verify: str, train_file: str) -> Path:
    check_verify_mode(verify)
    return locate(data_dir, train_file, "snmp_mib")


def check_options(**options: Any) -> None:
    """What `load(**options)` refuses before reading a row (its file exists); bench.validate
    calls it for every config of a command."""
    args = bound_arguments(load, options)
    _file(args["data_dir"], args["verify"], args["train_file"])


def load(
    data_dir: str | Path,
    cache_dir: str | Path | None = None,
    verify: str = "warn",
    train_file: str = "SNMP-MIB.csv",
    name: str = "snmp_mib",
) -> Dataset:
    """Load SNMP-MIB.csv into `train` in file (collection) order; `test` is None.

    Raises DataError for a missing or malformed file (or a checksum mismatch with
    verify="strict").
    """
    table = load_table(_file(data_dir, verify, train_file), SPEC, TableCache(cache_dir),
                       LOADER_VERSION, verify, _prepare)
    notes = {"data.source": " ".join(PUBLISHERS["snmp_mib"]), **source_notes("train", table)}
    notes["data.verify"] = verify_summary({"train": table})
    notes["data.partition"] = f"{table.name} only, rows in collection order"
    notes["data.resplit"] = (f"no test file: TEST is split from {table.name}; use split=blocked "
                             "(shuffled splits put near-identical neighbouring polls on both "
                             "sides and overstate accuracy)")
    return Dataset(name=name, schema=SCHEMA, train=table.frame, test=None, notes=notes)
