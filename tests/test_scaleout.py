"""Scale-out: the Ray launcher, MLflow on a tracking server backed by PostgreSQL, Optuna on
PostgreSQL, and passwords that never leak. The distributed tests start REAL servers on
127.0.0.1 (tests/servers.py) and are marked slow + distributed: CI runs them, the quick
default suite skips them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import free_port, mlflow_server, postgres_server, ray_cluster

from bench import tracking
from bench.errors import ConfigError, TrackingError
from bench.secrets import hide_passwords, mask

REPO = Path(__file__).resolve().parent.parent
PLANTED = "Pl4nted-S3cret-7q"  # the database password; also sent to the MLflow server


# ------------------------------------------------------------------------ fast: no servers
def test_mask_hides_url_passwords_and_keeps_the_rest() -> None:
    text = "uri postgresql+psycopg://bench:" + PLANTED + "@db:5432/x and http://a:b@h:5000/"
    assert mask(text) == "uri postgresql+psycopg://bench:***@db:5432/x and http://a:***@h:5000/"
    assert mask("sqlite:///mlruns/mlflow.db http://host:5000") == (
        "sqlite:///mlruns/mlflow.db http://host:5000")


def test_a_password_with_unencoded_reserved_characters_is_masked_whole_or_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`@` inside a password is parsed (the last `@` ends it) and moved out; `/`, `?` or `#`
    end the host early, so no library would read the password: refused, never left in the
    URL. A port followed by a path or query holding `@` is not a password."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("bench.secrets._EXPORTED", set())
    secret = "p@ss/w?o#rd"
    assert mask(f"x postgresql://u:{secret}@db/x,postgresql://v:w@db/y") == (
        "x postgresql://u:***@db/x,postgresql://v:***@db/y")
    assert hide_passwords([f"tracking.uri=postgresql://u:{PLANTED}@x@db/x"]) == [
        "tracking.uri=postgresql://u@db/x"]
    assert os.environ["PGPASSWORD"] == PLANTED + "@x"
    for reserved in "/?#":
        with pytest.raises(ConfigError, match="percent-encode") as info:
            hide_passwords([f"tracking.uri=postgresql://u:{PLANTED}{reserved}x@db/x"])
        assert PLANTED not in str(info.value)
    for url in ("http://host:5000/x?email=a@b.c", "http://host:5000?e=a@b"):
        assert mask(url) == url
        assert hide_passwords([f"tracking.uri={url}"]) == [f"tracking.uri={url}"]


def test_hide_passwords_moves_them_to_the_variables_the_libraries_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bench.secrets._EXPORTED", set())
    argv = ["-m", "model=xgboost,logreg",
            f"hydra.sweeper.storage=postgresql://bench:{PLANTED}@db:5432/optuna",
            f"tracking.uri=https://alice:{PLANTED}x@mlflow.example:443/"]
    out = hide_passwords(argv)
    assert out[:2] == argv[:2]
    assert out[2] == "hydra.sweeper.storage=postgresql://bench@db:5432/optuna"
    assert out[3] == "tracking.uri=https://mlflow.example:443/"
    assert os.environ["PGPASSWORD"] == PLANTED
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == PLANTED + "x"
    assert PLANTED not in mask(" ".join(argv))  # the values themselves are masked too


def test_hide_passwords_refuses_what_it_cannot_move(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("bench.secrets._EXPORTED", set())
    with pytest.raises(ConfigError, match="mysql://") as info:
        hide_passwords([f"tracking.uri=mysql://u:{PLANTED}@db/x"])
    assert PLANTED not in str(info.value)
    with pytest.raises(ConfigError, match="pgpass"):
        hide_passwords(["a.uri=postgresql://u:one1@db/x", "b.uri=postgresql://u:two2@db/y"])


def test_hide_passwords_finds_them_quoted_in_sweeps_and_in_query_parameters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Hydra's quoting ('...', "..."), a sweep of URLs and libpq's `?password=` do not let a
    password through; the rest of each value is kept as written."""
    for name in ("PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bench.secrets._EXPORTED", set())
    argv = [f"tracking.uri='http://u:{PLANTED}@127.0.0.1:1'",
            f"hydra.sweeper.storage=postgresql://b:{PLANTED}@db/x,\"postgresql://b:{PLANTED}@db/y\"",
            f"a.uri='postgresql://db:5432/x?user=b&password={PLANTED}&sslmode=require'"]
    out = hide_passwords(argv)
    assert out == ["tracking.uri='http://127.0.0.1:1'",
                   'hydra.sweeper.storage=postgresql://b@db/x,"postgresql://b@db/y"',
                   "a.uri='postgresql://db:5432/x?user=b&sslmode=require'"]
    assert os.environ["PGPASSWORD"] == PLANTED
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == PLANTED
    assert mask(f"postgresql://db/x?user=b&password={PLANTED}") == (
        "postgresql://db/x?user=b&password=***")
    with pytest.raises(ConfigError, match="mysql://") as info:
        hide_passwords([f"tracking.uri='mysql://db/x?password={PLANTED}'"])
    assert PLANTED not in str(info.value)
    # the options of bench.report and bench.register, and a URL without a port
    assert hide_passwords(["--tracking-uri", f"http://u:{PLANTED}@127.0.0.1/", "--top", "3",
                           f"--tracking-uri=postgresql://b:{PLANTED}@db/x"]) == [
        "--tracking-uri", "http://127.0.0.1/", "--top", "3", "--tracking-uri=postgresql://b@db/x"]


