"""Figures for a run (matplotlib, Agg backend); each function returns a Figure."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    precision_recall_curve,
)


def confusion_matrix_figure(y_true: Any, y_pred: Any, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, display_labels=["normal", "attack"],
                                            ax=ax, colorbar=False, values_format="d")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def roc_figure(curves: dict[str, tuple[Any, Any]], title: str) -> Figure:
    """`curves`: split name -> (y_true, scores)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, (y, s) in curves.items():
        RocCurveDisplay.from_predictions(y, s, name=name, ax=ax)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def pr_figure(curves: dict[str, tuple[Any, Any]], title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, (y, s) in curves.items():
        PrecisionRecallDisplay.from_predictions(y, s, name=name, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def threshold_curve_figure(y_val: Any, scores_val: Any, chosen: float, title: str,
                           log_x: bool = False) -> Figure:
    """F1, precision and recall on VAL against the threshold, the chosen point marked."""
    precision, recall, thresholds = precision_recall_curve(y_val, scores_val)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(thresholds, f1, label="F1")
    ax.plot(thresholds, precision, label="precision", alpha=0.7)
    ax.plot(thresholds, recall, label="recall", alpha=0.7)
    ax.axvline(chosen, color="k", ls="--", lw=1, label=f"chosen = {chosen:.4g}")
    if log_x and np.all(thresholds > 0):
        ax.set_xscale("log")
    ax.set_xlabel("threshold on score (attack iff score >= threshold)")
    ax.set_ylabel("VAL")
    ax.set_title(title)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def score_histogram_figure(y: Any, scores: Any, threshold: float, title: str) -> Figure:
    """Score distributions of normal and attack rows, with the threshold."""
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(scores, bins=60)
    ax.hist(scores[y == 0], bins=bins, alpha=0.6, label="normal", density=True)
    ax.hist(scores[y == 1], bins=bins, alpha=0.6, label="attack", density=True)
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score (higher = attack)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
