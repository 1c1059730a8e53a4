"""Detectors and the model zoo: fit regimes, score orientation, bad input, end to end."""

from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from bench.app import CONFIG_DIR
from bench.data.graph_traffic import edges, generate
from bench.data.graph_traffic import load as load_graph_traffic
from bench.errors import ConfigError
from bench.experiment import run_experiment
from bench.instantiate import build
from bench.models.detectors import (
    DBSCANDetector,
    Detector,
    GaussianDensity,
    MeanSigma,
)
from bench.models.scoring import anomaly_score

MODEL_DIR = Path(CONFIG_DIR) / "model"
KERAS_MODELS = {"dfnn", "ann", "autoencoder"}
# tiny sizes so that every model fits in well under a second (Keras: a few seconds)
SMALL = {
    "xgboost": ["model.n_estimators=20"],
    "random_forest": ["model.n_estimators=20"],
    "adaboost": ["model.n_estimators=20"],
    "isolation_forest": ["model.estimator.n_estimators=50"],
    "dfnn": ["model.epochs=5", "model.batch_size=32"],
    "ann": ["model.epochs=5", "model.batch_size=32"],
    "autoencoder": ["model.estimator.epochs=5"],
}


def _separated(n: int, seed: int, attack_share: float = 0.25, n_features: int = 6
               ) -> tuple[np.ndarray, np.ndarray]:
    """Normal rows ~ N(0, I); attack rows ~ N(3.5, I): clearly separated clouds."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < attack_share).astype(int)
    X = rng.normal(size=(n, n_features)) + 3.5 * y[:, None]
    return X, y


class SpyDetector(BaseEstimator):
    """Records the rows it is fitted on (and the VAL it is given); scores by -|x|."""

    def fit(self, X: Any, y: Any = None, validation_data: Any = None) -> SpyDetector:
        self.seen_ = np.asarray(X).copy()
        self.seen_val_ = validation_data
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        return -np.abs(np.asarray(X)).sum(axis=1)


# --- the fit regime --------------------------------------------------------------------

def test_fit_on_normal_never_shows_attack_rows_to_the_estimator():
    X, y = _separated(300, 0)
    marked = np.column_stack([X, y])  # the last column tells the spy each row's label
    X_val, y_val = _separated(100, 1)
    val_marked = np.column_stack([X_val, y_val])
    detector = Detector(SpyDetector(), fit_on="normal").fit(
        marked, y, validation_data=(val_marked, y_val))
    seen = detector.estimator_.seen_
    assert len(seen) == (y == 0).sum() and not seen[:, -1].any()
    seen_val, seen_val_y = detector.estimator_.seen_val_
    assert len(seen_val) == (y_val == 0).sum() and not seen_val[:, -1].any()
    assert not seen_val_y.any()
    assert detector.n_fit_rows_ == (y == 0).sum()


def test_fit_on_all_uses_every_row_and_no_labels():
    X, y = _separated(300, 0)
    detector = Detector(SpyDetector(), fit_on="all").fit(X, y)
    assert len(detector.estimator_.seen_) == 300
    assert len(Detector(SpyDetector(), fit_on="all").fit(X).estimator_.seen_) == 300


def test_max_rows_subsamples_the_fit_rows():
    X, y = _separated(300, 0)
    detector = Detector(SpyDetector(), max_rows=50, random_state=1).fit(X, y)
    assert detector.estimator_.seen_.shape == (50, X.shape[1])


def test_fit_on_normal_without_normal_rows_is_a_config_error():
    X, _ = _separated(50, 0)
    with pytest.raises(ConfigError, match="no normal rows"):
        Detector(IsolationForest(), fit_on="normal").fit(X, np.ones(50, dtype=int))
    with pytest.raises(ConfigError, match="needs TRAIN labels"):
        Detector(IsolationForest(), fit_on="normal").fit(X)
    with pytest.raises(ConfigError, match="fit_on"):
        Detector(IsolationForest(), fit_on="some").fit(X, np.zeros(50, dtype=int))


def test_detector_clones_and_pickles():
    X, y = _separated(300, 0)
    for inner in (IsolationForest(n_estimators=20, random_state=0), GaussianDensity(),
                  MeanSigma()):
        detector = Detector(inner, fit_on="normal", max_rows=200)
        params = detector.get_params()
        assert params["fit_on"] == "normal" and "estimator" in params
        assert any(key.startswith("estimator__") for key in params)
        twin = clone(detector).set_params(fit_on="all")
        assert twin.fit_on == "all" and detector.fit_on == "normal"
        detector.fit(X, y)
        restored = pickle.loads(pickle.dumps(detector))
        np.testing.assert_array_equal(restored.score_samples(X), detector.score_samples(X))
        assert set(np.unique(detector.predict(X))) <= {0, 1}


# --- every model in conf/model/ is oriented: attacks score higher ----------------------

def _model_params() -> list[Any]:
    names = sorted(p.stem for p in MODEL_DIR.glob("*.yaml"))
    if not names:  # an empty list would silently skip the test below
        raise RuntimeError(f"no model configs found in {MODEL_DIR}")
    return [pytest.param(name, marks=pytest.mark.slow) if name in KERAS_MODELS else name
            for name in names]


@pytest.mark.parametrize("name", _model_params())
def test_every_model_scores_attacks_higher(name, compose_cfg):
    cfg, _ = compose_cfg(f"model={name}", *SMALL.get(name, []))
    model = build(cfg.model)
    X, y = _separated(400, 0)
    X_val, y_val = _separated(200, 1)
    X_test, y_test = _separated(400, 2)
    if "validation_data" in inspect.signature(model.fit).parameters:
        model.fit(X, y, validation_data=(X_val, y_val))
    else:
        model.fit(X, y)
    scores = anomaly_score(model, X_test)
    assert scores.shape == (400,) and np.isfinite(scores).all()
    assert roc_auc_score(y_test, scores) > 0.9


def test_unsupervised_regime_from_the_config(compose_cfg):
    cfg, _ = compose_cfg("model=isolation_forest", "model.fit_on=all",
                         "model.estimator.n_estimators=50")
    model = build(cfg.model)
    X, y = _separated(400, 0, attack_share=0.05)
    model.fit(X, y)
    X_test, y_test = _separated(400, 2)
    assert model.n_fit_rows_ == 400
    assert roc_auc_score(y_test, anomaly_score(model, X_test)) > 0.9


# --- the detectors' own classes ---------------------------------------------------------

def test_gaussian_survives_singular_covariance_with_its_ridge():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 3))
    X = np.column_stack([a, a[:, 0], np.ones(200)])  # a copied column and a constant one
    for covariance_type in ("full", "diag", "spherical"):
        scores = GaussianDensity(covariance_type=covariance_type).fit(X).score_samples(X)
        assert np.isfinite(scores).all()
    with pytest.raises(ConfigError, match="cannot be inverted"):
        GaussianDensity(reg_covar=0.0).fit(X)
    with pytest.raises(ConfigError, match="reg_covar"):
        GaussianDensity(reg_covar=-1.0).fit(X)
    with pytest.raises(ConfigError, match="covariance_type"):
        GaussianDensity(covariance_type="tied").fit(X)


def test_gaussian_detector_marks_its_density_score():
    assert Detector(GaussianDensity()).score_is_negative_log_density
    assert not Detector(MeanSigma()).score_is_negative_log_density


def test_mean_sigma_is_the_largest_deviation_in_standard_deviations():
    rule = MeanSigma().fit(np.array([[0.0, 10.0], [2.0, 10.0]]))  # mean 1, 10; std 1, 0 -> 1
    X = np.array([[1.0, 10.0], [4.0, 10.0], [1.0, 8.5], [-2.5, 10.0]])
    np.testing.assert_allclose(-rule.score_samples(X), [0.0, 3.0, 1.5, 3.5])
    np.testing.assert_array_equal(rule.predict(X), [1, -1, 1, -1])  # beyond 2 sigma
    one_sided = MeanSigma(two_sided=False).fit(np.array([[0.0], [2.0]]))
    np.testing.assert_allclose(-one_sided.score_samples(np.array([[4.0], [-2.0]])), [3.0, -3.0])


def test_dbscan_scores_by_distance_to_core_samples():
    X, y = _separated(300, 0)
    detector = DBSCANDetector(eps=1.5, min_samples=5).fit(X[y == 0])
    X_test, y_test = _separated(300, 1)
    assert roc_auc_score(y_test, -detector.score_samples(X_test)) > 0.9
    core_row = X[y == 0][:1]
    with pytest.raises(ConfigError, match="no core sample"):
        DBSCANDetector(eps=1e-6).fit(X)
    assert detector.core_distance(core_row)[0] <= 1.5


# --- graph traffic ----------------------------------------------------------------------

def test_graph_traffic_has_one_feature_per_edge_and_multiplied_anomalies():
    frame = generate(n_nodes=10, n_rows=2000, attack_share=0.1, seed=0)
    edge_columns = [c for c in frame.columns if c.startswith("bytes_")]
    assert len(edge_columns) == len(edges(10)) == 45
    assert len(edges(4, directed=True)) == 12
    assert frame["label"].mean() == pytest.approx(0.1)
    assert set(frame["anomaly"]) == {"normal", "edge_burst", "node_flood"}
    assert (frame[edge_columns] >= 0).all().all()
    normal, attack = frame[frame.label == 0], frame[frame.label == 1]
    assert attack[edge_columns].max(axis=1).mean() > normal[edge_columns].max(axis=1).mean()
    dataset = load_graph_traffic(n_nodes=5, n_rows=500)
    assert dataset.schema.numeric == tuple(f"bytes_{i}_{j}" for i, j in edges(5))
    assert dataset.schema.family == "anomaly" and "window" in dataset.schema.identifiers
    with pytest.raises(ConfigError):
        generate(n_nodes=1)
    with pytest.raises(ConfigError):
        generate(factor_low=0.5)


def test_mean_2sigma_finds_graph_anomalies(compose_cfg):
    cfg, _ = compose_cfg("model=mean_2sigma", small=False)
    frame = generate(n_nodes=6, n_rows=2000, attack_share=0.2, seed=0, factor_low=2.0)
    X = frame[[c for c in frame.columns if c.startswith("bytes_")]].to_numpy(float)
    y = frame["label"].to_numpy()
    model = build(cfg.model).fit(X[:1000], y[:1000])
    assert roc_auc_score(y[1000:], anomaly_score(model, X[1000:])) > 0.9


# --- end to end ---------------------------------------------------------------------------

def test_gaussian_with_fpr_budget_end_to_end(compose_cfg, tracking_uri):
    cfg, choices = compose_cfg("model=gaussian", "threshold=fpr_budget",
                               "threshold.budget=0.05")
    result = run_experiment(cfg, choices)
    for key in ("val_f1", "val_fpr", "test_f1", "test_roc_auc", "threshold"):
        assert np.isfinite(result.metrics[key]), key
    assert result.metrics["val_fpr"] <= 0.05
    assert result.metrics["test_roc_auc"] > 0.7
    mlflow.set_tracking_uri(tracking_uri)
    path = mlflow.artifacts.download_artifacts(run_id=result.run_id,
                                               artifact_path="reports/threshold.json")
    report = json.loads(Path(path).read_text())
    assert report["strategy"] == "fpr_budget" and report["budget"] == 0.05
    assert report["threshold"] == pytest.approx(result.threshold)
    assert report["val_fpr"] <= 0.05


def test_graph_traffic_with_the_studys_rule_end_to_end(compose_cfg):
    cfg, choices = compose_cfg("dataset=graph_traffic", "model=mean_2sigma", "preprocess=raw",
                               "threshold=fixed", "threshold.value=2")
    result = run_experiment(cfg, choices)
    assert result.threshold == 2.0
    assert result.metrics["test_recall"] > 0.5
    assert "test_recall_family_node_flood" in result.metrics


@pytest.mark.slow
def test_autoencoder_detector_stops_on_val_normal_rows_and_pickles(compose_cfg):
    cfg, _ = compose_cfg("model=autoencoder", "model.estimator.epochs=3")
    model = build(cfg.model)
    X, y = _separated(300, 0)
    X_val, y_val = _separated(100, 1)
    model.fit(X, y, validation_data=(X_val, y_val))
    assert set(model.history_) >= {"loss", "val_loss"} and len(model.history_["loss"]) == 3
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.score_samples(X_val), model.score_samples(X_val),
                               rtol=1e-5)
