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
    result = experiment_module.run_experiment(cfg, choices)
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


def _toy(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype("float32")
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)


def test_dfnn_min_delta_counts_only_large_enough_improvements():
    X, y = _toy()
    # no epoch lowers VAL loss by 10: the first epoch stays the best, training stops after
    # `patience` more epochs and the first epoch's weights come back
    model = DFNNClassifier(hidden_units=(16,), epochs=20, patience=2, min_delta=10.0,
                           batch_size=64, learning_rate=0.05)
    model.fit(X[:400], y[:400], validation_data=(X[400:], y[400:]))
    assert model.n_epochs_ == 3
    assert model.history_["val_loss"][1] < model.history_["val_loss"][0]  # it did improve
    from sklearn.metrics import log_loss

    restored = log_loss(y[400:], model.predict_proba(X[400:])[:, 1])
    assert restored == pytest.approx(model.history_["val_loss"][0], rel=1e-3)


def test_dfnn_steps_per_execution_changes_speed_not_training():
    X, y = _toy()
    histories = []
    for steps in (1, 4):
        model = DFNNClassifier(hidden_units=(16,), epochs=3, patience=3, batch_size=64,
                               steps_per_execution=steps, random_state=1)
        model.fit(X[:400], y[:400], validation_data=(X[400:], y[400:]))
        histories.append(model.history_["val_loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4)


def test_dfnn_default_is_the_thesis_architecture_and_the_preset_the_thesis_setting(
        compose_cfg):
    from bench.instantiate import build

    architecture = {"hidden_units": [128, 64], "batch_norm": True, "dropout": 0.3,
                    "activation": "relu", "class_weight": "balanced"}
    default = build(compose_cfg("model=dfnn")[0].model)
    thesis = build(compose_cfg("experiment=unsw_dfnn", small=False)[0].model)
    for model in (default, thesis):
        assert {k: model.get_params()[k] for k in architecture} == architecture
    assert {k: thesis.get_params()[k] for k in ("batch_size", "learning_rate", "epochs",
                                                "patience", "min_delta",
                                                "steps_per_execution")} == {
        "batch_size": 32, "learning_rate": 1e-3, "epochs": 50, "patience": 5,
        "min_delta": 0.0, "steps_per_execution": 1}
    # the YAML and the class agree on the fast defaults (python and CLI users get the same)
    assert default.get_params() | {"random_state": 0} == DFNNClassifier().get_params() | {
        "hidden_units": [128, 64], "random_state": 0}


def test_nothing_in_bench_hides_a_gpu_from_keras():
    from pathlib import Path

    import bench

    forcing = ("CUDA_VISIBLE_DEVICES", "set_visible_devices", "/CPU:0", "/cpu:0")
    # the one mention allowed: a user may choose devices with hydra.job.env_set
    allowed = '"CUDA_VISIBLE_DEVICES": r"-1|[0-9]+(,[0-9]+)*|",'
    root = Path(bench.__file__).parent
    offenders = [f"{path.relative_to(root)}: {word}" for path in root.rglob("*.py")
                 for word in forcing if word in path.read_text().replace(allowed, "")]
    assert offenders == []


def test_the_activation_list_validation_uses_is_keras_own():
    """bench.validate checks `activation` against KERAS_ACTIVATIONS without importing Keras."""
    from keras.src.activations import ALL_OBJECTS_DICT

    from bench.validate import KERAS_ACTIVATIONS

    assert set(KERAS_ACTIVATIONS) == set(ALL_OBJECTS_DICT)
