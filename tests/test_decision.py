"""The logged model is the decision: pipeline + VAL threshold, stored safely, served by MLflow."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import FunctionTransformer

from bench import tracking
from bench.errors import ConfigError
from bench.experiment import run_experiment
from bench.fitting import fit_pipeline
from bench.instantiate import build
from bench.models import decision as dm

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(compose_cfg, *overrides):
    cfg, choices = compose_cfg(*overrides)
    result = run_experiment(cfg, choices)
    return cfg, result


def _test_rows(cfg, run_id):
    """The run's TEST features (in the logged order) and its logged TEST scores."""
    mlflow.set_tracking_uri(cfg.tracking.uri)
    path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/reports/test_scores.parquet")
    logged = pd.read_parquet(path)
    dataset = build(cfg.dataset)
    return dataset.train.loc[logged.index, dataset.schema.features], logged


@pytest.fixture(scope="module")
def logreg_run(tmp_path_factory):
    """One logreg run on 2,000 synthetic rows in a module-wide store: (cfg, result)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from bench.app import CONFIG_DIR

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("config", overrides=[f"tracking.uri={uri}", "dataset.n_rows=2000",
                                           "model=logreg"], return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, run_experiment(cfg, choices)


def test_pyfunc_predict_reproduces_the_runs_test_scores_and_flags(logreg_run):
    cfg, result = logreg_run
    X_test, logged = _test_rows(cfg, result.run_id)
    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    out = model.predict(X_test)
    assert list(out.columns) == ["anomaly_score", "flag"]
    assert out["anomaly_score"].dtype == np.float64 and out["flag"].dtype == np.int64
    np.testing.assert_array_equal(out["anomaly_score"].to_numpy(), logged["anomaly_score"])
    np.testing.assert_array_equal(out["flag"].to_numpy(), logged["flag"])
    # the flags are the VAL threshold's, not the estimator's own 0.5 cut
    assert np.array_equal(out["flag"], (logged["anomaly_score"] >= result.threshold))
    meta = model.metadata
    assert [c.name for c in meta.get_output_schema().inputs] == ["anomaly_score", "flag"]
    assert [c.type.name for c in meta.get_output_schema().inputs] == ["double", "long"]
    assert meta.metadata["threshold"] == result.threshold
    assert meta.metadata["threshold_strategy"] == "best_f1"
    assert meta.metadata["run_id"] == result.run_id


def test_the_logged_model_carries_the_runs_metrics_once(logreg_run):
    """MLflow 3's Logged Models view shows a model's metrics: every metric of the run is the
    model's too, with the same value, and the run's history holds each metric once."""
    cfg, result = logreg_run
    client = mlflow.MlflowClient(cfg.tracking.uri)
    run = client.get_run(result.run_id)
    model_id = run.outputs.model_outputs[0].model_id
    model_metrics = {m.key: m.value for m in client.get_logged_model(model_id).metrics}
    assert model_metrics == pytest.approx(run.data.metrics)
    assert {"test_f1", "val_f1", "threshold"} <= set(model_metrics)
    assert len(client.get_metric_history(result.run_id, "test_f1")) == 1


def test_logged_model_has_no_pickle_and_lean_requirements(logreg_run):
    cfg, result = logreg_run
    mlflow.set_tracking_uri(cfg.tracking.uri)
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model"))
    files = {p.name for p in local.rglob("*") if p.is_file()}
    assert "pipeline.skops" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))]
    requirements = (local / "requirements.txt").read_text()
    names = {line.split("==")[0] for line in requirements.split()}
    assert {"scikit-learn", "skops", "mlflow", "pandas"} <= names
    assert not names & {"tensorflow", "keras", "optuna", "hydra-core", "xgboost"}


def test_logged_requirements_are_the_installed_versions_mlflows_check_is_back(logreg_run):
    """log_model skips MLflow's installed-vs-required check (tracking): it is redundant only
    while every pin is the installed version, and it is MLflow's own again afterwards."""
    from mlflow.utils import environment, requirements_utils

    cfg, result = logreg_run
    mlflow.set_tracking_uri(cfg.tracking.uri)
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model"))
    pins = [line for line in (local / "requirements.txt").read_text().split() if "==" in line]
    assert pins
    for pin in pins:
        name, version = pin.split("==")
        assert importlib.metadata.version(name) == version, pin
    assert (environment.warn_dependency_requirement_mismatches
            is requirements_utils.warn_dependency_requirement_mismatches)