def test_cli_quoted_url_password_reaches_no_output_or_file(tmp_path: Path) -> None:
    """A password in a quoted tracking.uri is neither printed nor in Hydra's .hydra files, on a
    run and on a grid (Hydra echoes every cell's overrides)."""
    for mode in ([], ["-m", "seed=0,1"]):
        result = _bench(tmp_path, *mode, f"tracking.uri='http://u:{PLANTED}@127.0.0.1:1'",
                        "dataset.n_rows=2000", f"hydra.run.dir={tmp_path}/run",
                        f"hydra.sweep.dir={tmp_path}/multirun")
        assert result.returncode == 2, result.stderr[-2000:]
        assert "cannot reach the MLflow tracking server" in result.stderr
        _assert_nowhere(PLANTED, result, tmp_path)


def test_unreachable_database_is_a_tracking_error_without_the_password() -> None:
    url = f"postgresql://bench:{PLANTED}@127.0.0.1:{free_port()}/mlflow"
    with pytest.raises(TrackingError, match="cannot connect to the database") as info:
        tracking.preflight(url)
    assert "tracking.uri=postgresql://bench:***@127.0.0.1" in str(info.value)
    assert PLANTED not in str(info.value)
    with pytest.raises(TrackingError, match=r"hydra\.sweeper\.storage"):
        tracking.check_optuna_storage(url)


def test_missing_driver_names_the_package_to_install() -> None:
    url = f"postgresql+pg8000://bench:{PLANTED}@127.0.0.1:5432/mlflow"
    with pytest.raises(TrackingError, match=r"driver 'pg8000' is not installed \(pip install"):
        tracking.preflight(url)


@pytest.mark.slow
def test_cli_unreachable_database_fails_before_data_and_hides_the_password(
        tmp_path: Path) -> None:
    url = f"postgresql://bench:{PLANTED}@127.0.0.1:{free_port()}/mlflow"
    result = _bench(tmp_path, f"tracking.uri={url}", "dataset.n_rows=2000")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot connect to the database tracking.uri=" in errors[0]
    assert "Traceback" not in result.stderr
    assert "[data]" not in result.stdout  # nothing was loaded
    _assert_nowhere(PLANTED, result, tmp_path)


def test_the_run_logs_to_mlflow_tracking_uri_unless_the_command_line_names_a_store(
        tmp_path: Path) -> None:
    from_env = f"sqlite:///{tmp_path / 'env' / 'mlflow.db'}"
    named = f"sqlite:///{tmp_path / 'named' / 'mlflow.db'}"
    common = ("dataset.n_rows=2000", "model=logreg", "evaluation.plots=none")
    result = _bench(tmp_path, *common, env={"MLFLOW_TRACKING_URI": from_env})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_runs(from_env, "synthetic")) == 1
    assert not (tmp_path / "mlruns").exists()  # not the default store
    result = _bench(tmp_path, *common, f"tracking.uri={named}",
                    env={"MLFLOW_TRACKING_URI": from_env})
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_runs(named, "synthetic")) == 1 and len(_runs(from_env, "synthetic")) == 1
    folder = tmp_path / "a_folder"  # a store MLflow 3 does not open: the error names the source
    result = _bench(tmp_path, *common, env={"MLFLOW_TRACKING_URI": str(folder)})
    assert result.returncode == 2
    assert f"error: tracking.uri (from $MLFLOW_TRACKING_URI)={folder}: a folder store" in (
        result.stderr)


