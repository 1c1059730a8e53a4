"""Leakage guard: what must never reach a model, and what the splits share.

Run on the splits before anything is fitted. It drops the declared identifier, label-proxy and
metadata columns; flags any feature whose values follow row order (a counter, a timestamp, a
jittered or restarted counter: Spearman rank correlation with the source row index above
`order_correlation_cut`, over the whole frame, within each source file, or within most
contiguous blocks) and drops or warns about it (`on_order_leak`); warns about any single
feature that alone separates the classes TRAIN -> VAL suspiciously well; reports constant
columns; and counts exact duplicate feature rows shared between TRAIN, VAL and each TEST set
(warning above `test_duplicate_share`, optionally dropping them). The findings are logged to
MLflow as `reports/data_audit.json` plus `audit_*` metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.data.dataset import Schema
from bench.data.split import Splits
from bench.errors import ConfigError, DataError

SOURCE_FILE = "source_file"  # metadata column naming each row's file when files were concatenated
MIN_ROWS = 100  # fewer rows (in a file, a block) say nothing reliable about order


@dataclass(frozen=True)
class AuditSettings:
    """The `audit.*` config keys (bench/conf/config.yaml), validated by `from_config`."""

    drop_test_duplicates: bool = False
    test_duplicate_share: float = 0.01
    order_correlation_cut: float = 0.9
    order_blocks: int = 10
    on_order_leak: str = "drop"
    single_feature_auc: float = 0.99

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> AuditSettings:
        settings = cls(**dict(node))
        if settings.on_order_leak not in ("drop", "warn"):
            raise ConfigError(f"audit.on_order_leak must be drop or warn, got "
                              f"{settings.on_order_leak!r}")
        for key in ("test_duplicate_share", "order_correlation_cut", "single_feature_auc"):
            if not 0.0 <= getattr(settings, key) <= 1.0:
                raise ConfigError(f"audit.{key} must be in [0, 1], got {getattr(settings, key)!r}")
        if settings.order_blocks < 1:
            raise ConfigError(f"audit.order_blocks must be >= 1, got {settings.order_blocks!r}")
        return settings


@dataclass
class AuditReport:
    """Findings of the leakage guard; `metrics()` gives the numeric ones as `audit_*`.

    `dropped_declared` lists the declared identifiers, label proxies and metadata columns.
    `order_leaks` maps each feature following row order to where and how strongly;
    `test_duplicate_share` maps each TEST set to its share of rows also in TRAIN/VAL, and
    `test_duplicate_rows` (not serialised) to the boolean mask of those rows.
    """

    dropped_declared: list[str] = field(default_factory=list)
    order_leaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped_order_leaks: list[str] = field(default_factory=list)
    single_feature_auc: dict[str, float] = field(default_factory=dict)
    constant_columns: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    test_duplicate_share: dict[str, float] = field(default_factory=dict)
    dropped_test_duplicates: int = 0
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    test_duplicate_rows: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["test_duplicate_rows"]
        return out

    def metrics(self) -> dict[str, float]:
        out = {f"audit_duplicates_{k}": float(v) for k, v in self.duplicates.items()}
        out.update({f"audit_{name}_duplicate_share": v
                    for name, v in self.test_duplicate_share.items()})
        out["audit_dropped_declared"] = float(len(self.dropped_declared))
        out["audit_order_leaks"] = float(len(self.order_leaks))
        out["audit_dropped_order_leaks"] = float(len(self.dropped_order_leaks))
        out["audit_single_feature_separators"] = float(len(self.single_feature_auc))
        out["audit_constant_columns"] = float(len(self.constant_columns))
        out["audit_dropped_test_duplicates"] = float(self.dropped_test_duplicates)
        return out

    def summary_lines(self) -> list[str]:
        dup = ", ".join(f"{k}={v}" for k, v in self.duplicates.items())
        lines = [
            f"dropped (declared identifier/label proxy): {self.dropped_declared or 'none'}",
            f"follows row order: {list(self.order_leaks) or 'none'}"
            + (f" (dropped: {self.dropped_order_leaks})" if self.dropped_order_leaks else ""),
            f"constant columns on TRAIN: {self.constant_columns or 'none'}",
            f"duplicate feature rows: {dup}",
        ]
        if self.dropped_test_duplicates:
            lines.append(f"dropped {self.dropped_test_duplicates} TEST rows also in TRAIN/VAL")
        return lines


def _rank_matrix(frame: pd.DataFrame) -> np.ndarray:
    """(n_rows, n_columns) average ranks of every column, whatever its dtype (ties allowed)."""
    return np.column_stack([frame[c].rank(method="average").to_numpy(dtype=float)
                            for c in frame.columns])


def order_correlation(frame: pd.DataFrame) -> np.ndarray:
    """Spearman rank correlation of each column of `frame` with its row position, |rho|.

    Constant columns give 0. `frame` must be in source order.

    Spearman's rho is Pearson's r of the ranks, and a row position is its own rank, so this is
    r(position, rank of column) for each column: one row of the matrix. scipy's spearmanr
    computes the whole (k+1) x (k+1) matrix after ranking again, O(n k^2); on NSL-KDD it made
    the audit take seconds, this takes milliseconds (a test checks it agrees with scipy).
    """
    if len(frame) < 3 or frame.shape[1] == 0:
        return np.zeros(frame.shape[1])
    ranks = _rank_matrix(frame)
    ranks -= ranks.mean(axis=0)
    position = np.arange(len(frame), dtype=float) - (len(frame) - 1) / 2
    norms = np.linalg.norm(ranks, axis=0) * np.linalg.norm(position)
    rho = np.divide(position @ ranks, norms, out=np.zeros(frame.shape[1]), where=norms > 0)
    return np.nan_to_num(np.abs(rho), nan=0.0)


def order_leaks(frame: pd.DataFrame, features: list[str], cut: float, blocks: int = 10
                ) -> dict[str, dict[str, Any]]:
    """Features of `frame` (rows in source order) whose values follow row order.

    A feature is flagged when its |Spearman rho| with the row position exceeds `cut` over the
    whole frame, within any source file (column SOURCE_FILE, when present, of >= MIN_ROWS rows),
    or in the median of `blocks` contiguous blocks (a counter restarted when files were
    concatenated without a SOURCE_FILE column). Returns {feature: {"rho": .., "where": ..}}.
    """
    found: dict[str, dict[str, Any]] = {}

    def note(rhos: np.ndarray, where: str) -> None:
        for column, rho in zip(features, rhos, strict=True):
            if rho > cut and column not in found:
                found[column] = {"rho": round(float(rho), 4), "where": where}

    note(order_correlation(frame[features]), "whole frame")
    if SOURCE_FILE in frame.columns:
        for name, rows in frame.groupby(SOURCE_FILE, sort=False):
            if len(rows) >= MIN_ROWS:
                note(order_correlation(rows[features]), f"within file {name}")
    n_blocks = min(blocks, len(frame) // MIN_ROWS)
    if n_blocks >= 2:
        bounds = np.linspace(0, len(frame), n_blocks + 1).astype(int)
        per_block = [order_correlation(frame[features].iloc[start:stop])
                     for start, stop in pairwise(bounds)]
        note(np.median(per_block, axis=0), f"median of {n_blocks} contiguous blocks")
    return found


def single_feature_auc(train: pd.DataFrame, val: pd.DataFrame, schema: Schema
                       ) -> dict[str, float]:
    """VAL ROC-AUC of each feature alone, orientation-free (max(auc, 1 - auc)).

    Numeric features score with their raw value; a categorical one with its category's attack
    share on TRAIN (unseen categories: TRAIN's overall share). Empty when VAL has one class.
    """
    y_val = val[schema.label].to_numpy()
    if len(np.unique(y_val)) < 2:
        return {}
    out: dict[str, float] = {}
    prior = train[schema.label].mean()
    for column in schema.features:
        if column in schema.categorical:
            rate = train.groupby(column, observed=True)[schema.label].mean()
            score = val[column].map(rate).astype(float).fillna(prior).to_numpy()
        else:
            score = val[column].to_numpy(dtype=float)
        auc = roc_auc_score(y_val, score)
        out[column] = float(max(auc, 1.0 - auc))
    return out


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return pd.util.hash_pandas_object(frame[columns], index=False)


def _duplicates(splits: Splits, features: list[str], settings: AuditSettings,
                report: AuditReport) -> Splits:
    """Count duplicate feature rows; record each TEST set's shared rows; maybe drop them."""
    train_keys = _row_keys(splits.train, features)
    val_keys = _row_keys(splits.val, features)
    seen, train_set = set(train_keys) | set(val_keys), set(train_keys)
    test_keys = _row_keys(splits.test, features)
    report.duplicates = {
        "within_train": int(train_keys.duplicated().sum()),
        "train_val": int(val_keys.isin(train_set).sum()),
        "train_test": int(test_keys.isin(train_set).sum()),
        "val_test": int(test_keys.isin(set(val_keys)).sum()),
    }
    tests = dict(splits.tests)
    for name, frame in splits.tests.items():
        shared = _row_keys(frame, features).isin(seen).to_numpy()
        share = float(shared.mean()) if len(frame) else 0.0
        report.test_duplicate_share[name] = round(share, 6)
        if settings.drop_test_duplicates:
            report.dropped_test_duplicates += int(shared.sum())
            tests[name] = frame.loc[~shared]
        elif share > settings.test_duplicate_share:
            report.test_duplicate_rows[name] = shared
            report.warnings.append(
                f"{share:.1%} of {name.upper()} rows ({int(shared.sum())} of {len(frame)}) "
                f"duplicate TRAIN/VAL feature rows (> audit.test_duplicate_share="
                f"{settings.test_duplicate_share}); {name}_dedup_* metrics leave them out")
    extra = {name: frame for name, frame in tests.items() if name != "test"}
    return replace(splits, test=tests["test"], extra_tests=extra)


def audit(schema: Schema, splits: Splits, settings: AuditSettings | None = None
          ) -> tuple[Schema, Splits, AuditReport]:
    """Return the schema without leaking columns, the (possibly de-duplicated) splits, findings.

    TRAIN and VAL come from the same source frame, so sorting them by index restores the
    source order used to detect features that follow row order.
    """
    settings = settings or AuditSettings()
    report = AuditReport(settings=asdict(settings))
    declared = [c for c in (*schema.identifiers, *schema.label_proxies, *schema.metadata)
                if c in splits.train.columns]
    report.dropped_declared = declared
    schema = schema.without(set(declared))

    source_order = pd.concat([splits.train, splits.val]).sort_index(kind="stable")
    report.order_leaks = order_leaks(source_order, schema.features,
                                     settings.order_correlation_cut, settings.order_blocks)
    verb = "dropped" if settings.on_order_leak == "drop" else "kept (audit.on_order_leak=warn)"
    for column, found in report.order_leaks.items():
        report.warnings.append(
            f"feature {column!r} follows row order (|Spearman rho| {found['rho']} > "
            f"audit.order_correlation_cut={settings.order_correlation_cut}, {found['where']}): "
            f"{verb}. Declare it in the dataset schema if it is an identifier.")
    if settings.on_order_leak == "drop":
        report.dropped_order_leaks = list(report.order_leaks)
        schema = schema.without(set(report.dropped_order_leaks))
        if not schema.features:
            raise DataError(
                f"every feature follows row order and was dropped by the leak guard "
                f"({', '.join(report.dropped_order_leaks)}); if these are genuine features "
                "(e.g. counters polled over time), keep them with audit.on_order_leak=warn "
                "and prefer split=blocked, or raise audit.order_correlation_cut")

    aucs = single_feature_auc(splits.train, splits.val, schema)
    report.single_feature_auc = {c: round(a, 4) for c, a in aucs.items()
                                 if a > settings.single_feature_auc}
    for column, auc in report.single_feature_auc.items():
        report.warnings.append(
            f"feature {column!r} alone separates the classes on VAL (ROC-AUC {auc:.4f} > "
            f"audit.single_feature_auc={settings.single_feature_auc}): kept; check it is not "
            "the label in other words")

    features = schema.features
    report.constant_columns = [c for c in features if splits.train[c].nunique(dropna=False) <= 1]
    splits = _duplicates(splits, features, settings, report)
    return schema, splits, report
