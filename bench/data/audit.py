"""Leakage guard: what must never reach a model, and what the splits share.

Run on the splits before anything is fitted. It drops the declared identifier, label-proxy and
metadata columns; flags any feature whose values follow row order (a counter, a timestamp, a
jittered or restarted counter: Spearman rank correlation with the source row index above
`order_correlation_cut`, over the whole frame, within each source file, or within most
contiguous blocks) and drops or warns about it (`on_order_leak`); drops (or warns about,
`on_label_copy`) a feature that alone separates the classes on TRAIN and on VAL (ROC-AUC >=
`label_copy_auc`, the same direction on both): the label in other words; warns about any other
single feature that separates the classes TRAIN -> VAL suspiciously well; reports constant
columns; and counts exact duplicate feature rows shared between TRAIN, VAL and each TEST set
(warning above `test_duplicate_share`, optionally dropping them). The findings are logged to
MLflow as `reports/data_audit.json` plus `audit_*` metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from bench.data.dataset import Schema
from bench.data.split import Splits
from bench.errors import ConfigError, DataError

SOURCE_FILE = "source_file"  # metadata column naming each row's file when files were concatenated
MIN_ROWS = 100  # fewer rows (in a file, a block) say nothing reliable about order
# A numeric feature whose values are the integers 0..k-1 or 1..k with k <= MAX_CODES looks like a
# label-encoded category (sklearn's LabelEncoder, pandas' cat.codes): its value order means
# nothing, so the audit scores it as a category too (each code's attack share on TRAIN).
MAX_CODES = 256


@dataclass(frozen=True)
class AuditSettings:
    """The `audit.*` config keys (bench/conf/config.yaml), validated by `from_config`."""

    drop_test_duplicates: bool = False
    test_duplicate_share: float = 0.01
    order_correlation_cut: float = 0.9
    order_blocks: int = 10
    on_order_leak: str = "drop"
    single_feature_auc: float = 0.975
    label_copy_auc: float = 0.999
    on_label_copy: str = "drop"
    drop_val_duplicates: bool = False

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> AuditSettings:
        settings = cls(**dict(node))
        for key in ("on_order_leak", "on_label_copy"):
            if getattr(settings, key) not in ("drop", "warn"):
                raise ConfigError(f"audit.{key} must be drop or warn, got "
                                  f"{getattr(settings, key)!r}")
        for key in ("test_duplicate_share", "order_correlation_cut", "single_feature_auc"):
            if not 0.0 <= getattr(settings, key) <= 1.0:
                raise ConfigError(f"audit.{key} must be in [0, 1], got {getattr(settings, key)!r}")
        if not 0.5 < settings.label_copy_auc <= 1.0:  # every feature reaches 0.5
            raise ConfigError(f"audit.label_copy_auc must be in (0.5, 1], got "
                              f"{settings.label_copy_auc!r}")
        if settings.order_blocks < 1:
            raise ConfigError(f"audit.order_blocks must be >= 1, got {settings.order_blocks!r}")
        return settings


@dataclass
class AuditReport:
    """Findings of the leakage guard; `metrics()` gives the numeric ones as `audit_*`.

    `dropped_declared` lists the declared identifiers, label proxies and metadata columns.
    `order_leaks` maps each feature following row order to where and how strongly;
    `label_copies` each feature that alone separates the classes on TRAIN and VAL (the label in
    other words) to its two ROC-AUCs; `single_feature_auc` every feature's VAL ROC-AUC above
    `audit.single_feature_auc` (label copies included);
    `test_duplicate_share` maps each TEST set to its share of rows also in TRAIN/VAL, and
    `test_duplicate_rows` (not serialised) to the boolean mask of those rows.
    """

    dropped_declared: list[str] = field(default_factory=list)
    order_leaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped_order_leaks: list[str] = field(default_factory=list)
    label_copies: dict[str, dict[str, float]] = field(default_factory=dict)
    dropped_label_copies: list[str] = field(default_factory=list)
    single_feature_auc: dict[str, float] = field(default_factory=dict)
    constant_columns: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    test_duplicate_share: dict[str, float] = field(default_factory=dict)
    dropped_test_duplicates: int = 0
    val_duplicate_share: float = 0.0
    dropped_val_duplicates: int = 0
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
        out["audit_label_copies"] = float(len(self.label_copies))
        out["audit_dropped_label_copies"] = float(len(self.dropped_label_copies))
        out["audit_single_feature_separators"] = float(len(self.single_feature_auc))
        out["audit_constant_columns"] = float(len(self.constant_columns))
        out["audit_dropped_test_duplicates"] = float(self.dropped_test_duplicates)
        out["audit_val_duplicate_share"] = self.val_duplicate_share
        out["audit_dropped_val_duplicates"] = float(self.dropped_val_duplicates)
        return out

    def summary_lines(self) -> list[str]:
        dup = ", ".join(f"{k}={v}" for k, v in self.duplicates.items())
        lines = [
            f"dropped (declared identifier/label proxy): {self.dropped_declared or 'none'}",
            f"follows row order: {list(self.order_leaks) or 'none'}"
            + (f" (dropped: {self.dropped_order_leaks})" if self.dropped_order_leaks else ""),
            f"the label in other words: {list(self.label_copies) or 'none'}"
            + (f" (dropped: {self.dropped_label_copies})" if self.dropped_label_copies else ""),
            f"constant columns on TRAIN: {self.constant_columns or 'none'}",
            f"duplicate feature rows: {dup}",
        ]
        if self.dropped_test_duplicates:
            lines.append(f"dropped {self.dropped_test_duplicates} TEST rows also in TRAIN/VAL")
        if self.dropped_val_duplicates:
            lines.append(f"dropped {self.dropped_val_duplicates} VAL rows also in TRAIN")
        return lines


def _sorting_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Codes 0..levels-1 that sort as the column's values do (equal values share one; a
    categorical's categories in their declared order; values of types that do not compare,
    such as str and int, in pandas' mixed-type order), -1 where a value is missing; and levels."""
    codes, uniques = pd.factorize(column, sort=True)
    return codes, len(uniques)


