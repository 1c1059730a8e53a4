"""Anomaly detectors behind the scikit-learn API, one score orientation for all.

Every detector here scores *normality* with `score_samples(X) -> (n_rows,)`, higher = more
normal, as scikit-learn's own detectors do (IsolationForest, LocalOutlierFactor, OneClassSVM).
`bench.models.scoring.anomaly_score` negates it, so the score that thresholds and metrics see
is higher = more likely attack:

- `GaussianDensity`: score_samples = log p(x); anomaly score = -log p(x), so a cut-off epsilon
  on the density is the threshold -log(epsilon) (`threshold=fixed threshold.epsilon=...`).
- `MeanSigma`: score_samples = -max_j |x_j - mean_j| / std_j; anomaly score = the largest
  per-feature deviation in standard deviations (the "mean + 2 sigma" rule is threshold 2).
- `AutoencoderDetector`: score_samples = -reconstruction error (mean squared, per row).
- `DBSCANDetector`: score_samples = -distance to the nearest DBSCAN core sample of the fit rows.

`Detector` wraps any of them (or a scikit-learn detector) and chooses the rows it is fitted on:
`fit_on="normal"` keeps only TRAIN rows labelled 0 (novelty detection), `fit_on="all"` uses
every row and ignores labels (unsupervised). Detectors see the preprocessed matrix.

Each inner detector also has a `predict` in scikit-learn's convention (+1 inlier, -1 outlier)
with its own built-in cut-off; `Detector.predict` maps it to 1 = attack. Metrics never use
it: the experiment's threshold is chosen on VAL scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.cluster import DBSCAN
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils import _safe_indexing  # public API, see Detector.fit
from sklearn.utils.validation import check_array, check_is_fitted

from bench.errors import ConfigError
from bench.fitting import accepts_validation
from bench.models.keras_nets import DenseAutoencoder

FIT_ON = ("normal", "all")


def _validation_matrix(validation_data: Any) -> Any:
    """VAL features from `validation_data`: an (X_val, y_val) pair or a bare matrix."""
    if isinstance(validation_data, tuple):
        return validation_data[0]
    return validation_data


class Detector(BaseEstimator):
    """An unsupervised detector fitted on the rows that `fit_on` names.

    Parameters
    ----------
    estimator : an unfitted detector with `fit(X)` and `score_samples(X)` (higher = normal);
        cloned at fit.
    fit_on : "normal" (rows with y == 0 only: novelty detection) or "all" (every row, labels
        ignored: unsupervised).
    max_rows : fit on a seeded random subsample of at most this many of those rows (for
        detectors whose fit grows quadratically, e.g. OneClassSVM, DBSCAN); None = all rows.
    random_state : seed of that subsample.

    `fit(X, y, validation_data=(X_val, y_val))` passes VAL on to an estimator whose `fit` takes
    `validation_data` (Keras early stopping), restricted to normal VAL rows when
    fit_on="normal". `score_samples(X)`: (n_rows,) normality, higher = more normal.
    """

    def __init__(self, estimator: Any, fit_on: str = "normal", max_rows: int | None = None,
                 random_state: int = 0):
        self.estimator = estimator
        self.fit_on = fit_on
        self.max_rows = max_rows
        self.random_state = random_state

    def _fit_rows(self, y: Any, n_rows: int) -> np.ndarray:
        if self.fit_on not in FIT_ON:
            raise ConfigError(f"model.fit_on must be one of {list(FIT_ON)}, got {self.fit_on!r}")
        rows = np.arange(n_rows)
        if self.fit_on == "normal":
            if y is None:
                raise ConfigError("model.fit_on=normal needs TRAIN labels to find the normal "
                                  "rows; none were given (use model.fit_on=all)")
            labels = np.asarray(y).astype(int).reshape(-1)
            rows = np.flatnonzero(labels == 0)
            if len(rows) == 0:
                raise ConfigError(
                    f"model.fit_on=normal, but TRAIN has no normal rows (label 0) among its "
                    f"{n_rows} rows: the detector has nothing to learn normal traffic from "
                    "(use model.fit_on=all, or a split with normal rows in TRAIN)")
        if self.max_rows is not None:
            if int(self.max_rows) < 2:
                raise ConfigError(f"model.max_rows must be at least 2, got {self.max_rows}")
            if len(rows) > self.max_rows:
                rng = np.random.default_rng(self.random_state)
                rows = np.sort(rng.choice(rows, size=int(self.max_rows), replace=False))
        return rows

    def fit(self, X: Any, y: Any = None, validation_data: Any = None) -> Detector:
        """Fit a clone of `estimator` on the chosen rows of X (n_rows, n_features)."""
        rows = self._fit_rows(y, len(X))
        # _safe_indexing is public despite its underscore (in sklearn.utils.__all__ and the API
        # reference): it takes rows of arrays, DataFrames and sparse matrices alike.
        X_fit = _safe_indexing(X, rows)
        self.estimator_ = clone(self.estimator)
        if accepts_validation(self.estimator_):
            self.estimator_.fit(X_fit, validation_data=self._validation(validation_data))
        else:
            self.estimator_.fit(X_fit)
        self.n_features_in_ = X.shape[1]
        self.n_fit_rows_ = len(rows)
        return self

    def _validation(self, validation_data: Any) -> Any:
        """VAL for early stopping: only its normal rows when fit_on="normal"; None if none."""
        if validation_data is None:
            return None
        if not isinstance(validation_data, tuple):
            return validation_data
        X_val, y_val = validation_data
        if self.fit_on == "normal" and y_val is not None:
            keep = np.flatnonzero(np.asarray(y_val).astype(int).reshape(-1) == 0)
            if len(keep) == 0:
                return None  # the inner estimator holds out part of the fit rows instead
            return _safe_indexing(X_val, keep), _safe_indexing(np.asarray(y_val), keep)
        return X_val, y_val

    def score_samples(self, X: Any) -> np.ndarray:
        """(n_rows,) normality, higher = more normal; `anomaly_score` uses its negative."""
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.score_samples(X), dtype=float).reshape(-1)

    def predict(self, X: Any) -> np.ndarray:
        """(n_rows,) 1 = attack by the inner detector's own built-in cut-off, 0 = normal.

        For the logged MLflow model's `predict` only; metrics use the threshold chosen on VAL.
        """
        check_is_fitted(self, "estimator_")
        return (np.asarray(self.estimator_.predict(X)) == -1).astype(np.int64)

    @property
    def score_is_negative_log_density(self) -> bool:
        """True when the anomaly score is -log p(x), so a cut-off epsilon on p(x) applies."""
        return bool(getattr(self.estimator, "score_is_negative_log_density", False))

    @property
    def history_(self) -> dict[str, list[float]]:
        """Training history of a Keras inner detector (AttributeError for others)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.history_


