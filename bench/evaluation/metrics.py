"""Metrics of scores at a threshold, all from scikit-learn. Names are bare (f1, roc_auc);
the experiment prefixes them with the split (val_f1, test_roc_auc)."""

from __future__ import annotations

import functools
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


@functools.cache
def binary_metric_names() -> tuple[str, ...]:
    """The names `binary_metrics` returns for labels with both classes (what a run logs as
    val_<name>), read from the function itself so that a check cannot drift from it."""
    return tuple(sorted(binary_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.6, 0.4]),
                                       0.5)))


def binary_metrics(y_true: Any, scores: Any, threshold: float) -> dict[str, float]:
    """Precision, recall, F1, FPR, accuracy at `threshold` (attack iff score >= threshold),
    plus threshold-free ROC-AUC and PR-AUC (average precision).

    ROC-AUC and PR-AUC are left out, with a warning, when `y_true` has a single class: they
    are undefined there, and a NaN metric would silently poison comparisons.
    """
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    y_pred = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    out = {
        "precision": precision_score(y_true, y_pred, zero_division=0),
        "recall": recall_score(y_true, y_pred, zero_division=0),
        "f1": f1_score(y_true, y_pred, zero_division=0),
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "accuracy": (tp + tn) / len(y_true),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }
    if len(np.unique(y_true)) == 2:
        out["roc_auc"] = roc_auc_score(y_true, scores)
        out["pr_auc"] = average_precision_score(y_true, scores)
        out["balanced_accuracy"] = balanced_accuracy_score(y_true, y_pred)
    else:
        warnings.warn("only one class present: ROC-AUC and PR-AUC not computed", stacklevel=2)
    return {k: float(v) for k, v in out.items()}


def metric_safe(name: str) -> str:
    """A family name usable in an MLflow metric key (letters, digits, _ - . / only)."""
    return re.sub(r"[^0-9A-Za-z_\-.]", "_", str(name))


def family_recall(families: Any, y_true: Any, scores: Any, threshold: float
                  ) -> dict[str, float]:
    """Share of rows flagged as attack per attack family: {"recall_family_<name>": value}.

    For the normal family (label 0) this is its false-positive rate, named `fpr_family_<name>`.
    """
    families = np.asarray(families, dtype=object)
    y_true = np.asarray(y_true).astype(int)
    flagged = np.asarray(scores, dtype=float) >= threshold
    out: dict[str, float] = {}
    for family in sorted({str(f) for f in families}):
        rows = families.astype(str) == family
        prefix = "recall_family" if y_true[rows].mean() >= 0.5 else "fpr_family"
        out[f"{prefix}_{metric_safe(family)}"] = float(flagged[rows].mean())
    return out


def score_in_batches(score: Callable[[Any], np.ndarray], X: Any, batch_rows: int
                     ) -> tuple[np.ndarray, dict[str, float]]:
    """Score `X` (a frame) once, in batches, timing each batch.

    Returns the (n_rows,) scores and timings: rows per second over the whole pass, and the
    median and 99th percentile of per-row latency over batches (seconds per row).
    """
    batch_rows = max(1, int(batch_rows))
    parts, per_row = [], []
    start = time.perf_counter()
    for begin in range(0, len(X), batch_rows):
        batch = X.iloc[begin : begin + batch_rows]
        t0 = time.perf_counter()
        parts.append(np.asarray(score(batch), dtype=float))
        per_row.append((time.perf_counter() - t0) / len(batch))
    total = time.perf_counter() - start
    scores = np.concatenate(parts) if parts else np.empty(0)
    timings = {
        "score_rows_per_second": len(X) / total if total > 0 else float("inf"),
        "latency_per_row_median_seconds": float(np.median(per_row)) if per_row else 0.0,
        "latency_per_row_p99_seconds": float(np.percentile(per_row, 99)) if per_row else 0.0,
    }
    return scores, timings
