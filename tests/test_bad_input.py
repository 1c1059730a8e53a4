"""A corpus of bad input, run as a user runs bench: each case one subprocess in a fresh folder.

Each asserts the exit code, one `error: ...` line naming the key/value or the file/line/column,
no traceback, and no MLflow run (every mistake here is knowable before a run is created).
Security cases also assert that the payload (creating a marker file) never ran.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.data.snmp_mib import COUNTERS

MARKER = "PWNED"


def _run(tmp_path: Path, module: str, *args: str, timeout: int = 120
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _assert_refused(result: subprocess.CompletedProcess, tmp_path: Path, expected: list[str],
                    code: int = 2) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Error executing job" not in result.stderr  # Hydra's line before bench's
    for text in expected:
        assert text in errors[0], (text, errors[0])
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was created
    assert not (tmp_path / MARKER).exists()  # no payload ran


# ------------------------------------------------------------------------------ config keys
CONFIG_CASES = [
    (["seed=abc"], ["seed='abc'", "integer"]),
    (["seed=-1"], ["seed=-1", "integer"]),
    (["seed=1.5"], ["seed=1.5"]),
    (["model=logreg", "model.C=abc"], ["model.C='abc'", "LogisticRegression"]),
    (["model=logreg", "model.C=-1"], ["model.C=-1", "(0.0, inf"]),
    (["model=logreg", "model.max_iter=-1"], ["model.max_iter=-1"]),
    (["model.n_estimators=-5"], ["model.n_estimators=-5", "[1, inf]"]),
    (["model.max_depth=-1"], ["model.max_depth=-1"]),
    (["model.learning_rate=0"], ["model.learning_rate=0"]),
    (["model.subsample=1.5"], ["model.subsample=1.5"]),
    (["model.colsample_bytree=0"], ["model.colsample_bytree=0"]),
    (["model.n_estimators=abc"], ["model.n_estimators='abc'"]),
    (["model=random_forest", "model.n_estimators=0"], ["model.n_estimators=0"]),
    (["model=random_forest", "model.min_samples_leaf=0"], ["model.min_samples_leaf=0"]),
    (["model=knn", "model.n_neighbors=0"], ["model.n_neighbors=0"]),
    (["model=knn", "model.weights=heavy"], ["model.weights='heavy'"]),
    (["model=decision_tree", "model.criterion=best"], ["model.criterion='best'"]),
    (["model=isolation_forest", "model.estimator.n_estimators=0"],
     ["model.estimator.n_estimators=0", "IsolationForest"]),
    (["model=ocsvm", "model.estimator.nu=2"], ["model.estimator.nu=2"]),
    (["model=gaussian", "model.fit_on=some"], ["model.fit_on='some'", "normal"]),
    (["model=gaussian", "model.estimator.covariance_type=tied"],
     ["model.estimator.covariance_type='tied'"]),
    (["model=lof", "model.max_rows=1"], ["model.max_rows=1"]),
    (["model=dfnn", "model.epochs=0"], ["model.epochs=0"]),
    (["model=dfnn", "model.batch_size=0"], ["model.batch_size=0"]),
    (["model=dfnn", "model.dropout=1.0"], ["model.dropout=1.0"]),
    (["model=dfnn", "model.hidden_units=[0,4]"], ["model.hidden_units=[0, 4]"]),
    (["model=dbscan", "model.estimator.eps=0"], ["model.estimator.eps=0"]),
    (["selector=pca", "selector.n_components=0"], ["selector.n_components=0"]),
    (["selector=rf_importance", "selector.k=0"], ["selector.k=0"]),
    (["selector=rf_importance", "selector.n_estimators=-3"], ["selector.n_estimators=-3"]),
    (["selector=autoencoder", "selector.encoder_units=[]"], ["selector.encoder_units=[]"]),
    (["preprocess.log1p=maybe"], ["preprocess.log1p='maybe'"]),
    (["preprocess.min_frequency=0"], ["preprocess.min_frequency=0"]),
    (["threshold=fpr_budget", "threshold.budget=-1"], ["threshold.budget=-1", "(0, 1)"]),
    (["threshold=fpr_budget", "threshold.budget=2"], ["threshold.budget=2"]),
    (["threshold=fpr_budget", "threshold.budget=abc"], ["threshold.budget='abc'"]),
    (["threshold=quantile", "threshold.share=0"], ["threshold.share=0"]),
    (["threshold=fixed"], ["threshold.value=None", "exactly one"]),
    (["threshold=fixed", "threshold.epsilon=-1"], ["threshold.epsilon=-1"]),
    (["threshold=fixed", "threshold.value=1", "threshold.epsilon=0.1"], ["exactly one"]),
    (["split.val_size=0"], ["split.val_size=0"]),
    (["split.test_size=1.5"], ["split.test_size=1.5"]),
    (["split=blocked", "split.per_class=maybe"], ["split.per_class='maybe'"]),
    (["split=by_time", "split.unit=parsecs"], ["split.unit='parsecs'", "'ms'"]),
    (["split=by_file", "split.val_size=7"], ["split.val_size=7"]),
    (["dataset.n_rows=abc"], ["dataset.n_rows='abc'"]),
    (["dataset.attack_share=0"], ["dataset.attack_share=0"]),
    (["dataset=snmp_mib", "dataset.verify=sometimes"], ["dataset.verify='sometimes'"]),
    (["evaluation.latency_batch_rows=0"], ["evaluation.latency_batch_rows=0"]),
    (["audit.drop_test_duplicates=maybe"], ["audit.drop_test_duplicates='maybe'"]),
    (["optimized_metric=test_f1"], ["test_f1", "TEST metric"]),
    (["optimized_metric=accuracy"], ["accuracy", "VAL metric"]),
    (["model=xgbost"], ["model/xgbost", "xgboost"]),
    (["model.n_estimatrs=5"], ["unknown key 'model.n_estimatrs'", "n_estimators"]),
    (["seed=[1,2"], ["seed=[1,2"]),
    (["seed=${nowhere}"], ["seed", "nowhere"]),
    (["tracking.uri=sqlite:///README/mlflow.db"], ["tracking.uri=", "is a file"]),
    (["tracking.uri=mlruns"], ["tracking.uri=mlruns", "folder store", "sqlite:///"]),
    (["tracking.uri=file:///tmp/mlruns"], ["tracking.uri=file:///tmp/mlruns", "folder store"]),
    (["tracking.uri=sqlit:///mlflow.db"], ["scheme 'sqlit'"]),
    (["-m", "model=logreg", "model.C=1,abc"], ["model.C='abc'"]),
    (["-m", "seed=0,abc"], ["seed='abc'"]),
    (["-m", "hparams_search=dfnn_optuna", "model.epochs=0"], ["model.epochs=0"]),
    (["-m", "hparams_search=epsilon_optuna", "model.estimator.reg_covar=-1"],
     ["model.estimator.reg_covar=-1"]),
    (["-m", "hparams_search=xgboost_optuna", "optimized_metric=test_roc_auc"],
     ["test_roc_auc", "TEST metric"]),
    # the launcher's settings: checked before Hydra launches (joblib/Ray found them later)
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "seed=0,1"],
     ["hydra.launcher.n_jobs=0", "non-zero"]),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.backend=bogus", "seed=0,1"],
     ["hydra.launcher.backend='bogus'", "loky"]),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.mmap_mode=bogus", "seed=0,1"],
     ["hydra.launcher.mmap_mode='bogus'"]),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.pre_dispatch=n_jobs*x", "seed=0,1"],
     ["hydra.launcher.pre_dispatch='n_jobs*x'"]),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.backend=multiprocessing",
      "hydra.launcher.inner_max_num_threads=2", "seed=0,1"],
     ["hydra.launcher", "inner_max_num_threads", "loky"]),
    (["-m", "hydra/launcher=ray", "hydra.launcher.remote.num_cpus=-1", "seed=0,1"],
     ["hydra.launcher.remote=", "num_cpus"]),
    (["-m", "hydra/launcher=ray", "+hydra.launcher.init.bogus=1", "seed=0,1"],
     ["hydra.launcher.init.bogus=1", "ray.init"]),
    (["-m", "hydra/launcher=ray", "hydra.launcher.init.address=127.0.0.1:1", "seed=0,1"],
     ["hydra.launcher.init.address='127.0.0.1:1'", "no Ray cluster"]),
    # the Optuna sweeper's settings (Optuna took n_trials=-1, n_jobs=0, a negative count)
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.n_trials=-1"],
     ["hydra.sweeper.n_trials=-1"]),
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.n_jobs=0"],
     ["hydra.sweeper.n_jobs=0"]),
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.direction=sideways"],
     ["hydra.sweeper.direction='sideways'", "maximize"]),
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.storage=bogus://x"],
     ["hydra.sweeper.storage=bogus://x", "SQLAlchemy"]),
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.sampler.n_startup_trials=-1"],
     ["hydra.sweeper.sampler.n_startup_trials=-1"]),
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.study_name="],
     ["hydra.sweeper.study_name=''"]),
    # Hydra's output folder (Hydra's own FileExistsError before)
    (["hydra.run.dir=README/run"], ["hydra.run.dir=README/run", "is a file"]),
    (["-m", "seed=0,1", "hydra.sweep.dir=README"], ["hydra.sweep.dir=README", "is a file"]),
    # a parameter the class does not have: any target, not only bench's (a TypeError before)
    (["model=logreg", "+model.max_depth=3"],
     ["model.max_depth=3", "LogisticRegression has no parameter 'max_depth'"]),
    (["-m", "model=logreg", "hparams_search=xgboost_optuna"],
     ["LogisticRegression has no parameter"]),
    # an objective no run computes (found after the first cell or trial had fitted)
    (["optimized_metric=val_f1score"], ["optimized_metric='val_f1score'", "'val_f1'"]),
    (["-m", "hparams_search=xgboost_optuna", "optimized_metric=val_nope"],
     ["optimized_metric='val_nope'"]),
    # the generators' own limits, before the first cell (cell 0 ran, cell 1 failed)
    (["-m", "dataset.n_rows=3000,50"], ["dataset.n_rows=50", "[100, inf]"]),
    (["dataset=graph_traffic", "dataset.factor_low=5"], ["factor_low <= factor_high", "5"]),
    # an Optuna search that cannot start: checked before the study and its parent run exist
    (["-m", "hparams_search=xgboost_optuna", "model.max_depth=int(interval(5,2))"],
     ["model.max_depth=int(interval(5,2))", "low <= high"]),
    (["-m", "hparams_search=xgboost_optuna", "model.learning_rate=tag(log,interval(0,0.3))"],
     ["model.learning_rate=tag(log,interval(0,0.3))", "log=True"]),
    (["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.storage=README/x.journal"],
     ["hydra.sweeper.storage=README/x.journal", "is a file"]),
    (["-m", "hparams_search=xgboost_optuna",
      "+hydra.sweeper.sampler.foo._target_=pathlib.Path.touch"],
     ["hydra.sweeper.sampler.foo._target_"]),
    # Hydra's own plugin and logging settings (Hydra refused them with a traceback)
    (["-m", "seed=0,1", "hydra.launcher._target_=pathlib.Path.touch"],
     ["hydra.launcher._target_=pathlib.Path.touch", "not a launcher plugin"]),
    (["-m", "seed=0,1", "hydra.sweeper._target_=pathlib.Path.touch"],
     ["hydra.sweeper._target_=pathlib.Path.touch", "not a sweeper plugin"]),
    (["hydra.job_logging.handlers.console.stream=ext://os.getcwd"],
     ["hydra.job_logging.handlers.console.stream=ext://os.getcwd", "ext://sys.stdout"]),
    # shares of all rows that leave TRAIN nothing (found when the data was split)
    (["split.val_size=0.6", "split.test_size=0.4"], ["val_size + split.test_size", "0.6 + 0.4"]),
    (["split=blocked", "split.val_size=0.5", "split.test_size=0.5"], ["0.5 + 0.5"]),
    # a grid whose second cell's data file is missing stops before the first cell runs
    (["-m", "dataset=synthetic,snmp_mib", "paths.data_dir=nowhere"],
     ["SNMP-MIB.csv", "not found", "BENCH_DATA_DIR"]),
    # xgboost takes **kwargs and only warns when fitting that it ignores one
    (["+model.colsample_bytre=0.5"], ["model.colsample_bytre=0.5", "no parameter"]),
    # the audit's settings, found inside the first cell before
    (["-m", "audit.on_label_copy=maybe", "seed=0,1"], ["audit.on_label_copy='maybe'"]),
    (["audit.label_copy_auc=0.5"], ["audit.label_copy_auc=0.5", "(0.5, 1]"]),
    # a function reached through logging's module (Hydra's whitelist held; a traceback)
    (["+hydra.job_logging.handlers.evil={class:logging.os.system,command:x}"],
     ["hydra.job_logging.handlers.evil.class=logging.os.system", "classes of logging"]),
    # every setting bench passes to Keras (Keras refused it with a traceback after the data
    # was loaded and the run created, or took it silently: min_delta<0 is abs(min_delta))
    (["model=dfnn", "model.activation=bogus"], ["model.activation='bogus'", "relu"]),
    (["-m", "model=dfnn", "model.activation=relu,bogus"], ["model.activation='bogus'"]),
    (["model=ann", "model.activation=Relu"], ["model.activation='Relu'"]),
    (["selector=autoencoder", "selector.activation=bogus"], ["selector.activation='bogus'"]),
    (["model=autoencoder", "model.estimator.activation=bogus"],
     ["model.estimator.activation='bogus'"]),
    (["model=dfnn", "model.steps_per_execution=0"], ["model.steps_per_execution=0", "[1, inf]"]),
    (["model=dfnn", "model.min_delta=-5"], ["model.min_delta=-5", "[0, inf)"]),
    (["-m", "hparams_search=dfnn_optuna", "model.activation=bogus"],
     ["model.activation='bogus'"]),
    # known up front, refused only when the model was logged (a FAILED run)
    (["tracking.model_format=pickle"], ["tracking.model_format='pickle'", "'cloudpickle'"]),
    # Hydra's output folder from an unset variable: Hydra's traceback before
    (["hydra.run.dir=${oc.env:BENCH_NOPE_XYZ}"],
     ["hydra.run.dir: Environment variable 'BENCH_NOPE_XYZ' not found"]),
    (["-m", "seed=0,1", "hydra.sweep.dir=${oc.env:BENCH_NOPE_XYZ}"],
     ["hydra.sweep.dir: Environment variable 'BENCH_NOPE_XYZ' not found"]),
    # the key the user set, not the key that refers to it (dataset.seed: ${seed})
    (["seed=${oc.env:BENCH_NOPE_XYZ}"], ["error: seed: Environment variable 'BENCH_NOPE_XYZ'"]),
    (["seed=???"], ["error: seed: Missing mandatory value: seed"]),
    # a folder under a file (only the path itself was checked)
    (["paths.cache_dir=README/x"], ["paths.cache_dir=README/x", "README is a file"]),
    # a fixed cut-off off the model's score scale (ran, flagging nothing)
    (["threshold=fixed", "threshold.epsilon=0.1"], ["threshold.epsilon=0.1", "model=gaussian"]),
    (["threshold=fixed", "threshold.value=2"], ["threshold.value=2", "(0, 1]", "no row"]),
    (["model=logreg", "threshold=fixed", "threshold.value=0"], ["threshold.value=0", "every row"]),
    # an Optuna search space outside a parameter's range: both ends and each choice checked
    # before the study and its parent run exist (each trial failed before)
    (["-m", "hparams_search=xgboost_optuna", "model.max_depth=int(interval(-5,-1))"],
     ["model.max_depth=-5", "search space model.max_depth=int(interval(-5,-1))"]),
    (["-m", "hparams_search=xgboost_optuna", "model.subsample=interval(0.5,1.5)"],
     ["model.subsample=1.5", "interval(0.5,1.5)"]),
    (["-m", "hparams_search=xgboost_optuna", "model.max_depth=choice(3,-1)"],
     ["model.max_depth=-1", "choice(3,-1)"]),
    # an allowed Hydra callback called otherwise than bench does (it counted 2/1 cells done)
    (["+hydra.callbacks.x={_target_:bench.callbacks.GridSummary,_args_:[1]}"],
     ["hydra.callbacks.x._args_", "by name only"]),
]
FAST = {0, 3, 6, 33, 62, 72, 81, 83, 85, 87, 96}


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(*case, marks=() if i in FAST else pytest.mark.slow, id=" ".join(case[0]))
    for i, case in enumerate(CONFIG_CASES)])
def test_config_mistake_is_one_line_before_any_run(tmp_path, args, expected):
    (tmp_path / "README").write_text("a file where a folder is expected")
    result = _run(tmp_path, "bench", *args)
    _assert_refused(result, tmp_path, expected)
    assert not list(tmp_path.glob("multirun/*/*/optuna"))  # no sweep started


def test_a_sweep_whose_study_storage_cannot_be_reached_fails_in_one_line(tmp_path):
    """Known only when the sweep opens its study: one error line (password masked), exit 2,
    the sweep's parent run FAILED rather than RUNNING, no trial run."""
    from bench import tracking

    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = _run(tmp_path, "bench", "-m", "hparams_search=xgboost_optuna",
                  "hydra.sweeper.storage=postgresql://bench:s3cretpw@127.0.0.1:1/optuna",
                  f"tracking.uri={store}", "dataset.n_rows=2000")
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "hydra.sweeper.storage=" in errors[0], output[-3000:]
    assert "cannot open the study's storage" in errors[0]
    assert "s3cretpw" not in output
    runs = tracking.runs_by_id(store)
    assert [status for status, _ in runs.values()] == ["FAILED"]  # the parent, no trial