def test_runs_record_train_val_test_as_dataset_inputs(logreg_run):
    cfg, result = logreg_run
    run = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    by_context = {}
    for item in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        by_context[tags["mlflow.data.context"]] = (item.dataset, int(tags["rows"]))
    assert set(by_context) == {"training", "validation", "test"}
    sizes = build(cfg.split)(build(cfg.dataset)).sizes()
    assert {c: n for c, (_, n) in by_context.items()} == {
        "training": sizes["train"], "validation": sizes["val"], "test": sizes["test"]}
    for dataset, n in by_context.values():
        assert json.loads(dataset.profile)["num_rows"] == n
        assert dataset.name.startswith("synthetic-")
    assert len({d.digest for d, _ in by_context.values()}) == 3


def test_logreg_model_loads_where_tensorflow_cannot_be_imported(logreg_run):
    cfg, result = logreg_run
    X_test, logged = _test_rows(cfg, result.run_id)
    path = Path(cfg.tracking.uri.removeprefix("sqlite:///")).parent / "x_test.parquet"
    X_test.to_parquet(path)
    code = ("import sys\n"
            "sys.modules['tensorflow'] = None  # any `import tensorflow` now fails\n"
            "sys.modules['keras'] = None\n"
            "import mlflow, pandas as pd\n"
            f"mlflow.set_tracking_uri({cfg.tracking.uri!r})\n"
            f"model = mlflow.pyfunc.load_model('runs:/{result.run_id}/model')\n"
            "model.predict(pd.read_parquet(sys.argv[1])).to_parquet(sys.argv[2])\n")
    out = path.with_name("out.parquet")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(path), str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_array_equal(pd.read_parquet(out)["anomaly_score"],
                                  logged["anomaly_score"].to_numpy())


# ------------------------------------------------------------------------------ safe formats
FAST_MODELS = [
    ("logreg", "none", "standard"), ("xgboost", "pca", "minmax"),
    ("random_forest", "rf_importance", "raw"), ("decision_tree", "pca_50", "standard"),
    ("adaboost", "none", "standard"), ("isolation_forest", "none", "standard"),
    ("gaussian", "none", "standard"), ("mean_2sigma", "none", "standard"),
    ("knn", "none", "standard"), ("lof", "none", "standard"),
    ("naive_bayes", "none", "standard"), ("ocsvm", "none", "standard"),
]


def _fitted(compose_cfg, *overrides):
    cfg, _ = compose_cfg(*overrides, "dataset.n_rows=600", small=False)
    dataset = build(cfg.dataset)
    splits = build(cfg.split)(dataset)
    schema = dataset.schema
    X = {k: getattr(splits, k)[schema.features] for k in ("train", "val", "test")}
    y = {k: getattr(splits, k)[schema.label].to_numpy() for k in ("train", "val", "test")}
    preprocess = build(cfg.preprocess)(categorical=list(schema.categorical),
                                       numeric=list(schema.numeric))
    pipeline, _ = fit_pipeline(preprocess, build(cfg.selector), build(cfg.model),
                               X["train"], y["train"], X["val"], y["val"])
    return pipeline, X["test"]


@pytest.mark.parametrize(("model", "selector", "preprocess"), FAST_MODELS)
def test_every_conf_pipeline_saves_with_trusted_types_and_loads_exactly(
        compose_cfg, tmp_path, model, selector, preprocess):
    pipeline, X = _fitted(compose_cfg, f"model={model}", f"selector={selector}",
                          f"preprocess={preprocess}")
    dm.save_decision(dm.Decision(pipeline, 0.5, {"strategy": "fixed"}), tmp_path)
    loaded = dm.load_decision(tmp_path)
    np.testing.assert_array_equal(loaded.score(X), dm.anomaly_score(pipeline, X))
    if model == "xgboost":  # its trees are in xgboost's own format, not in the skops file
        assert list((tmp_path / "parts").glob("*.ubj"))


