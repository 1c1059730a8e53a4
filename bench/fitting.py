"""Staged fitting of preprocess -> selector -> model, each on TRAIN only.

Each stage is fitted on the output of the previous one. Stages whose `fit` accepts
`validation_data` get VAL there (Keras early stopping); nothing else ever sees VAL labels.
The fitted stages are assembled into one sklearn Pipeline for scoring and logging.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline


def accepts_validation(estimator: Any) -> bool:
    """True when `estimator.fit` takes a `validation_data` argument (VAL for early stopping)."""
    return "validation_data" in inspect.signature(estimator.fit).parameters


@dataclass(frozen=True)
class FittedStage:
    """A stage fitted on TRAIN, with what it turns TRAIN and VAL into (the next stage's
    input: arrays of shape (n_rows, n_outputs)) and its fit seconds."""

    estimator: Any
    train: Any
    val: Any
    seconds: float


def fit_preprocess(preprocess: Any, X_train: pd.DataFrame, y_train: Any,
                   X_val: pd.DataFrame) -> FittedStage:
    """The preprocessing fitted on TRAIN; VAL only transformed."""
    start = time.perf_counter()
    train = preprocess.fit_transform(X_train, y_train)
    val = preprocess.transform(X_val)
    return FittedStage(preprocess, train, val, time.perf_counter() - start)


def fit_selector(selector: Any, previous: FittedStage, y_train: Any, y_val: Any
                 ) -> FittedStage:
    """The selector fitted on the preprocessed TRAIN (VAL for early stopping only)."""
    start = time.perf_counter()
    if accepts_validation(selector):
        selector.fit(previous.train, y_train, validation_data=(previous.val, y_val))
    else:
        selector.fit(previous.train, y_train)
    train, val = selector.transform(previous.train), selector.transform(previous.val)
    return FittedStage(selector, train, val, time.perf_counter() - start)


def fit_model(model: Any, previous: FittedStage, y_train: Any, y_val: Any) -> float:
    """Fit the model on the selected TRAIN features (VAL for early stopping only); seconds."""
    start = time.perf_counter()
    if accepts_validation(model):
        model.fit(previous.train, y_train, validation_data=(previous.val, y_val))
    else:
        model.fit(previous.train, y_train)
    return time.perf_counter() - start


def assemble(preprocess: FittedStage, selector: FittedStage, model: Any) -> Pipeline:
    """The fitted stages as one sklearn Pipeline (scoring, logging)."""
    return Pipeline([("preprocess", preprocess.estimator), ("select", selector.estimator),
                     ("model", model)])


def fit_pipeline(preprocess: Any, selector: Any, model: Any, X_train: pd.DataFrame,
                 y_train: Any, X_val: pd.DataFrame, y_val: Any) -> tuple[Pipeline, float]:
    """Fit the three stages on TRAIN; returns the fitted Pipeline and fit seconds."""
    prepared = fit_preprocess(preprocess, X_train, y_train, X_val)
    selected = fit_selector(selector, prepared, y_train, y_val)
    seconds = fit_model(model, selected, y_train, y_val)
    return (assemble(prepared, selected, model),
            prepared.seconds + selected.seconds + seconds)


def selected_feature_names(pipeline: Pipeline) -> list[str]:
    """Names of the features that reach the model (after preprocessing and selection)."""
    try:
        names = pipeline[:-1].get_feature_names_out()
    except (AttributeError, ValueError, TypeError):
        return []
    return [str(n) for n in names]
