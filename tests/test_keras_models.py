"""Keras networks in the harness: fit with VAL early stopping, log, reload, score the same."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import bench.experiment as experiment_module
from bench.models.decision import load_decision
from bench.models.keras_nets import DFNNClassifier
from bench.models.scoring import anomaly_score

pytestmark = pytest.mark.slow


def test_autoencoder_selector_with_dfnn_runs_logs_and_reloads(compose_cfg, monkeypatch):
    cfg, choices = compose_cfg("selector=autoencoder", "selector.epochs=3", "model=dfnn",
                               "model.epochs=3")
    captured = {}
    real = experiment_module.anomaly_score

    def spy(estimator, X):
        scores = real(estimator, X)
        captured.setdefault("val", (X, scores))
        return scores

    monkeypatch.setattr(experiment_module, "anomaly_score", spy)
    result = experiment_module.run_experiment(cfg, choices, echo=lambda *_: None)
    assert 0.5 < result.metrics["test_roc_auc"] <= 1.0

    client = MlflowClient(cfg.tracking.uri)
    history = client.get_metric_history(result.run_id, "model_val_loss")
    assert [m.step for m in history] == [0, 1, 2]  # one VAL loss per epoch
    assert client.get_metric_history(result.run_id, "select_val_loss")

    mlflow.set_tracking_uri(cfg.tracking.uri)
    local = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model")
    reloaded = load_decision(Path(local) / "data" / "decision").pipeline  # .keras parts
    X_val, scores_val = captured["val"]
    np.testing.assert_allclose(anomaly_score(reloaded, X_val), scores_val, rtol=1e-6)
    assert reloaded["select"].transform(
        reloaded["preprocess"].transform(X_val.head(4))).shape == (4, 25)


def test_dfnn_early_stopping_restores_the_best_val_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8)).astype("float32")
    y = (X[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(int)
    model = DFNNClassifier(hidden_units=(16,), epochs=40, patience=2, batch_size=64,
                           learning_rate=0.05)
    model.fit(X[:400], y[:400], validation_data=(X[400:], y[400:]))
    val_loss = model.history_["val_loss"]
    assert model.n_epochs_ < 40  # stopped early on VAL loss
    best = float(np.min(val_loss))
    from sklearn.metrics import log_loss

    restored = log_loss(y[400:], model.predict_proba(X[400:])[:, 1])
    assert restored == pytest.approx(best, rel=1e-3)