@pytest.mark.slow
def test_keras_parts_are_stored_as_keras_files(compose_cfg, tmp_path):
    pipeline, X = _fitted(compose_cfg, "model=dfnn", "model.epochs=1", "selector=autoencoder",
                          "selector.epochs=1")
    dm.save_decision(dm.Decision(pipeline, 0.5), tmp_path)
    assert len(list((tmp_path / "parts").glob("*.keras"))) == 3  # dfnn, autoencoder, encoder
    np.testing.assert_array_equal(dm.load_decision(tmp_path).score(X),
                                  dm.anomaly_score(pipeline, X))


class _Custom(TransformerMixin, BaseEstimator):
    """A user's own estimator: skops can store it, but bench does not trust it."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


class _Payload:
    """Unpickling this runs os.system: what a tampered model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _saved_logreg(compose_cfg, folder: Path) -> pd.DataFrame:
    pipeline, X = _fitted(compose_cfg, "model=logreg")
    dm.save_decision(dm.Decision(pipeline, 0.5), folder)
    return X


def test_pickle_swapped_for_the_skops_file_is_refused_without_running_it(compose_cfg,
                                                                          tmp_path):
    folder, marker = tmp_path / "model", tmp_path / "pwned"
    _saved_logreg(compose_cfg, folder)
    (folder / dm.SKOPS_FILE).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(dm.UnsafeModelError, match="not a readable skops file"):
        dm.load_decision(folder)
    with pytest.raises(dm.UnsafeModelError):  # through MLflow's loader too
        dm._load_pyfunc(str(folder))
    assert not marker.exists()


def test_skops_file_naming_an_untrusted_callable_is_refused(compose_cfg, tmp_path):
    folder = tmp_path / "model"
    _saved_logreg(compose_cfg, folder)
    (folder / dm.SKOPS_FILE).write_bytes(skops.io.dumps(FunctionTransformer(func=os.system)))
    with pytest.raises(dm.UnsafeModelError, match=r"refused to load: type '(posix|os)\.system'"):
        dm.load_decision(folder)


def test_decision_file_switched_to_pickle_needs_unsafe(compose_cfg, tmp_path):
    folder, marker = tmp_path / "model", tmp_path / "pwned"
    _saved_logreg(compose_cfg, folder)
    meta = json.loads((folder / dm.DECISION_FILE).read_text())
    (folder / dm.DECISION_FILE).write_text(json.dumps({**meta, "format": "cloudpickle"}))
    (folder / dm.PICKLE_FILE).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(dm.UnsafeModelError, match="unsafe=true"):
        dm.load_decision(folder)
    assert not marker.exists()


def test_a_decision_file_with_a_non_finite_threshold_or_bad_batch_rows_is_refused(
        compose_cfg, tmp_path):
    """NaN flagged no row and -Infinity every row, silently; batch_rows=-5 was a traceback."""
    folder = tmp_path / "model"
    _saved_logreg(compose_cfg, folder)
    meta = json.loads((folder / dm.DECISION_FILE).read_text())
    for change, expected in (({"threshold": "NaN"}, "not a finite number"),
                             ({"threshold": "-Infinity"}, "not a finite number"),
                             ({"batch_rows": -5}, "batch_rows -5"),
                             ({"batch_rows": "abc"}, "batch_rows 'abc'")):
        (folder / dm.DECISION_FILE).write_text(json.dumps({**meta, **change}))
        with pytest.raises(dm.UnsafeModelError, match=expected):
            dm.load_decision(folder)


def test_model_files_may_name_only_files_inside_the_model_folder(tmp_path):
    """A tampered MLmodel `data:` or a part's file name pointing elsewhere is refused."""
    folder = tmp_path / "model"
    folder.mkdir()
    assert dm.inside(folder, "data/decision", "data") == (folder / "data/decision").resolve()
    for name in ("../elsewhere", "/etc/passwd", "data/../../x", None, ""):
        with pytest.raises(dm.UnsafeModelError):
            dm.inside(folder, name, "data")


def test_cloudpickle_format_is_an_explicit_opt_in(compose_cfg, tmp_path):
    pipeline, X = _fitted(compose_cfg, "model=logreg")
    dm.save_decision(dm.Decision(pipeline, 0.5), tmp_path, model_format="cloudpickle")
    with pytest.raises(dm.UnsafeModelError):
        dm.load_decision(tmp_path)
    np.testing.assert_array_equal(dm.load_decision(tmp_path, unsafe=True).score(X),
                                  dm.anomaly_score(pipeline, X))


