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
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

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


# ------------------------------------------------------------------------------ damaged files
def _one_line_naming(error: pytest.ExceptionInfo, path: Path) -> str:
    """The refusal's message: one line, naming `path`, no library stack trace."""
    message = str(error.value)
    assert "\n" not in message and "Stack trace" not in message, message
    assert str(path) in message, message
    return message


def test_a_skops_file_of_trusted_objects_that_are_not_a_bench_pipeline_is_refused(
        compose_cfg, tmp_path):
    """skops' trusted loading accepts an array, a dict, a scaler alone, an unfitted or
    scoreless Pipeline: each was built, then failed in scoring with a traceback."""
    folder = tmp_path / "model"
    X = _saved_logreg(compose_cfg, folder)
    fitted = LogisticRegression().fit(np.random.default_rng(0).random((10, 2)), [0, 1] * 5)
    scaler = StandardScaler().fit(np.ones((3, 2)))
    for value, expected in (
            (np.arange(3), "numpy.ndarray"), ({"steps": []}, "builtins.dict"),
            ([1, 2], "builtins.list"), (None, "NoneType"), ("pipeline", "builtins.str"),
            (scaler, "StandardScaler, not a sklearn.pipeline.Pipeline"),
            (fitted, "LogisticRegression, not a sklearn.pipeline.Pipeline"),
            (dm.ExternalPart("xgboost", "parts/0.ubj"), "ExternalPart"),
            (Pipeline([("scale", scaler)]), "gives no anomaly score"),
            (Pipeline([("scale", LogisticRegression()), ("model", fitted)]),
             "does not transform"),
            (Pipeline([("model", LogisticRegression())]), "not fitted")):
        (folder / dm.SKOPS_FILE).write_bytes(skops.io.dumps(value))
        with pytest.raises(dm.UnsafeModelError) as error:
            dm.load_decision(folder)
        message = _one_line_naming(error, folder / dm.SKOPS_FILE)
        assert "not a pipeline bench writes" in message and expected in message, message
    pipeline, _ = _fitted(compose_cfg, "model=logreg")  # the real one loads again
    (folder / dm.SKOPS_FILE).write_bytes(skops.io.dumps(pipeline))
    assert len(dm.load_decision(folder).score(X)) == len(X)