# --------------------------------------------------------------------------------- security
def _payloads() -> list[list[str]]:
    touch = f"[touch,{MARKER}]"
    script = f"\"open('{MARKER}','w')\""
    return [
        ["model._target_=os.system", f"+model.command='touch {MARKER}'"],
        ["model._target_=subprocess.call", f"+model.args={touch}"],
        ["model._target_=builtins.eval", f"+model.source={script}"],
        ["model._target_=sklearn.utils._testing.assert_run_python_script_without_output",
         f"+model.source_code={script}"],
        ["model._target_=sklearn.utils.estimator_checks.check_estimator"],
        ["model._target_=sklearn.datasets.fetch_openml", "+model.name=iris"],
        ["model._target_=bench.data.files.os.system", f"+model.command='touch {MARKER}'"],
        ["model._target_=xgboost.core.os.system", f"+model.command='touch {MARKER}'"],
        ["model._target_=sklearn.base.os.system", f"+model.command='touch {MARKER}'"],
        ["model=isolation_forest", "model.estimator._target_=subprocess.call",
         f"+model.estimator.args={touch}"],
        ["+model.class_weight._target_=os.system"],
        ["+model.callbacks=[{_target_: os.system, command: 'touch PWNED'}]"],
        ["model._target_=os.system", "+model._partial_=true"],
        ["+model._args_=[1]"],
        ["+model._recursive_=false"],
        ["threshold._target_=subprocess.call", f"+threshold.args={touch}"],
        ["dataset._target_=os.system"],
        ["+hydra.callbacks.evil._target_=os.system"],
        ["-m", "hparams_search=xgboost_optuna", "hydra.sweeper.sampler._target_=os.system"],
        ["hydra.job_logging.handlers.console.class=os.system"],
        # an environment variable reaches every program bench starts: git runs core.fsmonitor
        ["+hydra.job.env_set.GIT_CONFIG_COUNT=1", "+hydra.job.env_set.GIT_CONFIG_KEY_0="
         "core.fsmonitor", f"+hydra.job.env_set.GIT_CONFIG_VALUE_0='touch {MARKER}'"],
        ["+hydra.job.env_set.LD_PRELOAD=/tmp/evil.so"],
        ["model._target_=sklearn.base.BaseEstimator"],
        ["model._target_=sklearn.base.ClassifierMixin"],
        ["+hydra.job.env_set.OMP_NUM_THREADS='1; touch PWNED'"],
        # Ray installs a runtime_env's packages and runs its setup hook in each worker
        ["-m", "hydra/launcher=ray", "+hydra.launcher.init.runtime_env={pip:[evil]}",
         "seed=0,1"],
        ["-m", "hydra/launcher=ray",
         "+hydra.launcher.remote.runtime_env={worker_process_setup_hook:os.system}", "seed=0,1"],
    ]


