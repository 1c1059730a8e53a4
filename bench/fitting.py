"""Staged fitting of preprocess -> selector -> model, each on TRAIN only.

Each stage is fitted on the output of the previous one. Stages whose `fit` accepts
`validation_data` get VAL there (Keras early stopping); nothing else ever sees VAL labels.
The fitted stages are assembled into one sklearn Pipeline for scoring and logging.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline


def accepts_validation(estimator: Any) -> bool:
    """True when `estimator.fit` takes a `validation_data` argument (VAL for early stopping)."""
    return "validation_data" in inspect.signature(estimator.fit).parameters


def fit_pipeline(preprocess: Any, selector: Any, model: Any, X_train: pd.DataFrame,
                 y_train: Any, X_val: pd.DataFrame, y_val: Any) -> tuple[Pipeline, float]:
    """Fit the three stages on TRAIN; returns the fitted Pipeline and fit seconds."""
    start = time.perf_counter()
    train_matrix = preprocess.fit_transform(X_train, y_train)
    val_matrix = preprocess.transform(X_val)
    if accepts_validation(selector):
        selector.fit(train_matrix, y_train, validation_data=(val_matrix, y_val))
    else:
        selector.fit(train_matrix, y_train)
    train_matrix, val_matrix = selector.transform(train_matrix), selector.transform(val_matrix)
    if accepts_validation(model):
        model.fit(train_matrix, y_train, validation_data=(val_matrix, y_val))
    else:
        model.fit(train_matrix, y_train)
    seconds = time.perf_counter() - start
    pipeline = Pipeline([("preprocess", preprocess), ("select", selector), ("model", model)])
    return pipeline, seconds


def selected_feature_names(pipeline: Pipeline) -> list[str]:
    """Names of the features that reach the model (after preprocessing and selection)."""
    try:
        names = pipeline[:-1].get_feature_names_out()
    except (AttributeError, ValueError, TypeError):
        return []
    return [str(n) for n in names]