def test_damaged_xgboost_parts_are_one_error_naming_the_part(compose_cfg, tmp_path):
    """Every way parts/0.ubj can be wrong (it was xgboost's traceback with a C++ stack)."""
    import xgboost

    folder = tmp_path / "model"
    pipeline, X = _fitted(compose_cfg, "model=xgboost")
    dm.save_decision(dm.Decision(pipeline, 0.5), folder)
    part = folder / "parts" / "0.ubj"
    original = part.read_bytes()
    rng = np.random.default_rng(0)

    def booster(params: dict, features: int, labels: np.ndarray) -> bytes:
        model = xgboost.train(params, xgboost.DMatrix(rng.random((30, features)),
                                                      label=labels), 2)
        return bytes(model.save_raw("ubj"))

    n_features = pipeline[-1].get_booster().num_features()
    cases = [
        (b"", "is empty"), (original[: len(original) // 2], "not a readable xgboost"),
        (rng.bytes(4000), "not a readable xgboost"),
        (b'{"learner": 1}', "not a readable xgboost"),
        ((folder / dm.SKOPS_FILE).read_bytes(), "not a readable xgboost"),  # another kind
        (bytes(pipeline[-1].get_booster().save_raw("json")), "not a readable xgboost"),
        (booster({"objective": "reg:squarederror"}, n_features, rng.random(30)),
         "objective 'reg:squarederror'"),
        (booster({"objective": "binary:logistic"}, 3, rng.integers(0, 2, 30)),
         "of 3 features"),
        (None, "is missing"), ("folder", "is not a file")]
    for data, expected in cases:
        if part.is_dir():
            part.rmdir()
        part.unlink(missing_ok=True)
        if data == "folder":
            part.mkdir()
        elif data is not None:
            part.write_bytes(data)
        with pytest.raises(dm.UnsafeModelError) as error:
            dm.load_decision(folder)
        assert expected in _one_line_naming(error, part)
    part.rmdir()
    part.write_bytes(original)
    np.testing.assert_array_equal(dm.load_decision(folder).score(X),
                                  dm.anomaly_score(pipeline, X))


def _with_keras_marker(compose_cfg, folder: Path) -> Path:
    """A saved logreg decision whose estimator holds a marker of a Keras part (as a Keras
    step does); returns the part's path (not written)."""
    pipeline, _ = _fitted(compose_cfg, "model=logreg")
    pipeline[-1].net_ = dm.ExternalPart("keras", "parts/0.keras")
    dm.save_decision(dm.Decision(pipeline, 0.5), folder)
    (folder / "parts").mkdir()
    return folder / "parts" / "0.keras"


def test_damaged_keras_parts_are_one_error_naming_the_part(compose_cfg, tmp_path):
    """Checked before Keras is imported (Keras said "File not found" for a file that is not
    a zip archive, and raised KeyError for one without its config)."""
    import io
    import zipfile

    part = _with_keras_marker(compose_cfg, tmp_path / "model")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("notes.txt", "not a model")
    for data, expected in ((None, "is missing"), (b"", "is empty"),
                           (os.urandom(2000), "not a .keras zip archive"),
                           (archive.getvalue(), "without config.json"),
                           (archive.getvalue()[:40], "not a .keras zip archive")):
        part.unlink(missing_ok=True)
        if data is not None:
            part.write_bytes(data)
        with pytest.raises(dm.UnsafeModelError) as error:
            dm.load_decision(part.parent.parent)
        assert expected in _one_line_naming(error, part)


@pytest.mark.slow
def test_a_keras_part_that_keras_refuses_is_one_error_naming_the_part(compose_cfg, tmp_path):
    import zipfile

    part = _with_keras_marker(compose_cfg, tmp_path / "model")
    with zipfile.ZipFile(part, "w") as handle:
        handle.writestr("config.json", '{"class_name": "Nothing", "config": {}}')
        handle.writestr("metadata.json", "{}")
    with pytest.raises(dm.UnsafeModelError) as error:
        dm.load_decision(part.parent.parent)
    assert "not a readable keras model file" in _one_line_naming(error, part)


def test_a_part_marker_of_the_wrong_kind_or_place_is_refused(compose_cfg, tmp_path):
    folder = tmp_path / "model"
    pipeline, _ = _fitted(compose_cfg, "model=logreg")
    pipeline[-1].booster_ = dm.ExternalPart("xgboost", "parts/0.ubj")  # not in an XGBClassifier
    dm.save_decision(dm.Decision(pipeline, 0.5), folder)
    with pytest.raises(dm.UnsafeModelError) as error:
        dm.load_decision(folder)
    assert "where bench puts none" in _one_line_naming(error, folder / dm.SKOPS_FILE)
    del pipeline[-1].booster_
    pipeline[-1].extra_ = [dm.ExternalPart("keras", "parts/0.keras")]  # in a list
    (folder / dm.SKOPS_FILE).write_bytes(skops.io.dumps(pipeline))
    with pytest.raises(dm.UnsafeModelError) as error:
        dm.load_decision(folder)
    assert "where bench puts none" in _one_line_naming(error, folder / dm.SKOPS_FILE)
    pipeline[-1].extra_ = dm.ExternalPart("onnx", "parts/0.onnx")
    (folder / dm.SKOPS_FILE).write_bytes(skops.io.dumps(pipeline))
    with pytest.raises(dm.UnsafeModelError, match="unknown part kind 'onnx'"):
        dm.load_decision(folder)


def test_a_damaged_decision_file_or_pipeline_file_is_one_error_naming_it(compose_cfg,
                                                                           tmp_path):
    folder = tmp_path / "model"
    _saved_logreg(compose_cfg, folder)
    meta_file, skops_file = folder / dm.DECISION_FILE, folder / dm.SKOPS_FILE
    meta = json.loads(meta_file.read_text())
    for data, expected in ((b"", "is empty"), (b"[1, 2]", "a JSON list"),
                           (b'"threshold"', "a JSON str"), (b"\xff\xfe{", "not a bench"),
                           (b'{"threshold": 0.5', "not a bench decision file"),
                           (b'{"format": "skops"}', "threshold 'missing'"),
                           (json.dumps({**meta, "format": "onnx"}).encode(),
                            "format 'onnx' is not one bench writes")):
        meta_file.write_bytes(data)
        with pytest.raises(dm.UnsafeModelError) as error:
            dm.load_decision(folder)
        assert expected in _one_line_naming(error, meta_file)
    meta_file.write_text(json.dumps(meta))
    original = skops_file.read_bytes()
    for data, expected in ((None, "is missing"), (b"", "is empty"),
                           (original[: len(original) // 2], "not a readable skops file")):
        skops_file.unlink(missing_ok=True)
        if data is not None:
            skops_file.write_bytes(data)
        with pytest.raises(dm.UnsafeModelError) as error:
            dm.load_decision(folder)
        assert expected in _one_line_naming(error, skops_file)


def test_a_damaged_or_foreign_pickle_is_refused_even_with_unsafe(compose_cfg, tmp_path):
    pipeline, _ = _fitted(compose_cfg, "model=logreg")
    dm.save_decision(dm.Decision(pipeline, 0.5), tmp_path, model_format="cloudpickle")
    path = tmp_path / dm.PICKLE_FILE
    for data, expected in ((path.read_bytes()[:100], "not a readable pickle"),
                           (pickle.dumps({"a": 1}), "builtins.dict"), (b"", "is empty")):
        path.write_bytes(data)
        with pytest.raises(dm.UnsafeModelError) as error:
            dm.load_decision(tmp_path, unsafe=True)
        assert expected in _one_line_naming(error, path)


@pytest.fixture(scope="module")
def logged_xgboost(tmp_path_factory):
    """An xgboost decision logged as the model of a run in its own store, without running an
    experiment: (uri, run id, the decision folder in the artifact store, a CSV of rows)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from bench.app import CONFIG_DIR

    folder = tmp_path_factory.mktemp("logged")
    uri = f"sqlite:///{folder / 'mlflow.db'}"

    def compose_cfg(*overrides, small=True):
        with initialize_config_dir(config_dir=CONFIG_DIR):
            cfg = compose("config", overrides=[f"tracking.uri={uri}", *overrides],
                          return_hydra_config=True)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg, {}

    pipeline, X = _fitted(compose_cfg, "model=xgboost")
    tracking.preflight(uri)
    with tracking.tracked_run(uri, "decisions", "xgboost", {}) as run:
        tracking.log_model(tracking.prepare_model(pipeline, X.head(5), 0.5,
                                                  {"dataset": "synthetic"}))
    rows = folder / "rows.csv"
    X.head(50).to_csv(rows, index=False)
    decision = next((folder / "artifacts").rglob(dm.DECISION_FILE)).parent
    return uri, run.info.run_id, decision, rows


def test_bench_score_with_a_damaged_logged_model_is_one_line_and_writes_nothing(
        logged_xgboost, tmp_path, capsys):
    from bench.score import main as score_main

    uri, run_id, decision, rows = logged_xgboost
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()

    def score() -> int:
        return score_main([f"tracking.uri={uri}", f"run={run_id}", f"input={rows}",
                           f"output={out}", "log=true", "experiment=damaged-scoring"])

    ubj = (decision / "parts" / "0.ubj").read_bytes()
    cases = [("parts/0.ubj", b""), ("parts/0.ubj", ubj[:1000]),
             ("parts/0.ubj", np.random.default_rng(0).bytes(3000)),
             ("parts/0.ubj", b'{"learner": {}}'),
             (dm.SKOPS_FILE, skops.io.dumps(np.arange(3))),
             (dm.SKOPS_FILE, skops.io.dumps(StandardScaler().fit(np.ones((3, 2))))),
             (dm.SKOPS_FILE, skops.io.dumps({"model": "xgboost"})),
             (dm.DECISION_FILE, b"[]")]
    for name, data in cases:
        path = decision / name
        original = path.read_bytes()
        path.write_bytes(data)
        try:
            code = score()
        finally:
            path.write_bytes(original)
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
        assert name in errors[0] and run_id in errors[0], errors[0]
        assert list(out.parent.iterdir()) == []  # no output, no temporary file
    assert MlflowClient(uri).get_experiment_by_name("damaged-scoring") is None  # no run
    assert score() == 0 and out.exists()  # the restored model scores


# ------------------------------------------------------------------------------ registry
def test_register_best_uses_a_val_metric_and_sets_the_alias(compose_cfg):
    cfg, first = _run(compose_cfg, "model=logreg")
    _, second = _run(compose_cfg, "model=naive_bayes")
    with pytest.raises(ConfigError, match="VAL"):
        tracking.register_best(cfg.tracking.uri, "synthetic", "test_f1")
    chosen = tracking.register_best(cfg.tracking.uri, "synthetic", "val_pr_auc")
    best = max((first, second), key=lambda r: r.metrics["val_pr_auc"])
    assert chosen["run_id"] == best.run_id
    client = MlflowClient(cfg.tracking.uri)
    version = client.get_model_version_by_alias("bench-synthetic", "champion")
    assert version.run_id == best.run_id and "val_pr_auc" in version.description
    # a registration killed between its two writes left a version of the other run without
    # the alias: registering that run completes it, with no second version of the run
    other = first if best is second else second
    orphan = client.create_model_version("bench-synthetic", f"runs:/{other.run_id}/model",
                                         run_id=other.run_id)
    chosen = tracking.register_run(cfg.tracking.uri, other.run_id, "bench-synthetic",
                                   "champion", "again", "val_pr_auc")
    assert chosen["version"] == orphan.version
    assert client.get_model_version_by_alias("bench-synthetic", "champion").run_id == (
        other.run_id)
    versions = client.search_model_versions("name='bench-synthetic'")
    assert sorted(v.run_id for v in versions) == sorted([best.run_id, other.run_id])


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
