"""Staged fitting of preprocess -> selector -> model, each on TRAIN only.

Each stage is fitted on the output of the previous one. Stages whose `fit` accepts
`validation_data` get VAL there (Keras early stopping); nothing else ever sees VAL labels.
The fitted stages are assembled into one sklearn Pipeline for scoring and logging.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from bench.errors import ConfigError, DataError

# Libraries whose estimators check some settings only when they fit (solver vs penalty,
# n_neighbors vs rows, oob_score vs bootstrap): a ValueError/TypeError raised in them is a
# refusal of the user's settings for this data, reported in one line (`refusals`).
_REFUSING_LIBRARIES = ("sklearn.", "xgboost.")


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


@contextmanager
def refusals(group: str, estimator: Any, rows: str | None = None) -> Iterator[None]:
    """A ValueError/TypeError raised inside scikit-learn or xgboost while `estimator` fits
    or scores becomes a ConfigError naming the config group and the estimator (one line on the
    console; a run keeps the traceback in error/traceback.txt), or, given the `rows` being
    scored (bench score), a DataError naming them. Raised anywhere else (bench's own code) it
    stays what it is: a bug keeps its traceback."""
    try:
        yield
    except (ValueError, TypeError) as error:
        frame = error.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
        if not module.startswith(_REFUSING_LIBRARIES):
            raise
        if rows is not None:
            raise DataError(f"{rows}: the model cannot score these values: "
                            f"{' '.join(str(error).split())}") from error
        raise ConfigError(f"{group}: {type(estimator).__name__} cannot be fitted with these "
                          f"settings on this data: {' '.join(str(error).split())}") from error


def fit_preprocess(preprocess: Any, X_train: pd.DataFrame, y_train: Any,
                   X_val: pd.DataFrame) -> FittedStage:
    """The preprocessing fitted on TRAIN; VAL only transformed."""
    start = time.perf_counter()
    with refusals("preprocess", preprocess):
        train = preprocess.fit_transform(X_train, y_train)
    val = preprocess.transform(X_val)
    return FittedStage(preprocess, train, val, time.perf_counter() - start)


def fit_selector(selector: Any, previous: FittedStage, y_train: Any, y_val: Any
                 ) -> FittedStage:
    """The selector fitted on the preprocessed TRAIN (VAL for early stopping only)."""
    start = time.perf_counter()
    _fit_on("selector", selector, previous, y_train, y_val)
    train, val = selector.transform(previous.train), selector.transform(previous.val)
    return FittedStage(selector, train, val, time.perf_counter() - start)


def fit_model(model: Any, previous: FittedStage, y_train: Any, y_val: Any) -> float:
    """Fit the model on the selected TRAIN features (VAL for early stopping only); seconds."""
    start = time.perf_counter()
    _fit_on("model", model, previous, y_train, y_val)
    return time.perf_counter() - start


def _fit_on(group: str, estimator: Any, previous: FittedStage, y_train: Any, y_val: Any
            ) -> None:
    """`estimator.fit` on what `previous` made of TRAIN; VAL only to estimators that take
    `validation_data` (early stopping)."""
    with refusals(group, estimator):
        if accepts_validation(estimator):
            estimator.fit(previous.train, y_train, validation_data=(previous.val, y_val))
        else:
            estimator.fit(previous.train, y_train)


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