@pytest.mark.parametrize("args", [
    pytest.param(a, marks=() if i < 2 else pytest.mark.slow, id=" ".join(a))
    for i, a in enumerate(_payloads())])
def test_no_config_override_runs_code(tmp_path, args):
    result = _run(tmp_path, "bench", *args)
    key = next(a for a in args if "_target_" in a or "class=" in a or "_args_" in a
               or "_recursive_" in a or "callbacks=" in a or "env_set" in a
               or "runtime_env" in a).lstrip("+").split("=")[0]
    key = key.rsplit("._", 1)[0] if "._" in key else key
    _assert_refused(result, tmp_path, [key.split("[")[0]])


# ------------------------------------------------------------------------------- data files
def _snmp(rows: int = 60, attack_every: int = 3) -> list[str]:
    lines = [",".join(COUNTERS) + ",class"]
    for i in range(rows):
        label = "tcp-syn" if attack_every and i % attack_every == 0 else "normal"
        # values in no particular row order (the leak guard drops counters that follow it)
        lines.append(",".join(str((i * 7919 + j * 104729) % 997) for j in range(len(COUNTERS)))
                     + f",{label}")
    return lines


def _write(folder: Path, lines: list[str] | bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "SNMP-MIB.csv"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(lines) + "\n")
    return path