def _rho_with_position(codes: np.ndarray, levels: int) -> float:
    """|Spearman rho| between the values coded by `codes` (see _sorting_codes) and their row
    position, over the rows whose value is present; 0 for fewer than 3 of them or a constant.

    Spearman's rho is Pearson's r of the average ranks, and among the present rows a row
    position is its own rank. The average ranks come from one bincount over the codes rather
    than a sort per slice (scipy.stats.rankdata would sort each file and block again): the
    audit ranks every feature over the whole frame, each file and each block.
    """
    present = codes[codes >= 0]
    n = len(present)
    if n < 3:
        return 0.0
    counts = np.bincount(present, minlength=levels)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[present]
    ranks -= ranks.mean()
    position = np.arange(n) - (n - 1) / 2.0
    norms = math.sqrt(float(ranks @ ranks) * n * (n * n - 1) / 12.0)  # |position|^2 in closed form
    return abs(float(position @ ranks)) / norms if norms > 0 else 0.0


def order_correlation(frame: pd.DataFrame) -> np.ndarray:
    """|Spearman rho| of each column of `frame` (rows in source order) with the row position.

    Missing values are left out (a counter with gaps still follows row order); constant
    columns give 0. Agrees with scipy.stats.spearmanr per column (a test checks it); scipy's
    own computes the whole (k+1) x (k+1) matrix, O(n k^2), seconds on NSL-KDD.
    """
    return np.array([_rho_with_position(*_sorting_codes(frame[c])) for c in frame.columns])