class GaussianDensity(OutlierMixin, BaseEstimator):
    """One multivariate Gaussian fitted by maximum likelihood (sklearn's GaussianMixture with
    a single component).

    covariance_type : "full", "diag" (independent features) or "spherical".
    reg_covar : ridge added to the covariance diagonal (>= 0). With the default 1e-6 a singular
        covariance (constant or collinear columns, e.g. one-hot groups) can still be inverted;
        directions with no TRAIN variance then give very low log p to rows that leave them.
        With 0 and a singular covariance, `fit` raises ConfigError.
    contamination : share of the fit rows that `predict` calls outliers (its own cut-off).

    score_samples(X) -> (n_rows,) log p(x) (higher = more normal), so the anomaly score is
    -log p(x) and a density cut-off epsilon is the threshold -log(epsilon). p(x) is the
    density of the preprocessed (by default standardised) features, not of raw traffic.
    """

    score_is_negative_log_density = True

    def __init__(self, covariance_type: str = "full", reg_covar: float = 1e-6,
                 contamination: float = 0.01):
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.contamination = contamination

    def fit(self, X: Any, y: Any = None) -> GaussianDensity:
        if self.covariance_type not in ("full", "diag", "spherical"):
            raise ConfigError("covariance_type must be full, diag or spherical, got "
                              f"{self.covariance_type!r}")
        if not self.reg_covar >= 0:
            raise ConfigError(f"reg_covar must be >= 0, got {self.reg_covar}")
        X = check_array(X, dtype=np.float64)
        if len(X) < 2:
            raise ConfigError(f"a Gaussian needs at least 2 fit rows, got {len(X)}")
        mixture = GaussianMixture(n_components=1, covariance_type=self.covariance_type,
                                  reg_covar=self.reg_covar, init_params="random",
                                  max_iter=10, random_state=0)
        try:
            mixture.fit(X)
        except ValueError as error:
            raise ConfigError(
                f"the {self.covariance_type} covariance of {len(X)} fit rows x {X.shape[1]} "
                f"features cannot be inverted with reg_covar={self.reg_covar}: increase "
                f"reg_covar (e.g. 1e-6) or use covariance_type=diag ({error})") from error
        self.mixture_ = mixture
        self.mean_ = mixture.means_[0]
        self.covariance_ = mixture.covariances_[0]
        self.n_features_in_ = X.shape[1]
        self.offset_ = float(np.quantile(self.score_samples(X), self.contamination))
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """(n_rows,) log density log p(x); higher = more normal."""
        check_is_fitted(self, "mixture_")
        return self.mixture_.score_samples(check_array(X, dtype=np.float64))

    def predict(self, X: Any) -> np.ndarray:
        """+1 inlier, -1 outlier (log p below the `contamination` quantile of the fit rows)."""
        return np.where(self.score_samples(X) < self.offset_, -1, 1)