def _with_cell(line: int, column: int, value: str) -> list[str]:
    lines = _snmp()
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return lines


def _data_cases() -> list[tuple[str, object, list[str]]]:
    rows = [line.encode() for line in _snmp()]
    rows[11] = rows[11][:1] + b"\xff" + rows[11][2:]  # line 12 (data row 11), column 2
    bad_byte = b"\n".join(rows)
    quote = _snmp()
    quote[6] = '"' + quote[6]  # an unterminated quote on line 7
    huge = _with_cell(5, 3, "9" * 200_000)
    return [
        ("non-numeric", _with_cell(4, 2, "1.2.3"), ["SNMP-MIB.csv: line 4", COUNTERS[2],
                                                    "1.2.3"]),
        ("empty cell", _with_cell(9, 0, ""), ["line 9", COUNTERS[0], "missing"]),
        ("inf", _with_cell(3, 1, "inf"), ["line 3", COUNTERS[1], "infinite"]),
        ("nan", _with_cell(3, 1, "nan"), ["line 3", "NaN"]),
        ("too large", _with_cell(6, 4, "1e999"), ["line 6", COUNTERS[4], "infinite"]),
        ("unknown label", _with_cell(8, len(COUNTERS), "ddos"), ["line 8", "class", "ddos"]),
        ("extra field", [*_snmp()[:5], _snmp()[5] + ",7", *_snmp()[6:]], ["line 6", "fields"]),
        ("unterminated quote", quote, ["line 7", "quote"]),
        ("field limit", huge, ["line 5", COUNTERS[3], "200,000 characters"]),
        ("not utf-8", bad_byte, ["line 12", "column 2", "0xff", "UTF-8"]),
        ("header only", _snmp()[:1], ["empty file"]),
        ("duplicate column", [_snmp()[0].replace("tcpInSegs", "tcpOutSegs"), *_snmp()[1:]],
         ["line 1", "tcpOutSegs"]),
        ("ten rows", _snmp(rows=10, attack_every=5), ["VAL has no attack rows", "2 normal",
                                                      "split.val_size"]),
        ("too few attacks", _snmp(rows=60, attack_every=60), ["cannot be split", "1 attack"]),
        ("one class", _snmp(rows=60, attack_every=0), ["TRAIN has no attack rows",
                                                       "model.fit_on"]),
    ]