def order_leaks(frame: pd.DataFrame, features: list[str], cut: float, blocks: int = 10
                ) -> dict[str, dict[str, Any]]:
    """Features of `frame` whose values follow row order; rows are taken in the order of
    `frame.index` (the source row position), whatever order they come in.

    A feature is flagged when its |Spearman rho| with the row position exceeds `cut` over the
    whole frame, within any source file (column SOURCE_FILE, when present, of >= MIN_ROWS rows;
    the smaller files pooled, each row ranked within its file), or in the median of `blocks`
    contiguous blocks (a counter restarted when files were
    concatenated without a SOURCE_FILE column). Missing values are left out of each rho.
    Returns {feature: {"rho": .., "where": ..}}.
    """
    in_order = np.argsort(frame.index.to_numpy(), kind="stable")
    coded = [(codes[in_order], levels)
             for codes, levels in (_sorting_codes(frame[column]) for column in features)]
    found: dict[str, dict[str, Any]] = {}

    def rhos(rows: slice | np.ndarray) -> np.ndarray:
        return np.array([_rho_with_position(codes[rows], levels) for codes, levels in coded])

    def flag(rhos: np.ndarray, where: str) -> None:
        for column, rho in zip(features, rhos, strict=True):
            if rho > cut and column not in found:
                found[column] = {"rho": round(float(rho), 4), "where": where}

    flag(rhos(slice(None)), "whole frame")
    if SOURCE_FILE in frame.columns:
        files = frame[SOURCE_FILE].to_numpy()[in_order]
        small = []
        for name in pd.unique(files):
            rows = np.flatnonzero(files == name)
            if pd.isna(name):
                continue
            if len(rows) >= MIN_ROWS:
                flag(rhos(rows), f"within file {name}")
            else:
                small.append(rows)
        if sum(map(len, small)) >= MIN_ROWS:
            rows = np.concatenate(small)
            group = np.repeat(np.arange(len(small)), [len(r) for r in small])
            flag(np.array([_pooled_rho(codes[rows], group) for codes, _ in coded]),
                 f"within each of {len(small)} files under {MIN_ROWS} rows, pooled")
    n_blocks = min(blocks, len(frame) // MIN_ROWS)
    if n_blocks >= 2:
        bounds = np.linspace(0, len(frame), n_blocks + 1).astype(int)
        per_block = [rhos(slice(start, stop)) for start, stop in pairwise(bounds)]
        flag(np.median(per_block, axis=0), f"median of {n_blocks} contiguous blocks")
    return found


def _pooled_rho(codes: np.ndarray, group: np.ndarray) -> float:
    """|Pearson r| between each row's rank within its group and its position within its group,
    both scaled to [0, 1] per group, over all rows pooled: a counter that restarts in many
    files too small to judge alone. `codes` (see _sorting_codes) and `group` (a file number)
    are per row, rows of a group in source order. Missing values are left out; 0 when fewer
    than 3 rows are left or nothing varies."""
    keep = codes >= 0
    frame = pd.DataFrame({"code": codes[keep], "group": group[keep]})
    by_group = frame.groupby("group", sort=False)
    size = by_group["code"].transform("size").to_numpy()
    usable = size >= 2
    if usable.sum() < 3:
        return 0.0
    rank = (by_group["code"].rank().to_numpy() - 1)[usable] / (size[usable] - 1)
    position = by_group.cumcount().to_numpy()[usable] / (size[usable] - 1)
    if rank.std() == 0 or position.std() == 0:
        return 0.0
    return abs(float(np.corrcoef(rank, position)[0, 1]))


def code_columns(train: pd.DataFrame, schema: Schema) -> set[str]:
    """The numeric features of `schema` whose present TRAIN values are exactly the integers
    0..k-1 or 1..k, 2 <= k <= MAX_CODES: label-encoded categories (see MAX_CODES)."""
    found = set()
    for column in schema.features:
        values = train[column]
        if column in schema.categorical or not pd.api.types.is_numeric_dtype(values) \
                or pd.api.types.is_bool_dtype(values):
            continue
        levels = pd.unique(values.dropna())
        if not 2 <= len(levels) <= MAX_CODES:
            continue
        levels = np.sort(levels.astype(float))
        if np.all(levels == np.round(levels)) and levels[0] in (0.0, 1.0) \
                and levels[-1] - levels[0] == len(levels) - 1:
            found.add(column)
    return found


def _feature_scores(scored: pd.DataFrame, train: pd.DataFrame, schema: Schema,
                    columns: list[str]) -> np.ndarray:
    """One score per row of `scored` and column of `columns`: a numeric feature's raw value
    (missing below every value), a categorical one's or a code column's (see code_columns)
    attack share on `train` (unseen categories: TRAIN's overall share)."""
    prior = train[schema.label].mean()
    by_value = set(schema.categorical) | code_columns(train, schema)
    scores = np.empty((len(scored), len(columns)))
    for position, column in enumerate(columns):
        if column in by_value:
            rate = train.groupby(column, observed=True)[schema.label].mean()
            scores[:, position] = scored[column].map(rate).astype(float).fillna(prior).to_numpy()
        else:
            scores[:, position] = scored[column].to_numpy(dtype=float, na_value=np.nan)
    return np.nan_to_num(scores, nan=-np.inf, posinf=np.inf, neginf=-np.inf)


def _oriented_auc(scores: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """ROC-AUC of each column of `scores` for the boolean target `y` (not orientation-free):
    the Mann-Whitney U over n_pos * n_neg, the same number as roc_auc_score, from one
    vectorised scipy call for all columns. None when `y` has one class."""
    if y.all() or not y.any():
        return None
    u = mannwhitneyu(scores[y], scores[~y], axis=0, method="asymptotic").statistic
    return np.atleast_1d(u / (y.sum() * (~y).sum()))


def _oriented_val_auc(train: pd.DataFrame, val: pd.DataFrame, schema: Schema
                      ) -> dict[str, float]:
    """VAL ROC-AUC of each feature of `schema` alone, oriented (an AUC near 0 separates as well
    as one near 1); empty when VAL has one class."""
    y_val = val[schema.label].to_numpy().astype(bool)
    auc = _oriented_auc(_feature_scores(val, train, schema, schema.features), y_val)
    return {} if auc is None else dict(zip(schema.features, map(float, auc), strict=True))


def single_feature_auc(train: pd.DataFrame, val: pd.DataFrame, schema: Schema
                       ) -> dict[str, float]:
    """VAL ROC-AUC of each feature alone, orientation-free (max(auc, 1 - auc)).

    Numeric features score with their raw value (missing below every value, so a missingness
    that separates the classes shows); a categorical one with its category's attack share on
    TRAIN (unseen categories: TRAIN's overall share). Empty when VAL has one class.
    """
    return {c: max(a, 1.0 - a) for c, a in _oriented_val_auc(train, val, schema).items()}


def label_copies(train: pd.DataFrame, val: pd.DataFrame, schema: Schema, cut: float
                 ) -> dict[str, dict[str, float]]:
    """Features that alone separate the classes on TRAIN and on VAL: the label in other words.

    A feature is one when its ROC-AUC, scored as in `single_feature_auc`, is >= `cut` on VAL
    and on TRAIN in the same direction (both high, or both low; a categorical feature's TRAIN
    score is its category's attack share on TRAIN itself, so it reaches 1 when every category
    is pure). Catches a 0/1 or affine copy of the label, the label as text, an attack-category
    column under another name, a missingness that gives the label away, and a counter that
    orders the classes (a day-ordered capture exported shuffled). Returns
    {feature: {"train_auc": .., "val_auc": ..}} (orientation-free); empty when TRAIN or VAL
    has one class.
    """
    return _label_copies(train, schema, _oriented_val_auc(train, val, schema), cut)


def _label_copies(train: pd.DataFrame, schema: Schema, val_auc: Mapping[str, float],
                  cut: float) -> dict[str, dict[str, float]]:
    """`label_copies` given the oriented VAL ROC-AUCs (TRAIN is scored only for the features
    whose VAL ROC-AUC reaches `cut`)."""
    candidates = [c for c, a in val_auc.items() if max(a, 1.0 - a) >= cut]
    y_train = train[schema.label].to_numpy().astype(bool)
    train_auc = (_oriented_auc(_feature_scores(train, train, schema, candidates), y_train)
                 if candidates else None)
    if train_auc is None:
        return {}
    found = {}
    for column, a_train in zip(candidates, map(float, train_auc), strict=True):
        a_val = val_auc[column]
        if max(min(a_val, a_train), min(1.0 - a_val, 1.0 - a_train)) >= cut:
            found[column] = {"train_auc": round(max(a_train, 1.0 - a_train), 6),
                             "val_auc": round(max(a_val, 1.0 - a_val), 6)}
    return found


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One uint64 hash per row of `frame[columns]` (equal feature rows, equal keys)."""
    return pd.util.hash_pandas_object(frame[columns], index=False)


def _duplicates(splits: Splits, features: list[str], label: str, settings: AuditSettings,
                report: AuditReport) -> Splits:
    """Count duplicate feature rows; record VAL's share of TRAIN rows and each TEST set's
    shared rows; maybe drop them (VAL rows also in TRAIN, TEST rows also in TRAIN or VAL)."""
    train_keys = _row_keys(splits.train, features)
    val_keys = _row_keys(splits.val, features)
    test_keys = {name: _row_keys(frame, features) for name, frame in splits.tests.items()}
    seen = pd.concat([train_keys, val_keys], ignore_index=True).unique()
    report.duplicates = {
        "within_train": int(train_keys.duplicated().sum()),
        "train_val": int(val_keys.isin(train_keys.unique()).sum()),
        "train_test": int(test_keys["test"].isin(train_keys.unique()).sum()),
        "val_test": int(test_keys["test"].isin(val_keys.unique()).sum()),
    }
    val = splits.val
    in_train = val_keys.isin(train_keys.unique()).to_numpy()
    report.val_duplicate_share = round(float(in_train.mean()) if len(val) else 0.0, 6)
    if settings.drop_val_duplicates:
        report.dropped_val_duplicates = int(in_train.sum())
        val = val.loc[~in_train]
        if val[label].nunique() < 2:
            raise DataError(
                f"audit.drop_val_duplicates=true left VAL with one class ({len(val)} of "
                f"{len(splits.val)} rows are not TRAIN duplicates); VAL needs both classes")
    elif report.val_duplicate_share > settings.test_duplicate_share:
        report.warnings.append(
            f"{report.val_duplicate_share:.1%} of VAL rows ({int(in_train.sum())} of "
            f"{len(val)}) duplicate TRAIN feature rows (> audit.test_duplicate_share="
            f"{settings.test_duplicate_share}): VAL, which chooses the threshold and the "
            "winner, favours models that memorise TRAIN; audit.drop_val_duplicates=true "
            "leaves them out of VAL")
    tests = dict(splits.tests)
    for name, frame in splits.tests.items():
        shared = test_keys[name].isin(seen).to_numpy()
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
    return replace(splits, val=val, test=tests["test"], extra_tests=extra)


def audit(schema: Schema, splits: Splits, settings: AuditSettings | None = None
          ) -> tuple[Schema, Splits, AuditReport]:
    """Return the schema without leaking columns, the (possibly de-duplicated) splits, findings.

    TRAIN and VAL come from the same source frame, so their index (the source row position)
    gives the order in which to look for features that follow row order.
    """
    settings = settings or AuditSettings()
    report = AuditReport(settings=asdict(settings))
    declared = [c for c in (*schema.identifiers, *schema.label_proxies, *schema.metadata)
                if c in splits.train.columns]
    report.dropped_declared = declared
    schema = schema.without(set(declared))

    in_files = [SOURCE_FILE] if SOURCE_FILE in splits.train.columns else []
    train_val = pd.concat([splits.train[schema.features + in_files],
                           splits.val[schema.features + in_files]])
    report.order_leaks = order_leaks(train_val, schema.features,
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

    val_auc = _oriented_val_auc(splits.train, splits.val, schema)
    report.single_feature_auc = {c: round(max(a, 1.0 - a), 4) for c, a in val_auc.items()
                                 if max(a, 1.0 - a) > settings.single_feature_auc}
    report.label_copies = _label_copies(splits.train, schema, val_auc, settings.label_copy_auc)
    verb = "dropped" if settings.on_label_copy == "drop" else "kept (audit.on_label_copy=warn)"
    for column, found in report.label_copies.items():
        report.warnings.append(
            f"feature {column!r} is the label in other words: alone it separates the classes "
            f"on TRAIN (ROC-AUC {found['train_auc']:.4f}) and on VAL ({found['val_auc']:.4f}) "
            f"(>= audit.label_copy_auc={settings.label_copy_auc}): {verb}. If it is the label "
            "or the attack name, declare it a label proxy (dataset.label_proxies for "
            "dataset=table); audit.on_label_copy=warn keeps it.")
    for column, auc in report.single_feature_auc.items():
        if column not in report.label_copies:
            report.warnings.append(
                f"feature {column!r} alone separates the classes on VAL (ROC-AUC {auc:.4f} > "
                f"audit.single_feature_auc={settings.single_feature_auc}): kept; check it is "
                "not the label in other words")
    if settings.on_label_copy == "drop":
        report.dropped_label_copies = list(report.label_copies)
        schema = schema.without(set(report.dropped_label_copies))
        if not schema.features:
            raise DataError(
                "every feature alone separates the classes on TRAIN and VAL and was dropped by "
                f"the leak guard as the label in other words "
                f"({', '.join(report.dropped_label_copies)}); if these are genuine features, "
                "keep them with audit.on_label_copy=warn or raise audit.label_copy_auc")

    features = schema.features
    report.constant_columns = [c for c in features if splits.train[c].nunique(dropna=False) <= 1]
    splits = _duplicates(splits, features, schema.label, settings, report)
    return schema, splits, report