def test_mlflow_tracking_uri_is_made_ready_for_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.secrets import hide_env_passwords
    from bench.tracking import uri_setting

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("bench.secrets._EXPORTED", set())
    monkeypatch.setattr("bench.secrets._env_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", " ")
    hide_env_passwords([])
    assert "MLFLOW_TRACKING_URI" not in os.environ  # empty reads as unset, as for MLflow
    url = f"postgresql://bench:{PLANTED}@db:5432/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    hide_env_passwords(["tracking.uri=sqlite:///x.db"])  # not the run's store: left alone
    assert os.environ["MLFLOW_TRACKING_URI"] == url and "PGPASSWORD" not in os.environ
    hide_env_passwords(["model=logreg"])
    assert os.environ["MLFLOW_TRACKING_URI"] == "postgresql://bench@db:5432/mlflow"
    assert os.environ["PGPASSWORD"] == PLANTED
    shown = uri_setting("postgresql://bench@db:5432/mlflow")
    assert shown == "tracking.uri (from $MLFLOW_TRACKING_URI)"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")  # as mlflow.set_tracking_uri
    assert uri_setting("sqlite:///x.db") == "tracking.uri"  # a store named elsewhere


@pytest.mark.slow
def test_analyze_moves_a_password_out_of_mlflow_tracking_uri(tmp_path: Path) -> None:
    url = f"postgresql://bench:{PLANTED}@127.0.0.1:{free_port()}/mlflow"
    environ = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": url}
    environ.pop("PGPASSWORD", None)
    result = subprocess.run([sys.executable, "-m", "bench.analyze", "dataset.n_rows=1000"],
                            cwd=tmp_path, env=environ, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "postgresql://bench@127.0.0.1" in result.stderr
    _assert_nowhere(PLANTED, result, tmp_path)


@pytest.mark.slow
def test_a_password_in_mlflow_tracking_uri_reaches_no_output(tmp_path: Path) -> None:
    url = f"postgresql://bench:{PLANTED}@127.0.0.1:{free_port()}/mlflow"
    result = _bench(tmp_path, "dataset.n_rows=2000", env={"MLFLOW_TRACKING_URI": url})
    assert result.returncode == 2
    assert "tracking.uri (from $MLFLOW_TRACKING_URI)=postgresql://bench@127.0.0.1" in (
        result.stderr)
    _assert_nowhere(PLANTED, result, tmp_path)


# --------------------------------------------------------------------- distributed: servers
@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    """PostgreSQL (databases mlflow, optuna; password PLANTED) and an MLflow server on it."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    with postgres_server(PLANTED) as pg:
        backend = pg.url("mlflow", password=False)  # the server gets it from PGPASSWORD
        with mlflow_server(backend, folder, env={"PGPASSWORD": PLANTED}) as url:
            yield pg, url


@pytest.fixture(scope="module")
def ray_address():
    with ray_cluster(num_cpus=2) as (address, env):
        yield address, env


@pytest.mark.slow
@pytest.mark.distributed
def test_grid_on_a_ray_cluster_records_every_run_on_the_tracking_server(
        tmp_path: Path, stores, ray_address) -> None:
    _pg, url = stores
    address, ray_env = ray_address
    uri_with_password = url.replace("http://", f"http://alice:{PLANTED}@")
    result = _bench(tmp_path, "-m", "hydra/launcher=ray", "model=xgboost,logreg", "seed=0,1",
                    f"tracking.uri={uri_with_password}", "tracking.experiment=ray_grid",
                    "dataset.n_rows=2000", f"hydra.launcher.init.address={address}",
                    env=ray_env)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(url, "ray_grid")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    assert sorted((r.data.tags["model"], r.data.tags["seed"]) for r in runs) == [
        ("logreg", "0"), ("logreg", "1"), ("xgboost", "0"), ("xgboost", "1")]
    assert len({r.data.tags["config_id"] for r in runs}) == 2  # seeds share a config id
    assert sorted(p.name for p in (tmp_path / "multirun").glob("*/*/[0-9]")) == list("0123")
    _assert_nowhere(PLANTED, result, tmp_path, url, runs)


@pytest.mark.slow
@pytest.mark.distributed
def test_a_failing_job_on_ray_is_recorded_and_the_grid_goes_on(
        tmp_path: Path, stores, ray_address) -> None:
    _pg, url = stores
    address, ray_env = ray_address
    # reg_covar=0 fails only while fitting (one-hot columns make the covariance singular):
    # that job's run ends FAILED, the other one runs to the end
    result = _bench(tmp_path, "-m", "hydra/launcher=ray", "model=gaussian",
                    "model.estimator.reg_covar=0,0.000001", f"tracking.uri={url}",
                    "tracking.experiment=ray_failure", "dataset.n_rows=2000",
                    f"hydra.launcher.init.address={address}", env=ray_env)
    assert result.returncode != 0  # Hydra reports the failed job once the grid is done
    assert "reg_covar" in result.stderr
    runs = _runs(url, "ray_failure")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    assert len(list((tmp_path / "multirun").glob("*/*/[0-9]"))) == 2


@pytest.mark.slow
@pytest.mark.distributed
def test_optuna_sweep_with_two_workers_on_a_postgresql_study(
        tmp_path: Path, stores, ray_address) -> None:
    import optuna

    pg, url = stores
    address, ray_env = ray_address
    storage = pg.url("optuna")  # carries the password: bench must move it out of sight
    result = _bench(tmp_path, "-m", "hparams_search=xgboost_optuna",
                    f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=pg_study",
                    "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2",
                    "hydra/launcher=ray", f"hydra.launcher.init.address={address}",
                    f"tracking.uri={url}", "tracking.experiment=optuna_pg",
                    "dataset.n_rows=2000", "model.n_estimators=20", env=ray_env)
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="pg_study", storage=storage)
    assert len(study.trials) == 6
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    runs = _runs(url, "optuna_pg")
    assert len(runs) == 7  # the sweep's parent run and one run per trial
    assert {r.info.status for r in runs} == {"FINISHED"}
    trials = sorted(int(r.data.params["tracking.trial_number"]) for r in runs
                    if r.data.params.get("tracking.trial_number", "None") != "None")
    assert trials == list(range(6))
    attrs = json.dumps([study.user_attrs, [t.user_attrs for t in study.trials]], default=str)
    assert PLANTED not in attrs
    _assert_nowhere(PLANTED, result, tmp_path, url, runs)


@pytest.mark.slow
@pytest.mark.distributed
def test_a_run_logs_to_postgresql_named_with_its_password_in_mlflow_tracking_uri(
        tmp_path: Path, stores) -> None:
    pg, _url = stores
    store = pg.url("mlflow")  # with the password, as a user exports it
    result = _bench(tmp_path, "dataset.n_rows=2000", "model=logreg",
                    "tracking.experiment=from_env", env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _runs(store, "from_env")
    assert [r.info.status for r in runs] == ["FINISHED"]
    _assert_nowhere(PLANTED, result, tmp_path, store, runs)  # downloads the artifacts
    resolved = tmp_path / "_art" / runs[0].info.run_id / "config" / "resolved.yaml"
    assert f"uri: {pg.url('mlflow', password=False)}" in resolved.read_text()


# ---------------------------------------------------------------------------------- helpers
def _bench(cwd: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    for name in ("PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        environ.pop(name, None)  # the password must come from the command line here
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=600, check=False)


def _runs(url: str, experiment: str) -> list:
    ids = tracking.experiments(url)
    return tracking.search_all_runs(url, [ids[experiment]]) if experiment in ids else []


def _assert_nowhere(secret: str, result: subprocess.CompletedProcess, folder: Path,
                    url: str | None = None, runs: list | None = None) -> None:
    """`secret` in no console output, no file under `folder` (Hydra's outputs/ and multirun/
    trees), and no param, tag or artifact of `runs` on the server `url`."""
    assert secret not in result.stdout and secret not in result.stderr
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    if not runs:
        return
    import mlflow

    for run in runs:
        assert secret not in json.dumps([run.data.params, run.data.tags])
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, tracking_uri=url,
                                                    dst_path=str(folder / "_art" / run.info.run_id))
        for path in Path(local).rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
