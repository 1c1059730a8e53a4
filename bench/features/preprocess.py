"""Preprocessing fitted on TRAIN only: one-hot categoricals, optional log1p, scaling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted


class SkewedLog1p(TransformerMixin, BaseEstimator):
    """log1p on skewed non-negative columns; other columns pass through unchanged.

    `columns="auto"` picks, on the data given to `fit` (TRAIN), the columns that are
    non-negative with skewness above `skew_threshold`; a list names them explicitly; "none"
    disables the transform. Negative values met later are clipped to 0 before log1p.
    Input: (n_rows, n_columns) array or frame; output: an array of `dtype`, same column order.
    """

    def __init__(self, columns: str | Sequence[str] = "auto", skew_threshold: float = 1.0,
                 dtype: str = "float32"):
        self.columns = columns
        self.skew_threshold = skew_threshold
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None) -> SkewedLog1p:
        frame = pd.DataFrame(X).reset_index(drop=True)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        if isinstance(self.columns, str) and self.columns == "none":
            chosen: list[Any] = []
        elif isinstance(self.columns, str) and self.columns == "auto":
            numeric = frame.astype(float)
            skew = numeric.skew()
            chosen = [c for c in frame.columns
                      if numeric[c].min() >= 0 and skew[c] > self.skew_threshold]
        else:
            chosen = [c for c in self.columns if c in set(frame.columns)]
        self.log_columns_ = chosen
        self.mask_ = np.isin(frame.columns, chosen)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "mask_")
        values = np.array(X, dtype=self.dtype)  # one copy, already in the output dtype
        values[:, self.mask_] = np.log1p(np.clip(values[:, self.mask_], 0, None))
        return values

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "mask_")
        return np.asarray(self.feature_names_in_, dtype=object)


def check_log1p_columns(log1p: Any, categorical: Sequence[str], numeric: Sequence[str]
                        ) -> None:
    """ConfigError naming `preprocess.log1p`, each listed column that is not a numeric feature
    column of the data, and the closest real names (log1p silently skipped them); called as
    soon as the data's columns are known, before any run is created or anything fitted."""
    import difflib

    from bench.errors import ConfigError

    if log1p is None or isinstance(log1p, str):
        return
    listed = [str(c) for c in log1p]  # a list or an OmegaConf ListConfig
    wrong = [c for c in listed if c not in set(numeric)]
    if not wrong:
        return
    problems = []
    for name in wrong:
        if name in set(categorical):
            problems.append(f"{name!r} is categorical (one-hot encoded, not log1p'd)")
            continue
        close = difflib.get_close_matches(name, list(numeric), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        problems.append(f"{name!r} is not a numeric feature column{hint}")
    shown = ", ".join(list(numeric)[:30]) + (" ..." if len(numeric) > 30 else "")
    raise ConfigError(f"preprocess.log1p={listed}: {'; '.join(problems)}; "
                      f"the numeric feature columns: {shown or 'none'}")


def build_preprocessor(categorical: Sequence[str], numeric: Sequence[str],
                       scaler: BaseEstimator | None = None,
                       log1p: str | Sequence[str] = "auto", skew_threshold: float = 1.0,
                       min_frequency: int | None = None,
                       dtype: str = "float32") -> ColumnTransformer:
    """A ColumnTransformer: one-hot for `categorical`, log1p + scaler for `numeric`.

    Categories unseen on TRAIN are encoded as all zeros (or as the infrequent bucket when
    `min_frequency` is set), so scoring never crashes on a new protocol or service.
    Output: a dense array of `dtype`, one-hot columns first. float32 by default: xgboost and
    Keras compute in float32 anyway, the matrix takes half the memory of float64 (0.7 GiB less
    on 1.6 M NSL-KDD rows), and detectors that need float64 (densities) cast their input;
    scalers keep float32 (their statistics are accumulated in float64), and counts above 2**24
    left unscaled (`preprocess=raw`) are rounded to 7 significant digits. `dtype=float64`
    restores the old output.
    """
    scaler = scaler if scaler is not None else StandardScaler()
    one_hot = OneHotEncoder(
        handle_unknown="infrequent_if_exist" if min_frequency else "ignore",
        min_frequency=min_frequency, sparse_output=False, dtype=dtype,
    )
    transformers: list[tuple[str, Any, list[str]]] = []
    if categorical:
        transformers.append(("categorical", one_hot, list(categorical)))
    if numeric:
        numeric_steps = make_pipeline(SkewedLog1p(log1p, skew_threshold, dtype), scaler)
        transformers.append(("numeric", numeric_steps, list(numeric)))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0,
                             verbose_feature_names_out=True)
