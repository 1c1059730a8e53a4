"""Feature selectors (sklearn transformers), fitted on TRAIN after preprocessing.

`none` is sklearn's identity FunctionTransformer; `autoencoder` lives in
bench.models.keras_nets (it needs Keras, imported lazily).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectFromModel
from sklearn.utils.validation import check_is_fitted

log = logging.getLogger(__name__)


def _capped(key: str, asked: int, kept: int, X: Any) -> int:
    """`kept`, said on the console when it is less than `asked` (the run's params show what
    was asked; reports/selected_features.txt lists what was kept)."""
    if kept < asked:
        log.warning(f"[selector] {key}={asked} is more than TRAIN allows ({X.shape[1]} "
                    f"features, {X.shape[0]} rows): {kept} kept")
    return kept


class AtMost:
    """`max_features` callable for SelectFromModel: k, or every feature when there are fewer.

    A class rather than a lambda so that fitted pipelines pickle and clone.
    """

    def __init__(self, k: int):
        self.k = k

    def __call__(self, X: Any) -> int:
        return _capped("selector.k", self.k, min(self.k, X.shape[1]), X)

    def __repr__(self) -> str:
        return f"AtMost({self.k})"


def rf_importance(k: int = 20, n_estimators: int = 100, max_depth: int | None = None,
                  random_state: int = 0, n_jobs: int = -1) -> SelectFromModel:
    """Keep the top-`k` features by random-forest impurity importance (all if fewer than k)."""
    if k < 1:
        raise ValueError(f"selector.k must be >= 1, got {k}")
    forest = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                    random_state=random_state, n_jobs=n_jobs)
    return SelectFromModel(forest, threshold=-np.inf, max_features=AtMost(k))


class CappedPCA(TransformerMixin, BaseEstimator):
    """PCA to `n_components`, capped at what the TRAIN matrix allows (features, rows)."""

    def __init__(self, n_components: int = 10, whiten: bool = False, random_state: int = 0):
        self.n_components = n_components
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> CappedPCA:
        n = _capped("selector.n_components", self.n_components,
                    min(self.n_components, X.shape[1], X.shape[0]), X)
        self.pca_ = PCA(n_components=n, whiten=self.whiten, random_state=self.random_state)
        self.pca_.fit(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "pca_")
        return self.pca_.transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "pca_")
        return np.asarray([f"pc{i + 1}" for i in range(self.pca_.n_components_)], dtype=object)
