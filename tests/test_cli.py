"""`python -m bench` as a user runs it: output, exit codes, start-up cost, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient


def _bench(tmp_path: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the CLI in `tmp_path` (so the default ./mlruns store lands there)."""
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _runs(store: Path) -> list:
    client = MlflowClient(f"sqlite:///{store}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_help_does_not_import_tensorflow_or_mlflow():
    probe = ("import runpy, sys; sys.argv = ['bench', '--help']\n"
             "try:\n    runpy.run_module('bench', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'xgboost') "
             "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "HEAVY []" in out
    assert "model: " in out and "dfnn" in out  # the help lists groups and options


def test_default_run_prints_the_table_and_the_mlflow_command(tmp_path):
    result = _bench(tmp_path, "dataset.n_rows=3000", "seed=1")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for text in ("precision", "roc_auc", "pr_auc", "fpr", "VAL", "TEST", "fit ",
                 "MLflow run", "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db"):
        assert text in out, text
    runs = _runs(tmp_path / "mlruns" / "mlflow.db")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].info.run_id in out
    assert "[audit] dropped (declared identifier/label proxy): ['id', 'attack_cat']" in out


def test_default_run_does_not_import_tensorflow(tmp_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "bench",
                             "dataset.n_rows=2000", "model=logreg"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "tensorflow" not in imported and "keras" not in imported


@pytest.mark.parametrize(("args", "expected"), [
    (["model=xgbost"], ["Could not find 'model/xgbost'", "xgboost", "random_forest"]),
    (["model.n_estimatrs=5"], ["unknown key 'model.n_estimatrs'", "n_estimators", "max_depth"]),
    (["selector=pca", "selector.k=5"], ["Valid keys under 'selector'", "n_components"]),
])
def test_config_errors_name_the_valid_choices_and_create_no_run(tmp_path, args, expected):
    result = _bench(tmp_path, *args, timeout=60)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    for text in expected:
        assert text in message, text
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was created


def test_unreachable_tracking_server_stops_before_training(tmp_path):
    result = _bench(tmp_path, "tracking.uri=http://127.0.0.1:9", timeout=60)
    assert result.returncode == 2
    assert "cannot reach the MLflow tracking server" in result.stderr
    assert "[data]" not in result.stdout  # nothing was loaded, let alone fitted


def test_missing_data_file_names_the_file_and_where_it_looked(tmp_path):
    empty = tmp_path / "no_data_here"
    empty.mkdir()
    result = _bench(tmp_path, "dataset=snmp_mib", f"paths.data_dir={empty}", timeout=60)
    assert result.returncode == 2
    assert "SNMP-MIB.csv" in result.stderr and str(empty) in result.stderr
    assert "BENCH_DATA_DIR" in result.stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was created


def test_a_deleted_experiment_stops_the_run_before_its_data_is_loaded(tmp_path):
    from bench.tracking import open_store

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    open_store(uri)
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("gone"))
    result = _bench(tmp_path, "tracking.experiment=gone", "dataset.n_rows=2000", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: tracking.experiment 'gone': the experiment is deleted")
    assert "[data]" not in result.stdout + result.stderr and not _runs(tmp_path / "mlruns" /
                                                                      "mlflow.db")


def test_malformed_data_file_names_file_row_column_value(tmp_path):
    from bench.data.snmp_mib import SCHEMA

    columns = [*SCHEMA.numeric, "class"]
    rows = [",".join(["1"] * len(SCHEMA.numeric) + ["normal"]) for _ in range(5)]
    rows[2] = ",".join(["1"] * (len(SCHEMA.numeric) - 1) + ["oops", "normal"])
    data = tmp_path / "data"
    data.mkdir()
    (data / "SNMP-MIB.csv").write_text(",".join(columns) + "\n" + "\n".join(rows) + "\n")
    result = _bench(tmp_path, "dataset=snmp_mib", f"paths.data_dir={data}",
                    f"paths.cache_dir={tmp_path / 'cache'}", timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "SNMP-MIB.csv" in result.stderr and "oops" in result.stderr
    assert SCHEMA.numeric[-1] in result.stderr and "line 4" in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()][-1].startswith(
        "error: ")  # found inside the job: bench's one line, not Hydra's "Error executing job"
    assert "Error executing job" not in result.stderr
    assert not list((tmp_path / "cache").glob("*.parquet"))
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was created


def test_a_failing_fit_exits_non_zero_and_ends_the_run_failed(tmp_path):
    # knowable only while fitting: one-hot columns make the covariance singular without ridge
    result = _bench(tmp_path, "dataset.n_rows=2000", "model=gaussian",
                    "model.estimator.reg_covar=0")
    assert result.returncode == 2
    assert "reg_covar" in result.stderr and "Traceback" not in result.stderr
    runs = _runs(tmp_path / "mlruns" / "mlflow.db")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_an_out_of_range_parameter_is_refused_before_any_run(tmp_path):
    result = _bench(tmp_path, "dataset.n_rows=2000", "model=logreg", "model.C=-1.0")
    assert result.returncode == 2
    assert "error: model.C=-1.0" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


@pytest.mark.slow
def test_multirun_grid_gives_one_run_per_cell(tmp_path):
    result = _bench(tmp_path, "-m", "dataset.n_rows=2000", "selector=none,rf_importance,pca",
                    "model=logreg,xgboost", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(tmp_path / "mlruns" / "mlflow.db")
    cells = {(r.data.tags["selector"], r.data.tags["model"]) for r in runs}
    assert len(runs) == 6 and len(cells) == 6
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_grid_ends_every_run_finished_with_its_figures(tmp_path):
    """In a sequential grid a run waits for its figures (drawn by the helper while the next
    cell runs) and ends FINISHED with them; the last one when the grid ends."""
    result = _bench(tmp_path, "-m", "dataset.n_rows=2000", "model=logreg",
                    "model.C=0.5,1.0,2.0", "evaluation.plots=[roc,score_histogram]")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(tmp_path / "mlruns" / "mlflow.db")
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    for run in runs:
        files = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
        assert files == {"plots/roc.png", "plots/score_histogram_test.png"}, run.info.run_id
        assert run.info.end_time >= run.info.start_time


def test_a_process_ending_without_the_final_collection_still_flushes_and_runs_atexit(
        tmp_path):
    """bench.shutdown freezes what is alive at exit (no last walk over every object): the
    logging file handler's last line and the later atexit handlers still reach the disk."""
    script = f"""
import atexit, logging, pathlib
from bench.shutdown import skip_final_collection
skip_final_collection()
handler = logging.FileHandler({str(tmp_path / 'log.txt')!r})
logging.getLogger().addHandler(handler)
atexit.register(lambda: pathlib.Path({str(tmp_path / 'atexit.txt')!r}).write_text("ran"))
cycle = {{}}
cycle["self"] = cycle  # garbage only the cyclic collector could free
logging.getLogger().warning("last line")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "log.txt").read_text() == "last line\n"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