@pytest.mark.parametrize(("content", "expected"), [
    pytest.param(c, e, marks=() if i < 1 else pytest.mark.slow, id=name)
    for i, (name, c, e) in enumerate(_data_cases())])
def test_bad_data_file_names_file_line_column_value(tmp_path, content, expected):
    path = _write(tmp_path / "data", content)
    result = _run(tmp_path, "bench", "dataset=snmp_mib", "split=stratified",
                  f"paths.data_dir={path.parent}", f"paths.cache_dir={tmp_path / 'cache'}")
    _assert_refused(result, tmp_path, expected)
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    if "SNMP-MIB.csv" in error:  # refused while parsing: nothing cached
        assert not list((tmp_path / "cache").glob("**/*.parquet"))


@pytest.mark.parametrize(("args", "expected"), [
    (["-m", "dataset.non_finite=error,ignore"], ["dataset.non_finite", "'ignore'"]),
    (["-m", "dataset.path=good.csv,missing.csv"], ["dataset.path", "missing.csv", "not found"]),
    (["+dataset.lable=Label"], ["dataset.lable", "dataset.label"]),
    (["dataset.chunk_rows=0"], ["dataset.chunk_rows=0"]),
    (["dataset.normal=[benign]"], ["dataset.normal=['benign']", "'BENIGN'"]),  # when read
    (["dataset.max_columns=0"], ["dataset.max_columns=0"]),
])
def test_table_options_are_refused_before_the_first_cell(tmp_path, args, expected):
    """dataset=table's options and files are checked with every config of the command (they
    were checked inside each cell: a grid ran its good cells first)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "good.csv").write_text("a,b,Label\n1,2,BENIGN\n3,4,ATTACK\n")
    result = _run(tmp_path, "bench", "dataset=table", "dataset.path=good.csv",
                  "dataset.label=Label", "dataset.normal=[BENIGN]",
                  f"paths.data_dir={tmp_path / 'data'}", *args)
    _assert_refused(result, tmp_path, expected)


def test_settings_an_estimator_refuses_when_it_fits_are_one_line_and_the_run_failed(tmp_path):
    """scikit-learn checks some settings only in fit (a solver and a penalty): one error line
    naming the group and the class, exit 2, the run FAILED with its traceback logged."""
    from bench import tracking

    result = _run(tmp_path, "bench", "model=logreg", "+model.penalty=l1", "dataset.n_rows=2000",
                  "evaluation.plots=none", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: model: LogisticRegression"), errors
    assert "penalty" in errors[0]
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    runs = tracking.search_all_runs(uri, list(tracking.experiments(uri).values()))
    assert [run.info.status for run in runs] == ["FAILED"]


def test_a_bug_in_bench_inside_fit_keeps_its_traceback():
    """`refusals` turns only scikit-learn's and xgboost's own errors into a user's mistake."""
    from bench.fitting import refusals

    with pytest.raises(ValueError, match="a bug"), refusals("model", object()):
        raise ValueError("a bug")


