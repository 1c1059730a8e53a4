"""Leakage guard: what must never reach a model, and what the splits share.

Run on the splits before anything is fitted. It drops the declared identifier and label-proxy
columns, drops (with a warning) any other column that looks like a row counter, reports constant
columns and counts exact duplicate feature rows shared between TRAIN, VAL and TEST (optionally
dropping them from TEST). The findings are logged to MLflow as `data_audit.json` plus metrics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from bench.data.dataset import Schema
from bench.data.split import Splits


@dataclass
class AuditReport:
    """Findings of the leakage guard; `metrics()` gives the numeric ones as `audit_*`.

    `dropped_declared` lists the declared identifiers, label proxies and metadata columns.
    """

    dropped_declared: list[str] = field(default_factory=list)
    dropped_suspected_identifiers: list[str] = field(default_factory=list)
    constant_columns: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    dropped_test_duplicates: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        out = {f"audit_duplicates_{k}": float(v) for k, v in self.duplicates.items()}
        out["audit_dropped_declared"] = float(len(self.dropped_declared))
        out["audit_dropped_suspected_identifiers"] = float(
            len(self.dropped_suspected_identifiers))
        out["audit_constant_columns"] = float(len(self.constant_columns))
        out["audit_dropped_test_duplicates"] = float(self.dropped_test_duplicates)
        return out

    def summary_lines(self) -> list[str]:
        dup = ", ".join(f"{k}={v}" for k, v in self.duplicates.items())
        lines = [
            f"dropped (declared identifier/label proxy): {self.dropped_declared or 'none'}",
            "dropped (looks like a row identifier): "
            f"{self.dropped_suspected_identifiers or 'none'}",
            f"constant columns on TRAIN: {self.constant_columns or 'none'}",
            f"duplicate feature rows: {dup}",
        ]
        if self.dropped_test_duplicates:
            lines.append(f"dropped {self.dropped_test_duplicates} TEST rows also in TRAIN/VAL")
        return lines


def looks_like_row_identifier(values: pd.Series) -> bool:
    """True for integer columns whose values are all distinct and run in order (a row counter).

    `values` must be in source order. Monotone floats (timestamps) are not flagged.
    """
    if len(values) < 100 or not pd.api.types.is_integer_dtype(values):
        return False
    if not values.is_unique:
        return False
    return bool(values.is_monotonic_increasing or values.is_monotonic_decreasing)


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return pd.util.hash_pandas_object(frame[columns], index=False)


def audit(schema: Schema, splits: Splits, drop_test_duplicates: bool = False
          ) -> tuple[Schema, Splits, AuditReport]:
    """Return the schema without leaking columns, the (possibly de-duplicated) splits, findings.

    TRAIN and VAL come from the same source frame, so sorting them by index restores the
    source order used to detect row counters.
    """
    report = AuditReport()
    declared = [c for c in (*schema.identifiers, *schema.label_proxies, *schema.metadata)
                if c in splits.train.columns]
    report.dropped_declared = declared
    schema = schema.without(set(declared))

    source_order = pd.concat([splits.train, splits.val]).sort_index()
    suspected = [c for c in schema.numeric if looks_like_row_identifier(source_order[c])]
    for column in suspected:
        report.warnings.append(
            f"column {column!r} looks like a row identifier (distinct integers in order); "
            "dropped. Declare it in the dataset schema to silence this warning.")
    report.dropped_suspected_identifiers = suspected
    schema = schema.without(set(suspected))

    features = schema.features
    report.constant_columns = [c for c in features if splits.train[c].nunique(dropna=False) <= 1]

    keys = {name: _row_keys(frame, features)
            for name, frame in (("train", splits.train), ("val", splits.val),
                                ("test", splits.test))}
    sets = {name: set(k) for name, k in keys.items()}
    report.duplicates = {
        "within_train": int(keys["train"].duplicated().sum()),
        "train_val": int(keys["val"].isin(sets["train"]).sum()),
        "train_test": int(keys["test"].isin(sets["train"]).sum()),
        "val_test": int(keys["test"].isin(sets["val"]).sum()),
    }
    if drop_test_duplicates:
        shared = keys["test"].isin(sets["train"] | sets["val"]).to_numpy()
        report.dropped_test_duplicates = int(shared.sum())
        splits = Splits(splits.train, splits.val, splits.test.loc[~shared], splits.description)
    return schema, splits, report