def test_untrusted_estimator_cannot_be_saved_as_skops(compose_cfg, tmp_path):
    pipeline, _ = _fitted(compose_cfg, "model=logreg")
    pipeline.steps.insert(-1, ("extra", _Custom()))
    with pytest.raises(dm.UnsafeModelError, match="model_format=cloudpickle"):
        dm.save_decision(dm.Decision(pipeline, 0.5), tmp_path)


# ------------------------------------------------------------------------------ registry
def test_register_best_uses_a_val_metric_and_sets_the_alias(compose_cfg):
    cfg, first = _run(compose_cfg, "model=logreg")
    _, second = _run(compose_cfg, "model=naive_bayes")
    with pytest.raises(ConfigError, match="VAL"):
        tracking.register_best(cfg.tracking.uri, "synthetic", "test_f1")
    chosen = tracking.register_best(cfg.tracking.uri, "synthetic", "val_pr_auc")
    best = max((first, second), key=lambda r: r.metrics["val_pr_auc"])
    assert chosen["run_id"] == best.run_id
    version = MlflowClient(cfg.tracking.uri).get_model_version_by_alias("bench-synthetic",
                                                                          "champion")
    assert version.run_id == best.run_id and "val_pr_auc" in version.description


def test_register_from_another_folder_with_tracking_uri_picks_the_lowest_fpr(
        compose_cfg, tmp_path):
    """`python -m bench.register --tracking-uri` registers from its store wherever it runs (it
    looked the model up in ./mlflow.db, failed and left that file and an empty model); a
    lower-is-better metric picks the lowest value; registering again adds no version; a
    reserved alias or a name MLflow refuses fails before the registry is written."""
    cfg, first = _run(compose_cfg, "model=logreg")
    _, second = _run(compose_cfg, "model=naive_bayes")
    mlflow.set_tracking_uri("sqlite:///" + str(tmp_path / "elsewhere.db"))  # not the store
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def register(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bench.register", "--dataset",
                               "synthetic", "--tracking-uri", cfg.tracking.uri, *args],
                              cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=300, check=False)

    result = register("--metric", "val_fpr", "--alias", "lowfpr")
    assert result.returncode == 0, result.stderr[-3000:]
    best = min((first, second), key=lambda r: r.metrics["val_fpr"])
    client = MlflowClient(cfg.tracking.uri)
    version = client.get_model_version_by_alias("bench-synthetic", "lowfpr")
    assert version.run_id == best.run_id
    assert list(elsewhere.iterdir()) == []  # no stray store
    assert register("--metric", "val_fpr", "--alias", "lowfpr").returncode == 0
    for args, expected in ((["--alias", "latest"], "reserves"),
                           (["--alias", "a b"], "--alias 'a b'"),
                           (["--name", "a/b"], "--name 'a/b'"),
                           (["--experiment", "nope"], "no such experiment")):
        result = register(*args)
        assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    versions = client.search_model_versions("name='bench-synthetic'")
    assert [v.version for v in versions] == [version.version]  # nothing added by the above
    assert "nope" not in tracking.experiments(cfg.tracking.uri)


# ------------------------------------------------------------------------------ serving
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_score_and_flag(logreg_run):
    cfg, result = logreg_run
    X_test, logged = _test_rows(cfg, result.run_id)
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_TRACKING_URI": cfg.tracking.uri, "PYTHONPATH": str(REPO_ROOT),
           "PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # uvicorn
    server = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", f"runs:/{result.run_id}/model",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = json.dumps({"dataframe_split": json.loads(
            X_test.head(20).to_json(orient="split", index=False))}).encode()
        answer = None
        deadline = time.monotonic() + 180
        while answer is None and time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", data=body,
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert answer is not None, "the server did not answer within 180 s"
        rows = pd.DataFrame(answer["predictions"])
        np.testing.assert_array_equal(rows["anomaly_score"],
                                      logged["anomaly_score"].head(20).to_numpy())
        np.testing.assert_array_equal(rows["flag"], logged["flag"].head(20).to_numpy())
    finally:
        server.terminate()
        server.wait(timeout=30)
