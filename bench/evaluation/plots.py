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
)

from bench.evaluation.thresholds import f1_curve


def _fixed_layout(fig: Figure) -> None:
    """Margins fixed in inches, where `fig.tight_layout()` would measure every text by drawing
    it once more: ~30% of a run's figure time, for texts that vary little here (rates in
    [0, 1], scores, counts on a log axis). They leave room for two lines of tick labels and
    an axis label below and left, and a one-line title above."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width,
                        bottom=0.65 / height, top=1 - 0.35 / height)


def confusion_matrix_figure(y_true: Any, y_pred: Any, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, display_labels=["normal", "attack"],
                                            ax=ax, colorbar=False, values_format="d")
    ax.set_title(title)
    _fixed_layout(fig)
    return fig


def roc_figure(curves: dict[str, tuple[Any, Any]], title: str) -> Figure:
    """`curves`: split name -> (y_true, scores)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, (y, s) in curves.items():
        RocCurveDisplay.from_predictions(y, s, name=name, ax=ax)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_title(title)
    _fixed_layout(fig)
    return fig


def pr_figure(curves: dict[str, tuple[Any, Any]], title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, (y, s) in curves.items():
        PrecisionRecallDisplay.from_predictions(y, s, name=name, ax=ax)
    ax.set_title(title)
    _fixed_layout(fig)
    return fig


def score_axis_scale(scores: Any, decades: float = 2.0) -> tuple[str, float]:
    """How to draw a score axis: ("linear" | "log" | "symlog", linthresh).

    "log" when every score is positive and the 1st-99th percentile range spans more than
    `decades` powers of ten (reconstruction errors); "symlog" (linear within +-linthresh, log
    beyond) when scores change sign and the extremes are more than 10^decades times the
    interquartile range (-log p(x) of a Gaussian fitted on near-singular data); else "linear".
    """
    scores = np.asarray(scores, dtype=float)
    scores = scores[np.isfinite(scores)]
    if len(scores) < 2:
        return "linear", 1.0
    q1, q25, q75, q99 = np.percentile(scores, [1, 25, 75, 99])
    if scores.min() > 0:
        return ("log", 1.0) if np.log10(q99 / q1) > decades else ("linear", 1.0)
    spread = max(q75 - q25, np.finfo(float).tiny)
    if np.abs(scores).max() > 10**decades * spread:
        linthresh = float(np.percentile(np.abs(scores), 5)) or float(spread)
        return "symlog", float(10 ** np.floor(np.log10(linthresh)))
    return "linear", 1.0


def _bins(scores: np.ndarray, scale: str, linthresh: float, n: int = 60) -> np.ndarray:
    """Bin edges evenly spaced on the axis as drawn (linear, log or symlog)."""
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        high = low + 1.0
    if scale == "log":
        return np.geomspace(low, high, n + 1)
    if scale == "symlog":
        def forward(x: Any) -> Any:
            return np.sign(x) * np.log10(1 + np.abs(x) / linthresh)

        t = np.linspace(forward(low), forward(high), n + 1)
        return np.sign(t) * linthresh * (10 ** np.abs(t) - 1)
    return np.linspace(low, high, n + 1)


def _symlog_ticks(low: float, high: float, linthresh: float, most: int = 9) -> list[float]:
    """0 and +-10^k outside the linear region, thinned to at most about `most` ticks."""
    def decades(bound: float) -> list[int]:
        if bound <= linthresh:
            return []
        return list(range(int(np.ceil(np.log10(linthresh))), int(np.floor(np.log10(bound))) + 1))

    positive, negative = decades(high), decades(-low)
    step = max(1, int(np.ceil((len(positive) + len(negative)) / max(most - 1, 1))))
    ticks = [-(10.0**k) for k in negative[::-1][::step]] + [0.0]
    ticks += [10.0**k for k in positive[::step]]
    return [t for t in ticks if low <= t <= high] or [0.0]


def _set_scale(ax: Any, scale: str, linthresh: float, values: np.ndarray) -> None:
    """Apply the scale; a symlog axis gets the data range as limits and sparse ticks."""
    if scale == "log":
        ax.set_xscale("log")
    elif scale == "symlog":
        low, high = float(np.min(values)), float(np.max(values))
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_xlim(low, high)
        ax.set_xticks(_symlog_ticks(low, high, linthresh))


def _draw_curves(ax: Any, x: np.ndarray, curves: tuple[np.ndarray, ...]) -> None:
    precision, recall, f1 = curves
    ax.plot(x, f1, label="F1")
    ax.plot(x, precision, label="precision", alpha=0.7)
    ax.plot(x, recall, label="recall", alpha=0.7)


def threshold_curve_figure(y_val: Any, scores_val: Any, chosen: float, title: str
                                ) -> Figure:
    """F1, precision and recall on VAL against the threshold, the chosen point marked.

    The threshold axis is linear, log or symlog as score_axis_scale(scores_val) says, so that
    detector scores spanning many decades stay readable.
    """
    precision, recall, f1, thresholds = f1_curve(y_val, scores_val)
    scale, linthresh = score_axis_scale(scores_val)
    fig, ax = plt.subplots(figsize=(6, 4))
    _draw_curves(ax, thresholds, (precision, recall, f1))
    ax.axvline(chosen, color="k", ls="--", lw=1, label=f"chosen = {chosen:.4g}")
    _set_scale(ax, scale, linthresh, np.append(thresholds, chosen))
    axis = "" if scale == "linear" else f", {scale} axis"
    ax.set_xlabel(f"threshold on score (attack iff score >= threshold){axis}")
    ax.set_ylabel("VAL")
    ax.set_title(title)
    ax.legend(loc="best")
    _fixed_layout(fig)
    return fig


def score_histogram_figure(y: Any, scores: Any, threshold: float, title: str) -> Figure:
    """Score distributions of normal and attack rows, with the threshold.

    Bins and axis are linear, log or symlog as score_axis_scale(scores) says (each bin equally
    wide on the axis as drawn).
    """
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=float)
    scale, linthresh = score_axis_scale(scores)
    bins = _bins(scores, scale, linthresh)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rows in (("normal", y == 0), ("attack", y == 1)):
        # counted by numpy, drawn as one filled step path (ax.hist draws a patch per bin: 3x
        # slower, for the same picture)
        counts, _ = np.histogram(scores[rows], bins=bins)
        ax.stairs(counts, bins, fill=True, alpha=0.6, label=label)
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    _set_scale(ax, scale, linthresh, np.append(scores, threshold))
    ax.set_yscale("log")
    axis = "" if scale == "linear" else f", {scale} axis"
    ax.set_xlabel(f"anomaly score (higher = attack){axis}")
    ax.set_ylabel("rows")
    ax.set_title(title)
    ax.legend()
    _fixed_layout(fig)
    return fig