class MeanSigma(OutlierMixin, BaseEstimator):
    """The Kaggle graph-traffic study's rule: per-feature mean and standard deviation of the fit
    rows; a row is anomalous if any feature lies more than `n_sigma` deviations from its mean.

    score_samples(X) -> (n_rows,) minus the largest per-feature deviation max_j |x_j - mean_j|
    / std_j (higher = more normal); the anomaly score is that deviation, so the study's rule is
    `threshold=fixed threshold.value=2`. `two_sided=False` counts only excess (x_j > mean_j).
    Features with zero variance on the fit rows get std 1 (StandardScaler's convention).
    predict: -1 (outlier) iff the deviation exceeds `n_sigma`.
    """

    def __init__(self, n_sigma: float = 2.0, two_sided: bool = True):
        self.n_sigma = n_sigma
        self.two_sided = two_sided

    def fit(self, X: Any, y: Any = None) -> MeanSigma:
        self.scaler_ = StandardScaler().fit(check_array(X, dtype=np.float64))
        self.mean_, self.std_ = self.scaler_.mean_, self.scaler_.scale_
        self.n_features_in_ = self.scaler_.n_features_in_
        return self

    def deviation(self, X: Any) -> np.ndarray:
        """(n_rows,) largest per-feature deviation in standard deviations; higher = unusual."""
        check_is_fitted(self, "scaler_")
        z = self.scaler_.transform(check_array(X, dtype=np.float64))
        return (np.abs(z) if self.two_sided else z).max(axis=1)

    def score_samples(self, X: Any) -> np.ndarray:
        return -self.deviation(X)

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.deviation(X) > self.n_sigma, -1, 1)


class AutoencoderDetector(OutlierMixin, DenseAutoencoder):
    """Dense Keras autoencoder (bench.models.keras_nets.DenseAutoencoder) as a detector.

    fit(X, validation_data=X_val or (X_val, y_val)): learns to reconstruct X; early stopping
    watches the reconstruction loss on X_val (y ignored; `Detector` passes only normal VAL rows
    when fit_on="normal"). score_samples(X) -> (n_rows,) minus the mean squared reconstruction
    error (higher = more normal). predict: -1 above the (1 - contamination) quantile of the
    fit rows' error.
    """

    def __init__(self, encoder_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 learning_rate: float = 1e-3, batch_size: int = 256, epochs: int = 30,
                 patience: int = 5, validation_fraction: float = 0.1, random_state: int = 0,
                 verbose: int = 0, contamination: float = 0.01):
        super().__init__(encoder_units=encoder_units, activation=activation,
                         learning_rate=learning_rate, batch_size=batch_size, epochs=epochs,
                         patience=patience, validation_fraction=validation_fraction,
                         random_state=random_state, verbose=verbose)
        self.contamination = contamination

    def fit(self, X: Any, y: Any = None, validation_data: Any = None) -> AutoencoderDetector:
        self._fit_autoencoder(X, _validation_matrix(validation_data))
        self.offset_ = float(np.quantile(self.score_samples(X), self.contamination))
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        return -self.reconstruction_error(X).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.score_samples(X) < self.offset_, -1, 1)


class DBSCANDetector(OutlierMixin, BaseEstimator):
    """DBSCAN on the fit rows, then unseen rows scored by distance to the nearest core sample.

    DBSCAN itself has no scoring of new rows; this one is honest: a new row within `eps` of a
    core sample is what DBSCAN would put in that cluster (a border point), a row farther away
    would be noise. score_samples(X) -> (n_rows,) minus that distance (higher = more normal);
    the DBSCAN decision is `threshold=fixed threshold.value=<eps>`, and predict uses it.
    The fit stores all eps-neighbourhoods (memory grows with rows x neighbours): fit on a
    subsample (`Detector(max_rows=...)`).
    """

    def __init__(self, eps: float = 0.5, min_samples: int = 5, metric: str = "euclidean",
                 n_jobs: int | None = None):
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> DBSCANDetector:
        X = check_array(X, dtype=np.float64)
        clustering = DBSCAN(eps=self.eps, min_samples=self.min_samples, metric=self.metric,
                            n_jobs=self.n_jobs).fit(X)
        core = X[clustering.core_sample_indices_]
        if len(core) == 0:
            raise ConfigError(
                f"DBSCAN found no core sample among {len(X)} fit rows (eps={self.eps}, "
                f"min_samples={self.min_samples}): increase eps or decrease min_samples")
        self.n_clusters_ = int(clustering.labels_.max() + 1)
        self.n_core_samples_ = len(core)
        self.noise_share_ = float(np.mean(clustering.labels_ == -1))
        self.neighbours_ = NearestNeighbors(n_neighbors=1, metric=self.metric,
                                            n_jobs=self.n_jobs).fit(core)
        self.n_features_in_ = X.shape[1]
        return self

    def core_distance(self, X: Any) -> np.ndarray:
        """(n_rows,) distance to the nearest core sample; higher = more unusual."""
        check_is_fitted(self, "neighbours_")
        distance, _ = self.neighbours_.kneighbors(check_array(X, dtype=np.float64))
        return distance[:, 0]

    def score_samples(self, X: Any) -> np.ndarray:
        return -self.core_distance(X)

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.core_distance(X) > self.eps, -1, 1)
