"""What a run leaves in MLflow: params, tags, metrics, artifacts, a reloadable model, status."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from bench.errors import ConfigError, TrackingError
from bench.experiment import run_experiment
from bench.tracking import config_id, flatten, preflight


def test_run_records_params_tags_metrics_and_artifacts(compose_cfg):
    cfg, choices = compose_cfg("model=random_forest", "model.n_estimators=20")
    result = run_experiment(cfg, choices)
    client = MlflowClient(cfg.tracking.uri)
    run = client.get_run(result.run_id)

    assert run.info.status == "FINISHED"
    assert run.info.run_name == "synthetic/none/random_forest/s0"
    assert client.get_experiment(run.info.experiment_id).name == "synthetic"
    assert run.data.params["model.n_estimators"] == "20"
    # readable params: option names, no class paths, no machine paths, no Hydra internals
    assert run.data.params["split"] == "stratified" and run.data.params["model"] == "random_forest"
    assert not [k for k in run.data.params if k.endswith("_target_") or k.startswith(
        ("hydra.", "paths.", "tracking.uri"))]
    assert not [v for v in run.data.params.values() if v.startswith("/")]
    # audit counts are tags (and reports/data_audit.json), not metric charts
    assert not [m for m in run.data.metrics if m.startswith("audit")]
    assert run.data.tags["audit.dropped_declared"] == "2"
    for tag in ("dataset", "selector", "model", "seed", "git_commit", "config_id",
                "version.scikit-learn", "version.mlflow"):
        assert tag in run.data.tags, tag
    for split in ("val", "test"):
        for metric in ("precision", "recall", "f1", "roc_auc", "pr_auc", "fpr"):
            assert f"{split}_{metric}" in run.data.metrics
    for metric in ("fit_seconds", "score_rows_per_second", "latency_per_row_p99_seconds",
                   "test_recall_family_flood", "test_fpr_family_normal", "threshold"):
        assert metric in run.data.metrics, metric
    artifacts = {a.path for folder in ("plots", "reports", "config", "model")
                 for a in client.list_artifacts(result.run_id, folder)}
    for path in ("plots/confusion_matrix_test.png", "plots/roc.png",
                 "plots/precision_recall.png", "plots/threshold_curve_val.png",
                 "reports/classification_report_test.txt", "reports/data_audit.json",
                 "config/resolved.yaml"):
        assert path in artifacts, path


def test_logged_model_reloads_and_reproduces_scores(compose_cfg):
    cfg, choices = compose_cfg("selector=pca", "selector.n_components=5", "model=logreg")
    captured = {}

    import bench.experiment as experiment_module

    real = experiment_module.anomaly_score

    def spy(estimator, X):
        scores = real(estimator, X)
        captured.setdefault("first", (X, scores))  # the VAL scoring call
        return scores

    experiment_module.anomaly_score = spy
    try:
        result = run_experiment(cfg, choices)
    finally:
        experiment_module.anomaly_score = real
    mlflow.set_tracking_uri(cfg.tracking.uri)
    X_val, scores_val = captured["first"]
    # the pyfunc model (the decision, docs/models.md) gives the scores and VAL-threshold flags
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    out = pyfunc.predict(X_val)
    np.testing.assert_array_equal(out["anomaly_score"], scores_val)
    np.testing.assert_array_equal(out["flag"], scores_val >= result.threshold)


def test_a_crashing_model_leaves_a_failed_run_with_its_traceback(compose_cfg):
    cfg, choices = compose_cfg("model=logreg", "model.C=-1.0")  # sklearn rejects C <= 0
    with pytest.raises(ConfigError, match=r"model: LogisticRegression .*'C' parameter"):
        run_experiment(cfg, choices)  # scikit-learn's refusal, told as the user's setting
    client = MlflowClient(cfg.tracking.uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    assert runs[0].info.status == "FAILED"
    assert "C" in runs[0].data.tags["error"]
    mlflow.set_tracking_uri(cfg.tracking.uri)
    traceback_text = mlflow.artifacts.load_text(
        f"runs:/{runs[0].info.run_id}/error/traceback.txt")
    assert "Traceback" in traceback_text and "InvalidParameterError" in traceback_text


def test_unreachable_tracking_server_fails_before_training():
    with pytest.raises(TrackingError, match="cannot reach"):
        preflight("http://127.0.0.1:9", timeout_s=2)


def test_config_id_ignores_seed_and_tracking_but_not_the_model():
    base = {"seed": 0, "model": {"_target_": "x", "random_state": "${seed}"},
            "tracking": {"uri": "a"}}
    choices = {"model": "xgboost", "hydra/launcher": "basic"}
    same = {**base, "seed": 7, "tracking": {"uri": "b"}}
    other = {**base, "model": {"_target_": "y", "random_state": "${seed}"}}
    assert config_id(base, choices) == config_id(same, choices)
    assert config_id(base, choices) != config_id(other, choices)
    assert config_id(base, choices) != config_id(base, {**choices, "model": "logreg"})


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1, "a.c.d": [1, 2], "e": {}}


def test_a_deleted_experiment_is_one_line_naming_it_and_how_to_restore_it(tracking_uri):
    """MLflow starts no run in a deleted experiment, nor creates another of its name: its
    MlflowException came from deep inside a run (or after bench.report wrote its folder)."""
    from bench import tracking

    preflight(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("gone")
    client.delete_experiment(experiment_id)
    with pytest.raises(TrackingError, match=rf"experiment 'gone': the experiment is deleted "
                       rf".*restore it with `mlflow experiments restore --experiment-id "
                       rf"{experiment_id}`"):
        tracking.get_or_create_experiment(tracking_uri, "gone")
    with pytest.raises(ConfigError, match=r"^tracking\.experiment 'gone': the experiment is del"):
        tracking.check_experiment(tracking_uri, "gone", "tracking.experiment")
    with pytest.raises(ConfigError, match=r"^--report-experiment '': Invalid experiment name"):
        tracking.check_experiment(None, "", "--report-experiment")
    tracking.check_experiment(tracking_uri, "new", "--report-experiment")  # created later
    assert client.get_experiment_by_name("new") is None
    client.restore_experiment(experiment_id)
    assert tracking.get_or_create_experiment(tracking_uri, "gone") == experiment_id