def epsilon_curve_figure(y_val: Any, scores_val: Any, chosen: float, title: str) -> Figure:
    """F1, precision and recall on VAL against the density cut-off epsilon, for a detector
    whose score is -log p(x) (model=gaussian): attack iff p(x) <= epsilon, i.e. score >=
    -log(epsilon). The x axis is log10(epsilon) = -score / ln(10) (epsilon itself underflows
    for large scores), symlog where it spans many decades; the chosen epsilon is marked."""
    precision, recall, f1, thresholds = f1_curve(y_val, scores_val)
    log10_eps = -np.asarray(thresholds, dtype=float) / np.log(10)
    chosen_log10 = -float(chosen) / np.log(10)
    scale, linthresh = score_axis_scale(log10_eps)
    fig, ax = plt.subplots(figsize=(6, 4))
    _draw_curves(ax, log10_eps, (precision, recall, f1))
    ax.axvline(chosen_log10, color="k", ls="--", lw=1,
               label=f"chosen: epsilon = 10^{chosen_log10:.4g}")
    if scale == "symlog":
        _set_scale(ax, scale, linthresh, np.append(log10_eps, chosen_log10))
    ax.set_xlabel("log10 epsilon (attack iff density p(x) <= epsilon)")
    ax.set_ylabel("VAL")
    ax.set_title(title)
    ax.legend(loc="best")
    _fixed_layout(fig)
    return fig
