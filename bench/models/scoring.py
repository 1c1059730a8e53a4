"""One score orientation for every fitted pipeline: higher = more likely attack."""

from __future__ import annotations

from typing import Any

import numpy as np


def anomaly_score(estimator: Any, X: Any) -> np.ndarray:
    """(n_rows,) float scores, higher = more likely attack.

    Uses, in order: `predict_proba(X)[:, 1]` (classifiers, label 1 = attack),
    `-score_samples(X)` (sklearn detectors score normality, higher = more normal),
    `decision_function(X)` (assumed oriented so that higher = attack).
    """
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(X))[:, 1].astype(float)
    if hasattr(estimator, "score_samples"):
        return -np.asarray(estimator.score_samples(X), dtype=float)
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X), dtype=float).reshape(-1)
    raise TypeError(f"{type(estimator).__name__} has no predict_proba, score_samples "
                    "or decision_function: it cannot give an anomaly score")
