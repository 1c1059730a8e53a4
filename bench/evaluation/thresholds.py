"""Decision thresholds, always chosen on VAL scores: predict attack iff score >= threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve

from bench.errors import ConfigError


@dataclass
class ThresholdChoice:
    """The chosen cut-off and what the strategy saw on VAL when it chose it."""

    threshold: float
    strategy: str
    details: dict[str, Any] = field(default_factory=dict)


def _check_val(y_val: np.ndarray, scores_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_val = np.asarray(y_val).astype(int)
    scores_val = np.asarray(scores_val, dtype=float)
    if y_val.shape != scores_val.shape:
        raise ValueError(f"labels {y_val.shape} and scores {scores_val.shape} differ in shape")
    if not np.isfinite(scores_val).all():
        raise ValueError(f"{int((~np.isfinite(scores_val)).sum())} VAL scores are NaN or "
                         "infinite; a threshold cannot be chosen")
    return y_val, scores_val


@dataclass
class BestF1:
    """The threshold maximising F1 on VAL, exact over every distinct score.

    sklearn's precision_recall_curve enumerates every distinct score as a candidate, so this is
    the exact optimum, not a grid. Ties go to the highest threshold (fewest alarms).
    """

    def choose(self, y_val: Any, scores_val: Any) -> ThresholdChoice:
        y_val, scores_val = _check_val(y_val, scores_val)
        if y_val.sum() == 0:
            raise ConfigError("VAL has no attack rows: best_f1 cannot choose a threshold")
        precision, recall, thresholds = precision_recall_curve(y_val, scores_val)
        precision, recall = precision[:-1], recall[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall),
                          0.0)
        best = np.flatnonzero(f1 == f1.max()).max()
        return ThresholdChoice(float(thresholds[best]), "best_f1",
                               {"val_f1_at_threshold": float(f1[best]),
                                "candidates": len(thresholds)})