def test_a_symlink_loop_is_named_as_one(tmp_path):
    """It was "file not found ... (BENCH_DATA_DIR is not set)" with paths.data_dir given."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "SNMP-MIB.csv").symlink_to("SNMP-MIB.csv")
    result = _run(tmp_path, "bench", "dataset=snmp_mib", f"paths.data_dir={tmp_path / 'data'}")
    _assert_refused(result, tmp_path, ["SNMP-MIB.csv", "symbolic link loop"])
    (tmp_path / "loop").symlink_to("loop")
    result = _run(tmp_path, "bench", f"paths.cache_dir={tmp_path / 'loop'}")
    _assert_refused(result, tmp_path, ["paths.cache_dir=", "symbolic link loop"])


def _no_runs(uri: str) -> None:
    from bench import tracking

    assert not tracking.store_exists(uri) or tracking.runs_by_id(uri) == {}


@pytest.mark.parametrize("from_env", [False, True])
def test_a_parent_run_that_does_not_exist_is_one_line_before_the_data(tmp_path, from_env):
    """MLflow's "Run with id=deadbeef not found" traceback came after the data was loaded."""
    import os

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    args = ["model=logreg", f"tracking.uri={uri}", "dataset.n_rows=2000"]
    env = dict(os.environ)
    if from_env:
        env["BENCH_PARENT_RUN_ID"] = "deadbeef"
    else:
        args.append("tracking.parent_run_id=deadbeef")
    result = subprocess.run([sys.executable, "-m", "bench", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    key = "tracking.parent_run_id" + (" (from $BENCH_PARENT_RUN_ID)" if from_env else "")
    assert errors == [f"error: {key}='deadbeef': no such run in {uri}"], result.stderr[-3000:]
    assert "[data]" not in result.stdout + result.stderr  # before the data is read
    _no_runs(uri)


def test_log1p_naming_a_column_not_in_the_data_is_refused_before_the_run(tmp_path):
    """log1p silently skipped an unknown column; the error names it and the closest names."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = _run(tmp_path, "bench", "model=logreg", "dataset.n_rows=2000",
                  f"tracking.uri={uri}", "preprocess.log1p=[nosuchcol,sbyte]")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for text in ("preprocess.log1p=['nosuchcol', 'sbyte']", "'nosuchcol' is not a numeric",
                 "did you mean 'sbytes'", "numeric feature columns: dur"):
        assert text in errors[0], errors[0]
    _no_runs(uri)


def test_a_directory_where_the_data_file_should_be_is_named_so(tmp_path):
    (tmp_path / "data" / "SNMP-MIB.csv").mkdir(parents=True)
    result = _run(tmp_path, "bench", "dataset=snmp_mib", f"paths.data_dir={tmp_path / 'data'}")
    _assert_refused(result, tmp_path, ["SNMP-MIB.csv", "is a directory"])


@pytest.mark.slow
def test_trailing_blank_lines_are_tolerated(tmp_path):
    path = _write(tmp_path / "data", [*_snmp(rows=200), "", ""])
    result = _run(tmp_path, "bench", "dataset=snmp_mib", "model=logreg",
                  f"paths.data_dir={path.parent}", f"paths.cache_dir={tmp_path / 'cache'}",
                  timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


# -------------------------------------------------------------------------- other commands
def test_report_bad_option_is_one_line(tmp_path):
    result = _run(tmp_path, "bench.report", "--alpha", "2", "--no-log")
    _assert_refused(result, tmp_path, ["--alpha"])


@pytest.mark.parametrize(("module", "args", "key"), [
    ("bench.report", ["--tracking-uri", "http://127.0.0.1:9", "--no-log"], "--tracking-uri"),
    ("bench.register", ["--dataset", "synthetic", "--tracking-uri", "http://127.0.0.1:9"],
     "--tracking-uri"),
    ("bench", ["score", "run=0123abcd", "input=README", "output=out.csv",
               "tracking.uri=http://127.0.0.1:9"], "tracking.uri"),
])
def test_commands_reading_a_store_stop_at_once_when_its_server_does_not_answer(
        tmp_path, module, args, key):
    """MLflow's client retries an unreachable server for minutes; each command asks the
    server's /health first (5 s at most) and stops in one line naming the option."""
    (tmp_path / "README").write_text("a,b\n1,2\n")
    result = _run(tmp_path, module, *args, timeout=60)
    _assert_refused(result, tmp_path, [f"{key}=http://127.0.0.1:9", "cannot reach"])


@pytest.mark.parametrize(("module", "args", "key"), [
    ("bench.report", ["--tracking-uri", "sqlite:///nowhere/mlflow.db", "--no-log"],
     "--tracking-uri"),
    ("bench.register", ["--dataset", "synthetic", "--tracking-uri",
                        "sqlite:///nowhere/mlflow.db"], "--tracking-uri"),
    ("bench", ["score", "run=0123abcd", "input=README", "output=out.csv",
               "tracking.uri=sqlite:///nowhere/mlflow.db"], "tracking.uri"),
])
def test_commands_reading_a_store_refuse_one_that_does_not_exist_and_create_none(
        tmp_path, module, args, key):
    """A sqlite store that does not exist is named as missing; MLflow would create an empty
    one and answer "nothing found" (register did)."""
    (tmp_path / "README").write_text("a,b\n1,2\n")
    result = _run(tmp_path, module, *args, timeout=120)
    _assert_refused(result, tmp_path, [f"{key}=sqlite:///nowhere/mlflow.db", "no MLflow store"])
    assert not (tmp_path / "nowhere").exists()
    folder = [arg.replace("sqlite:///nowhere/mlflow.db", "file:///tmp/nowhere-mlruns")
              for arg in args]
    result = _run(tmp_path, module, *folder, timeout=120)  # MLflow's traceback before
    _assert_refused(result, tmp_path, [f"{key}=file:///tmp/nowhere-mlruns", "folder store"])


def test_report_metric_that_no_run_logged_is_refused_with_the_closest_names(tmp_path):
    from bench import tracking

    tracking_uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    tracking.open_store(tracking_uri)
    experiment_id = tracking.get_or_create_experiment(tracking_uri, "report-typo")
    run_id = tracking.create_run(tracking_uri, experiment_id, "one",
                                 {"dataset": "synthetic", "model": "logreg"})
    tracking.log_metrics({"test_f1": 0.5, "val_f1": 0.6}, run_id=run_id, uri=tracking_uri)
    tracking.set_terminated(tracking_uri, run_id, "FINISHED")
    for option, value in (("--metric", "test_f2"), ("--select-by", "val_f2")):
        result = _run(tmp_path, "bench.report", "--tracking-uri", tracking_uri, option, value,
                      "--no-log")
        _assert_refused(result, tmp_path, [f"{option} {value}", "no selected run logged it",
                                           value[:-1] + "1"])


def test_report_whose_selection_matches_no_run_is_refused_and_writes_nothing(tmp_path):
    """A misspelt --dataset / --tag / --filter (or a store of failed runs) wrote an empty
    report and exited 0; the error says what the store has."""
    from bench import tracking

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    tracking.open_store(uri)
    experiment_id = tracking.get_or_create_experiment(uri, "table")
    run_id = tracking.create_run(uri, experiment_id, "one", {"dataset": "table",
                                                             "model": "logreg"})
    tracking.log_metrics({"test_f1": 0.5, "val_f1": 0.6}, run_id=run_id, uri=uri)
    tracking.set_terminated(uri, run_id, "FINISHED")
    for options, expected in (
            (["--dataset", "nosuch"], ["--dataset nosuch: no run matches",
                                       "datasets in the store: table"]),
            (["--tag", "model=xgbost"], ["--tag model=xgbost", "tag model: logreg"]),
            (["--filter", "metrics.test_f1 > 2"], ["--filter 'metrics.test_f1 > 2'",
                                                   "datasets in the store: table"])):
        output = tmp_path / "report"
        result = _run(tmp_path, "bench.report", "--tracking-uri", uri, "--no-log",
                      "--output", str(output), *options)
        _assert_refused(result, tmp_path, expected)
        assert not output.exists()
    tracking.set_terminated(uri, run_id, "FAILED")
    result = _run(tmp_path, "bench.report", "--tracking-uri", uri, "--no-log", "--output",
                  str(tmp_path / "report"))
    _assert_refused(result, tmp_path, ["no FINISHED run to report", "1 FAILED"])
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_analyze_bad_key_is_one_line(tmp_path):
    result = _run(tmp_path, "bench.analyze", "dataset=nosuch")
    _assert_refused(result, tmp_path, ["dataset/nosuch"])


def test_a_genuine_bug_keeps_its_traceback():
    from bench.errors import user_error_message

    assert user_error_message(KeyError("x")) is None
    assert user_error_message(ValueError("y")) is None
