"""Everything that talks to MLflow: store checks, run life cycle, params, tags, artifacts,
and reading runs back. No other module of bench imports mlflow (tests/test_layout.py checks)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, TrackingError

TRACKED_PACKAGES = ("bench", "scikit-learn", "xgboost", "keras", "tensorflow", "mlflow",
                    "hydra-core", "optuna", "pandas", "numpy")
# Top-level config keys that do not change what a run computes (where it is logged, where the
# data lives, Hydra's own settings, how latency is measured, whether finished cells are
# reused). The one list: config ids, sweep base ids and the report's "what differs between
# cells" all leave exactly these out.
RUN_CONTEXT_KEYS = ("tracking", "paths", "hydra", "evaluation", "resume", "resume_code",
                    "verbosity", "progress")
# config_id also leaves out `seed`, so the repetitions of one cell share their id.
CONFIG_ID_EXCLUDED = ("seed", *RUN_CONTEXT_KEYS)
MAX_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call
MAX_PARAM_LENGTH = 6000


def preflight(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before any data is loaded or model trained, if the store is unusable.

    The store must be reachable (`check_reachable`); a sqlite store's folder is created.
    Messages never show a password (bench.secrets.mask).
    """
    check_reachable(uri, timeout_s)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    open_store(uri, create=False)  # once per process: orphaned runs ended KILLED


def check_parent_run(uri: str, run_id: str | None) -> None:
    """ConfigError unless `run_id` (tracking.parent_run_id, or $BENCH_PARENT_RUN_ID that a
    sweep exports) is a run of the store `uri`: MLflow refused it with a traceback only when
    the run was created, after the data was loaded."""
    if not run_id:
        return
    from mlflow.exceptions import MlflowException

    env = "BENCH_PARENT_RUN_ID"  # bench.sweeps.callback.PARENT_RUN_ENV
    key = "tracking.parent_run_id" + (f" (from ${env})" if os.environ.get(env) == run_id else "")
    try:
        store_client(uri).get_run(run_id)
    except MlflowException:
        raise ConfigError(f"{key}={run_id!r}: no such run in {mask_secrets(uri)}") from None


def check_store(uri: str, key: str = "tracking.uri") -> None:
    """For the commands that read a store (report, register, score): a TrackingError naming
    `key` unless the store exists and answers. A sqlite store whose file is missing is not
    created (MLflow would create an empty one and answer "nothing found")."""
    if not store_exists(uri):
        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        raise TrackingError(f"{key}={mask_secrets(uri)}: no MLflow store there ({path} does "
                            "not exist or is empty), e.g. sqlite:///mlruns/mlflow.db")
    check_reachable(uri, key=key)


def uri_setting(uri: str, key: str = "tracking.uri") -> str:
    """`key`, saying so when its value came from $MLFLOW_TRACKING_URI (tracking.uri's
    default), so that an error about the store names where to change it."""
    from bench.secrets import tracking_uri_from_env

    if key == "tracking.uri" and uri and tracking_uri_from_env() == uri:
        return "tracking.uri (from $MLFLOW_TRACKING_URI)"
    return key


def check_scheme(uri: str, key: str = "tracking.uri") -> None:
    """A TrackingError naming `key` unless `uri` is a kind of store MLflow 3 opens: a database
    (sqlite:///, postgresql://, mysql://, mssql://, with or without a +driver), an MLflow
    server (http(s)://) or Databricks. A folder (./mlruns, file://) only with
    MLFLOW_ALLOW_FILE_STORE=true, as MLflow itself requires (it raised that from deep inside
    a run, after the data was loaded)."""
    shown = uri_setting(uri, key)
    scheme = (uri.split(":", 1)[0].split("+", 1)[0].lower()
              if "://" in uri or uri.startswith("databricks") else "")
    if scheme in ("", "file"):
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1"):
            return
        raise TrackingError(f"{shown}={mask_secrets(uri)}: a folder store, which MLflow 3 opens "
                            "only with MLFLOW_ALLOW_FILE_STORE=true (it is in maintenance "
                            f"mode); use a database, e.g. {key}=sqlite:///mlruns/mlflow.db")
    if scheme not in ("sqlite", "http", "https", *SQL_SERVER_SCHEMES, "databricks",
                      "databricks-uc", "uc"):
        raise TrackingError(f"{shown}={mask_secrets(uri)}: not a kind of store MLflow opens "
                            f"(scheme {scheme!r}); use sqlite:///mlruns/mlflow.db, "
                            "postgresql://..., mysql://..., mssql://... or http(s)://host:port")


def check_reachable(uri: str, timeout_s: float = 5.0, key: str = "tracking.uri") -> None:
    """A TrackingError naming `key` (the setting or option that gave `uri`; password masked)
    unless the store answers within `timeout_s`: an
    http(s) server on GET /health, a PostgreSQL/MySQL store with a connection (its driver
    installed, `check_database`). Local stores have nothing to reach. MLflow's own client
    retries an unreachable server for minutes before it gives up. A kind of store MLflow
    does not open is refused first (`check_scheme`)."""
    check_scheme(uri, key)
    shown = uri_setting(uri, key)
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                if response.status != 200:
                    raise TrackingError(mask_secrets(
                        f"MLflow server {uri} answered {response.status} on /health"))
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise TrackingError(mask_secrets(
                f"cannot reach the MLflow tracking server {shown}={uri} ({error}). Start it, "
                f"or use the local store: {key}=sqlite:///mlruns/mlflow.db")) from error
    elif uri.startswith(SQL_SERVER_SCHEMES):
        check_database(uri, shown, timeout_s)


def default_artifact_location(uri: str) -> str | None:
    """For a sqlite store, artifacts sit beside the database (mlruns/artifacts)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        return (db.parent / "artifacts").as_uri()
    return None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": value}; lists are kept as values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_id(unresolved: Mapping[str, Any], choices: Mapping[str, Any]) -> str:
    """Stable 12-hex id of what a run computes: the config without CONFIG_ID_EXCLUDED (seed,
    tracking, paths, hydra, evaluation), plus the chosen group options.

    Uses the unresolved config, so `${seed}` interpolations stay symbolic and repetitions of
    one cell over seeds share the id.
    """
    kept = {k: v for k, v in unresolved.items() if k not in CONFIG_ID_EXCLUDED}
    kept["_choices"] = {k: v for k, v in choices.items() if not k.startswith("hydra")}
    blob = json.dumps(kept, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    """{distribution: installed version or "absent"} of TRACKED_PACKAGES."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:  # what this process imported stays what it runs
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@functools.cache
def git_commit() -> str:
    """The commit of bench's source checkout ("unknown" outside git), read once per process:
    the code a process runs is the code it imported, whatever is committed meanwhile."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path(__file__).parent, check=False)
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


@contextmanager
def tracked_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, str],
                parent_run_id: str | None = None) -> Iterator[Any]:
    """An active MLflow run; ends FINISHED, or FAILED with the traceback logged on error
    (KILLED, tagged bench.killed_reason, on Ctrl-C or SIGTERM).

    The run is never left RUNNING: MLflow's context manager ends it on any exception, after
    the traceback is saved as `error/traceback.txt` and the `error` tag; a process killed
    outright leaves it to the next command's `reap_orphans` (host and pid are tagged).
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    experiment_id = get_or_create_experiment(uri, experiment)
    run = retry_locked(lambda: mlflow.start_run(
        run_name=run_name, tags={**tags, **process_tags()}, experiment_id=experiment_id,
        parent_run_id=parent_run_id))
    with run:
        try:
            yield run
        except BaseException as error:
            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
            if isinstance(error, KeyboardInterrupt):  # Ctrl-C or SIGTERM (errors.Interrupted)
                mlflow.set_tag(KILLED_TAG, f"interrupted ({type(error).__name__}: {error})")
                mlflow.end_run("KILLED")
            raise


def log_params(params: Mapping[str, Any], run_id: str | None = None,
               uri: str | None = None) -> None:
    """Log params in batches of 100 (MLflow's limit), values cut to 6000 characters; to the
    active run, or to `run_id` in the store `uri`."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
    run_id, store = _target_run(run_id, uri)
    for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
        store.log_batch(run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])


def metric_list(metrics: Mapping[str, Any], step: int = 0, model_id: str | None = None
                ) -> list[Any]:
    """MLflow Metric entities of the numeric values in `metrics` (bools and text skipped),
    linked to the logged model `model_id` when given."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step, model_id=model_id) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)]


def log_metrics(metrics: Mapping[str, float], step: int | None = None,
                run_id: str | None = None, uri: str | None = None,
                model_id: str | None = None) -> None:
    """Log numeric metrics in one request; to the active run, or to `run_id` in `uri`; with
    `model_id`, also as that logged model's metrics (MLflow 3's Logged Models view)."""
    run_id, store = _target_run(run_id, uri)
    store.log_batch(run_id, metrics=metric_list(metrics, step or 0, model_id))


@functools.lru_cache(maxsize=16)
def _client_for(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(uri, registry_uri=uri)  # models are registered in the runs' store


def store_client(uri: str | None = None) -> Any:
    """The MlflowClient of the store `uri` (None: the current tracking URI), one per URI and
    process: building a client costs ~20 ms, and a run makes dozens of calls."""
    if uri is None:
        import mlflow

        uri = mlflow.get_tracking_uri()
    return _client_for(str(uri))


def _target_run(run_id: str | None, uri: str | None) -> tuple[str, Any]:
    """(run id, client): the given run in the store `uri`, else the active run."""
    import mlflow

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("no active MLflow run and no run_id given")
        run_id = active.info.run_id
    return run_id, store_client(uri)


def log_text(text: str, path: str) -> None:
    import mlflow

    mlflow.log_text(text, path)


def log_dict(data: Mapping[str, Any], path: str) -> None:
    import mlflow

    mlflow.log_dict(dict(data), path)


def log_artifacts(folder: str | Path, artifact_path: str | None = None,
                  run_id: str | None = None, uri: str | None = None) -> None:
    """Every file under `folder` as artifacts of the active run (or of `run_id` in `uri`)."""
    run_id, store = _target_run(run_id, uri)
    store.log_artifacts(run_id, str(folder), artifact_path)


# ------------------------------------------------------------------ experiments, reading back
def get_or_create_experiment(uri: str, name: str) -> str:
    """The id of experiment `name` in the store `uri`, created (artifacts beside a sqlite
    store) when missing. A store that cannot be used, or an experiment of that name that is
    deleted (MLflow neither starts runs in it nor creates another of its name), is a
    TrackingError; commands check their experiment options up front with
    `check_experiment`."""

    open_store(uri)  # a new store's schema is created once, under a lock
    store = store_client(uri)
    try:
        existing = store.get_experiment_by_name(name)
        if existing is None:
            try:
                return store.create_experiment(
                    name, artifact_location=default_artifact_location(uri))
            except Exception:  # a parallel worker created it first (Ray, joblib on a server)
                existing = store.get_experiment_by_name(name)
                if existing is None:
                    raise
    except Exception as error:
        raise TrackingError(mask_secrets(f"cannot use MLflow store {uri}: {error}")) from error
    if existing.lifecycle_stage != "active":
        raise TrackingError(_deleted(existing, f"experiment {name!r}", uri))
    return existing.experiment_id


def check_experiment(uri: str | None, name: str, key: str) -> None:
    """Before a command writes anything: ConfigError naming `key` for an experiment name
    MLflow refuses (empty, too long) and, given the store `uri` (checked already), for an
    experiment of that name that is deleted there (logging to it failed at the end, after
    the command's files were written)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_experiment_name

    try:
        _validate_experiment_name(name)
    except MlflowException as error:
        shown = repr(name if len(name) <= 80 else name[:77] + "...")
        raise ConfigError(f"{key} {shown}: {error.message}") from None
    if uri is None or not store_exists(uri):  # a store not created yet (by open_store, under
        return  # its lock) has no deleted experiment; MLflow would create it here, unlocked
    try:
        existing = store_client(uri).get_experiment_by_name(name)
    except Exception as error:
        raise TrackingError(mask_secrets(f"cannot read MLflow store {uri}: {error}")) from error
    if existing is not None and existing.lifecycle_stage != "active":
        raise ConfigError(_deleted(existing, f"{key} {name!r}", uri))


def _deleted(experiment: Any, named: str, uri: str) -> str:
    return mask_secrets(
        f"{named}: the experiment is deleted in {uri} (MLflow logs no run to it, nor creates "
        "another of that name); restore it with `mlflow experiments restore --experiment-id "
        f"{experiment.experiment_id}` or name another experiment")


def command_uri(given: str | None, default: str, option: str = "--tracking-uri"
                ) -> tuple[str, str]:
    """(store URI, the setting it came from, for messages) of the commands with a
    `--tracking-uri` option (report, register): the option's value when given (an empty one
    is a ConfigError: a script's unset variable must not read another store), else
    $MLFLOW_TRACKING_URI, else `default`. An empty or blank $MLFLOW_TRACKING_URI means unset,
    as for bench's main command (bench.secrets.hide_env_passwords) and bench score; a
    password in it is moved out as the main command moves it, so the report's header never
    shows it. Errors about a URI from the environment name MLFLOW_TRACKING_URI."""
    from bench.secrets import hide_env_passwords

    if given is not None:
        if not given.strip():
            raise ConfigError(f"{option} is empty: name an MLflow store, e.g. "
                              f"{option} {default}")
        return given, option
    hide_env_passwords([])  # removes an empty value; hides a password
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return (env, "MLFLOW_TRACKING_URI") if env else (default, option)


def experiments(uri: str) -> dict[str, str]:
    """{name: experiment id} of the active experiments in the store `uri`."""
    from mlflow.entities import ViewType

    found = store_client(uri).search_experiments(view_type=ViewType.ACTIVE_ONLY)
    return {e.name: e.experiment_id for e in found}


def search_all_runs(uri: str, experiment_ids: list[str], filter_string: str = "",
                    page_size: int = 1000) -> list[Any]:
    """Every active run of the experiments matching `filter_string` (MLflow search syntax),
    following MLflow's page tokens to the end. Returns mlflow Run entities."""
    from mlflow.entities import ViewType

    store = store_client(uri)
    runs: list[Any] = []
    token = None
    while True:
        page = store.search_runs(experiment_ids, filter_string=filter_string,
                                 run_view_type=ViewType.ACTIVE_ONLY, max_results=page_size,
                                 page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def get_run(uri: str, run_id: str) -> Any:
    """The mlflow Run entity `run_id` of the store `uri` (info, data.params/metrics/tags)."""

    return store_client(uri).get_run(run_id)


# ---- reading runs back: report, analyze
@dataclass
class ReportRun:
    """The run a report is logged to: its id, and the headline metrics to log when it ends."""

    run_id: str
    metrics: dict[str, Any] = field(default_factory=dict)


@contextmanager
def report_run(uri: str, experiment: str, run_name: str, folder: str | Path,
               tags: Mapping[str, str], params: Mapping[str, Any] | None = None
               ) -> Iterator[ReportRun]:
    """One run holding a written report (bench.report, bench.analyze).

    Params are logged at the start; the body fills `ReportRun.metrics`; on leaving, its numeric
    values (NaN, bools and text left out) are logged and every file under `folder` becomes an
    artifact. If the body raises, the run ends FAILED with its traceback (see tracked_run).
    """
    with tracked_run(uri, experiment, run_name, tags) as run:
        report = ReportRun(run.info.run_id)
        if params:
            log_params(params)
        yield report
        log_metrics({k: v for k, v in report.metrics.items() if v == v})  # v != v: NaN
        log_artifacts(folder)


# ------------------------------------------------------------ shared stores: servers, secrets
SQL_SERVER_SCHEMES = ("postgresql", "postgres", "mysql", "mssql")
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]",
                   "pymysql": "pymysql", "mysqldb": "mysqlclient"}


def mask_secrets(text: str) -> str:
    """`text` with URL passwords and secret environment values replaced by *** (for anything
    printed or logged: error messages, the resolved-config artifact)."""
    from bench.secrets import mask

    return mask(text)


def check_database(url: str, key: str, timeout_s: float = 5.0) -> None:
    """A SQLAlchemy database URL (postgresql://, postgresql+psycopg://, ...) must have its
    driver installed and accept a connection within `timeout_s`; else TrackingError naming
    `key` and the URL with its password masked. Loads no data; used before any is."""
    import sqlalchemy
    from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

    shown = f"{key}={mask_secrets(url)}"
    try:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args=_timeout_args(url, timeout_s))
    except NoSuchModuleError as error:
        raise TrackingError(f"{shown}: unknown database dialect ({error})") from error
    except ModuleNotFoundError as error:
        package = DRIVER_PACKAGES.get(str(error.name), error.name)
        raise TrackingError(f"{shown}: the database driver '{error.name}' is not installed "
                            f"(pip install {package})") from error
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise TrackingError(mask_secrets(f"cannot connect to the database {shown}: "
                                         f"{' '.join(reason)}")) from error
    finally:
        engine.dispose()


def _timeout_args(url: str, timeout_s: float) -> dict[str, Any]:
    if url.startswith(("postgresql", "postgres")):
        return {"connect_timeout": max(1, round(timeout_s))}  # libpq: whole seconds
    return {}


def check_optuna_storage(storage: str | None, key: str = "hydra.sweeper.storage") -> None:
    """Before a sweep starts: a database URL is checked like a tracking store (driver,
    connection); a journal file's folder is created. None (in memory) needs nothing."""
    if storage is None or str(storage) in ("", "None", "null"):
        return
    storage = str(storage)
    if "://" in storage:
        if not storage.startswith("sqlite"):
            check_database(storage, key)
        return
    Path(storage).parent.mkdir(parents=True, exist_ok=True)


def prepare_store(uri: str) -> None:
    """The tracking store checked and its schema created, by the one process that launches a
    grid, before any worker starts."""
    preflight(uri)
    open_store(uri)


# ---- models and datasets
# The logged model is the run's decision (bench.models.decision): pipeline + VAL threshold,
# stored without unrestricted pickle and loaded through the loader module
# `bench.models.decision` (a pyfunc model with no pickle and no code of its own).
MODEL_NAME = "model"
# distribution names of the top-level modules a pipeline may use
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "xgboost": "xgboost", "keras": "keras",
                  "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "skops": "skops",
                  "cloudpickle": "cloudpickle", "mlflow": "mlflow", "tensorflow": "tensorflow"}


def model_requirements(pipeline: Any, model_format: str) -> list[str]:
    """Pinned pip requirements of a decision: mlflow, pandas, numpy, scipy, the loader's
    format (skops or cloudpickle) and the libraries whose classes the pipeline holds
    (a logreg pipeline lists no tensorflow, keras, optuna or hydra). bench itself is not
    listed: it is not on PyPI, and a same-named package there must never be installed in
    its place; the environment that loads the model needs bench installed (docs/models.md)."""
    from bench.models.decision import pipeline_modules

    modules = {"mlflow", "pandas", "numpy", "scipy", "sklearn",
               "skops" if model_format == "skops" else "cloudpickle"} | pipeline_modules(pipeline)
    if "keras" in modules:
        modules.add("tensorflow")  # Keras 3's backend here
    out = []
    for module in sorted(modules):
        name = _DISTRIBUTIONS.get(module)
        if name is None:
            continue
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class PreparedModel:
    """A run's decision written to a temporary folder, ready for `log_model`."""

    folder: Path
    signature: Any
    requirements: list[str]
    metadata: dict[str, Any]

    def discard(self) -> None:
        """Remove the folder (done by `log_model` once logged)."""
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def prepare_model(pipeline: Any, input_example: Any, threshold: float,
                  metadata: Mapping[str, Any], model_format: str = "skops") -> PreparedModel:
    """Write the decision (fitted Pipeline at its VAL `threshold`) of the active run to a
    temporary folder: done before the run's figures start, so that the skops file is written
    by the helper process (bench.helper) before it begins drawing.

    `predict(frame)` returns `anomaly_score` (float64, higher = more likely attack) and `flag`
    (int64, score >= threshold); the signature names both. `metadata` (strategy, dataset, ...)
    goes with the run id into decision.json and the MLmodel's metadata. `model_format`:
    "skops" (default, no pickle) or "cloudpickle" (custom estimators; loading needs unsafe).
    """
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    from bench import __version__
    from bench.models.decision import Decision, save_decision

    run_id = mlflow.active_run().info.run_id
    meta = {"run_id": run_id, **metadata, "score_orientation": "higher = more likely attack",
            "format": model_format, "bench_version": __version__, "bench_commit": git_commit()}
    decision = Decision(pipeline, float(threshold), meta)
    with warnings.catch_warnings():  # integer columns: the data has no missing values
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column", category=UserWarning)
        signature = infer_signature(input_example, decision.predict(input_example)
                                    .reset_index(drop=True))
    from bench import scratch

    tmp = scratch.make("model")  # removed by a later process if this one is killed
    try:
        folder = save_decision(decision, tmp / "decision", model_format)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreparedModel(folder, signature, model_requirements(pipeline, model_format),
                         {"threshold": float(threshold), **meta})


def log_model(model: PreparedModel) -> str:
    """Log the prepared decision as the MLflow model `model` of the active run and remove its
    folder; returns its logged model id (MLflow 3), for the metrics logged after it
    (`log_metrics(..., model_id=)`). Log it before the run's metrics: MLflow links every
    metric the run already has to a new model with one query per metric (~30 ms a cell)."""
    import warnings

    import mlflow

    try:
        with warnings.catch_warnings():
            # no input example: logging one would make MLflow load and run the model again
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            warnings.filterwarnings("ignore", message=".*[Ii]nteger column",
                                    category=UserWarning)
            with _requirements_taken_as_installed():
                info = mlflow.pyfunc.log_model(
                    name=MODEL_NAME, loader_module="bench.models.decision",
                    data_path=str(model.folder), signature=model.signature,
                    pip_requirements=model.requirements, metadata=model.metadata)
    finally:
        model.discard()
    return info.model_id


@contextmanager
def _requirements_taken_as_installed() -> Iterator[None]:
    """Around log_model: MLflow's check that the model's pip requirements match the installed
    packages is skipped. It first maps every installed distribution's files to its modules
    (~0.35 s, in every process that logs a model, a third of a cheap cell), and it cannot find
    a mismatch here: `model_requirements` pins exactly the installed versions. MLflow has no
    setting for it (MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK is another check), so the function is
    swapped out for the call; if a later MLflow moves it, nothing is skipped."""
    from mlflow.utils import environment

    check = getattr(environment, "warn_dependency_requirement_mismatches", None)
    if check is None:
        yield
        return
    environment.warn_dependency_requirement_mismatches = lambda requirements: None
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = check


def log_frame(frame: Any, path: str) -> None:
    """A DataFrame as a Parquet artifact at `path` (e.g. reports/test_scores.parquet)."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        frame.to_parquet(local)
        mlflow.log_artifact(str(local), str(Path(path).parent) if "/" in path else None)


def log_dataset_inputs(splits: Mapping[str, Any], name: str,
                       sources: Mapping[str, tuple[str, str]]) -> None:
    """Record TRAIN / VAL / TEST as MLflow dataset inputs of the active run (no data uploaded).

    `splits`: {"train"|"val"|"test": feature frame}; `sources`: {split: (path, sha256 of the
    source file)}. The digest joins the file's sha256, the split and the frame's row index
    (the rows drawn), so runs on the same rows share it; the profile holds the row count.
    """
    import warnings

    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.models import infer_signature

    contexts = {"train": "training", "val": "validation", "test": "test"}
    inputs = []
    for split, frame in splits.items():
        path, sha = sources.get(split, ("", ""))
        digest = hashlib.sha256(f"{sha}:{split}:".encode()
                                + frame.index.to_numpy().tobytes()).hexdigest()[:12]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ii]nteger column")
            schema = infer_signature(frame.head(100)).inputs
        dataset = Dataset(
            name=f"{name}-{split}", digest=digest, source_type="local",
            source=json.dumps({"uri": path}),
            schema=json.dumps({"mlflow_colspec": schema.to_dict()}),
            profile=json.dumps({"num_rows": len(frame), "num_elements": frame.size,
                                "source_sha256": sha}))
        inputs.append(DatasetInput(dataset, [InputTag("mlflow.data.context", contexts[split]),
                                             InputTag("rows", str(len(frame)))]))
    run_id, store = _target_run(None, None)
    store.log_inputs(run_id, datasets=inputs)


def split_sources(notes: Mapping[str, str], data_dir: str | None,
                  fallback: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """{split: (source path, sha256)} from a dataset's notes (data.file.<role>,
    data.sha256.<role>, known at load time: nothing is re-hashed). TRAIN and VAL come from the
    `train` file; TEST from the `test` file, else from `train` (re-split). A dataset without
    files (synthetic) gets the sha256 of its config `fallback` and source "generated"."""
    out = {}
    for split, role in (("train", "train"), ("val", "train"), ("test", "test")):
        if f"data.sha256.{role}" not in notes:
            role = "train"
        sha = notes.get(f"data.sha256.{role}")
        if sha is None:
            blob = json.dumps(dict(fallback), sort_keys=True, default=str).encode()
            out[split] = ("generated", hashlib.sha256(blob).hexdigest())
            continue
        name = notes.get(f"data.file.{role}", "")
        out[split] = (str(Path(data_dir) / name) if data_dir else name, sha)
    return out


def model_uri_of(ref: str) -> str:
    """`models:/name@alias`, `runs:/id/model` or any MLflow model URI as given; a bare run id
    becomes runs:/<id>/model."""
    return ref if ":/" in ref else f"runs:/{ref}/{MODEL_NAME}"


def download_model(uri: str, ref: str, dst: str | Path, key: str = "tracking.uri"
                   ) -> tuple[Path, dict[str, Any]]:
    """Download the model `ref` (run id or model URI) from the store `uri` into `dst`; a store
    that does not exist or answer is a TrackingError naming `key` (the setting that gave uri).

    Returns (the decision folder, {"run_id", "inputs": [(column, mlflow type)], "model_uri",
    "folder": the local copy of the model, which messages name by model_uri}); reads
    files only (MLmodel, decision.json), never loads Python objects. TrackingError when the
    run, model or alias is unknown or is not a bench decision; UnsafeModelError (one line,
    naming `<model URI>/MLmodel`) when its MLmodel file cannot be read.
    """
    import mlflow
    from mlflow.models import Model

    check_store(uri, key=key)
    mlflow.set_tracking_uri(uri)
    model_uri = model_uri_of(ref)
    try:
        local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(dst),
                                                         tracking_uri=uri))
    except Exception as error:
        hint = _latest_runs(uri) if model_uri.startswith("runs:/") else ""
        unlogged = _run_without_model(uri, model_uri)
        if unlogged:
            raise TrackingError(mask_secrets(f"{unlogged}{hint}")) from error
        raise TrackingError(mask_secrets(f"cannot get model {model_uri} from {uri}: "
                                         f"{' '.join(str(error).split())}{hint}")) from error
    from bench.models.decision import UnsafeModelError, inside, reason

    def named(text: str) -> str:  # by the model's URI, not the temporary download folder
        return text.replace(str(local), model_uri)

    try:
        model = Model.load(str(local))
        flavors = model.flavors
        pyfunc = flavors.get("python_function", {}) if isinstance(flavors, dict) else None
        schema = model.get_input_schema()
        inputs = [(spec.name, spec.type.name) for spec in schema.inputs] if schema else []
    except Exception as error:  # a damaged MLmodel (not YAML, a bad signature, ...)
        raise UnsafeModelError(named(f"{local / 'MLmodel'}: not a readable MLflow model file "
                                     f"({reason(error)})")) from error
    if not isinstance(pyfunc, dict) or pyfunc.get("loader_module") != "bench.models.decision":
        raise TrackingError(f"{model_uri} is not a bench decision model (logged before bench "
                            "stored thresholds with models?): re-run the experiment")
    try:
        data = inside(local, pyfunc.get("data"), "MLmodel's python_function data")
    except UnsafeModelError as error:
        raise UnsafeModelError(named(str(error))) from None
    return data, {"run_id": model.run_id, "inputs": inputs, "model_uri": model_uri,
                  "folder": str(local)}


def _run_without_model(uri: str, model_uri: str) -> str:
    """"run <id> is FAILED and has no logged model" (or FINISHED/RUNNING ... has none) when
    `model_uri` is runs:/<id>/model of a run that exists; "" otherwise (an unknown run)."""
    if not model_uri.startswith("runs:/"):
        return ""
    run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
    try:
        run = store_client(uri).get_run(run_id)
    except Exception:  # an unknown run: the download's own error says so
        return ""
    status = run.info.status
    why = run.data.tags.get("error", "")
    return (f"run {run_id} is {status} and has no logged model"
            + (f" (its error: {' '.join(why.split())[:300]})" if status == "FAILED" and why
               else "") + ": score a FINISHED run")


def _latest_runs(uri: str, count: int = 5) -> str:
    """"; latest FINISHED runs: <id> (<dataset>/<model>), ..." of the store, to pick a run id
    from; empty when there are none or the store cannot say."""
    try:
        ids = list(experiments(uri).values())
        runs = store_client(uri).search_runs(
            ids, "attributes.status = 'FINISHED'", max_results=count,
            order_by=["attributes.start_time DESC"]) if ids else []
    except Exception:  # only a hint: the error it is added to says what went wrong
        return ""
    named = [f"{run.info.run_id} ({run.data.tags.get('dataset', '?')}/"
             f"{run.data.tags.get('model', '?')})" for run in runs]
    return f"; latest FINISHED runs: {', '.join(named)}" if named else ""


def register_best(uri: str, dataset: str, metric: str = "val_f1", alias: str = "champion",
                  name: str | None = None, experiment: str | None = None) -> dict[str, Any]:
    """Register the best run of `dataset` by the VAL metric `metric` (never TEST) as a new
    version of the registered model `name` (default `bench-<dataset>`), with `alias`.

    Only finished runs tagged `dataset=<dataset>` with a logged model count; ties go to the
    earliest run. Returns {"name", "version", "run_id", metric}. ConfigError for a metric
    that is not a VAL metric; TrackingError when no run qualifies.
    """
    import math

    from bench.report.tables import higher_is_better

    if not metric.startswith("val_"):
        raise ConfigError(f"metric={metric}: the best pipeline is chosen on VAL, use a val_* "
                          "metric (e.g. val_f1, val_pr_auc)")
    name = name or f"bench-{dataset}"
    found = experiments(uri)
    if experiment is not None and experiment not in found:
        raise TrackingError(f"--experiment {experiment!r}: no such experiment in "
                            f"{mask_secrets(uri)}; experiments: {', '.join(sorted(found))}")
    ids = list(found.values()) if experiment is None else [found[experiment]]
    runs = search_all_runs(uri, ids, f"tags.dataset = {_quoted(dataset)} and "
                                     "attributes.status = 'FINISHED'") if ids else []
    runs = [r for r in runs if math.isfinite(r.data.metrics.get(metric, math.nan))]
    if not runs:
        raise TrackingError(f"no finished run of dataset={dataset} with metric {metric} "
                            f"in {mask_secrets(uri)}")
    sign = 1 if higher_is_better(metric) else -1  # val_fpr: the lowest is the best
    best = max(runs, key=lambda r: (sign * r.data.metrics[metric], -r.info.start_time))
    return register_run(uri, best.info.run_id, name, alias,
                        f"best of {len(runs)} run(s) of dataset={dataset} by {metric}", metric)


def _quoted(value: str) -> str:
    """`value` as a string literal of MLflow's search filter (a quote in it would end the
    literal: `it's` was a syntax error, `x' or tags.model = 'y` another filter)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ConfigError(f"{value!r}: a value with both ' and \" cannot be searched for")


def check_registration(name: str | None, alias: str,
                       keys: tuple[str, str] = ("--name", "--alias")) -> None:
    """ConfigError, before the registry is written, for a model name or alias MLflow would
    refuse after the model and its version exist (an alias-less version was left behind).
    `keys`: the options that gave the name and the alias, for the message; name None: the
    alias alone (bench.report checks it before the names are known)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_name

    for key, value, check in ((keys[0], name, _validate_model_name),
                              (keys[1], alias, _validate_model_alias_name)):
        if value is None:
            continue
        try:
            check(value)
        except MlflowException as error:
            raise ConfigError(f"{key} {value!r}: {error.message}") from None
    if alias.lower() == "latest" or re.fullmatch(r"v\d+", alias.lower()):
        raise ConfigError(f"{keys[1]} {alias!r}: MLflow reserves 'latest' and v<number> for "
                          "versions; choose another alias (e.g. champion)")


def register_run(uri: str, run_id: str, name: str, alias: str, why: str,
                 metric: str) -> dict[str, Any]:
    """Register the logged model of `run_id` as a new version of `name` with `alias`; the
    description says `why` it was chosen and names the pipeline. Returns {"name", "version",
    "run_id", metric, "alias"}."""
    import mlflow

    check_registration(name, alias)
    mlflow.set_tracking_uri(uri)  # MLflow resolves the version's source models:/<id> in the
    # current store, not the client's (it looked in ./mlflow.db, and made that file)
    client = store_client(uri)
    best = client.get_run(run_id)
    tags, metrics = best.data.tags, best.data.metrics
    description = (f"{why} ({metric} {metrics.get(metric, float('nan')):.4f}): "
                   f"selector={tags.get('selector')} model={tags.get('model')} "
                   f"threshold={tags.get('threshold')} seed={tags.get('seed')}; "
                   f"test_f1={metrics.get('test_f1')}")
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name)
    else:
        try:
            current = client.get_model_version_by_alias(name, alias)
        except Exception:
            current = None
        if current is not None and current.run_id == run_id:  # not a second, equal version
            return {"name": name, "version": current.version, "run_id": run_id,
                    metric: metrics.get(metric), "alias": alias}
        # a version of this run without the alias: a registration killed before the alias
        # was set (the versions and the alias are two writes); it gets the alias now
        earlier = client.search_model_versions(
            f"name={_quoted(name)} and run_id={_quoted(run_id)}")
        if earlier:
            version = max(earlier, key=lambda v: int(v.version))
            client.set_registered_model_alias(name, alias, version.version)
            return {"name": name, "version": version.version, "run_id": run_id,
                    metric: metrics.get(metric), "alias": alias}
    outputs = best.outputs.model_outputs if best.outputs else []
    model_id = outputs[0].model_id if outputs else None  # MLflow 3: the run's logged model
    source = f"models:/{model_id}" if model_id else f"runs:/{run_id}/{MODEL_NAME}"
    version = client.create_model_version(
        name, source, run_id=run_id, description=description,
        tags={"selected_by": metric}, model_id=model_id)
    client.set_registered_model_alias(name, alias, version.version)
    return {"name": name, "version": version.version, "run_id": run_id,
            metric: metrics.get(metric), "alias": alias}


# ---- sweeps: parent runs
# The sweep's MLflow callback (bench/sweeps/callback.py) writes to runs by id: the parent run is
# never the active run of the sweeping process, and trial runs belong to the jobs.
MAX_TAG_LENGTH = 5000  # tags the sweep writes (error messages) are cut here


def create_run(uri: str, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> str:
    """A new RUNNING run (not made active) in `experiment_id`; returns its id."""

    run = store_client(uri).create_run(experiment_id, tags={**tags, **process_tags()},
                                       run_name=run_name)
    return run.info.run_id


def set_tags(uri: str, run_id: str, tags: Mapping[str, Any]) -> None:
    """Tags (values as text, cut to 5000 characters) on `run_id`, in one request."""
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:MAX_TAG_LENGTH]) for k, v in tags.items()]
    store_client(uri).log_batch(run_id, tags=items)


def leave_running() -> str:
    """Make no run active but leave the active run RUNNING; returns its id. Its end is
    recorded later with `set_terminated` (bench.experiment: a grid cell whose figures are still
    being drawn). MLflow has no call to detach a run without ending it, so the run is ended
    with the status RUNNING, which records an end time that set_terminated replaces."""
    import mlflow

    run_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="RUNNING")
    return run_id


def run_status(uri: str, run_id: str) -> str:
    return str(store_client(uri).get_run(run_id).info.status)


def set_terminated(uri: str, run_id: str, status: str) -> None:
    """End `run_id` with `status` (FINISHED, FAILED or KILLED)."""

    store_client(uri).set_terminated(run_id, status)


def log_text_to(uri: str, run_id: str, text: str, path: str) -> None:
    """`text` as the artifact file `path` of `run_id`."""

    store_client(uri).log_text(run_id, text, path)


def log_artifact_to(uri: str, run_id: str, local_path: str | Path,
                    artifact_path: str | None = None) -> None:
    """One local file as an artifact of `run_id`, under the folder `artifact_path`."""

    store_client(uri).log_artifact(run_id, str(local_path), artifact_path)


def last_active_run() -> Any:
    """The run this process last made active (None if none): a job's trial run."""
    import mlflow

    return mlflow.last_active_run()


# ---- live logging
# Names, params and per-epoch metrics that make the MLflow UI readable while runs go on.
# Params leave these out: Hydra internals, machine paths, the store and the parent's id (a tag).
PARAMS_LEFT_OUT = ("hydra.", "paths.", "tracking.uri", "tracking.parent_run_id")


def run_name(choices: Mapping[str, str], seed: Any, trial: Any = None) -> str:
    """What differs between runs of one experiment: `nslkdd/none/xgboost/s0` (`/t7` for an
    Optuna trial)."""
    name = f"{choices['dataset']}/{choices['selector']}/{choices['model']}/s{seed}"
    return name if trial is None else f"{name}/t{trial}"


def readable_params(resolved: Mapping[str, Any], choices: Mapping[str, str]) -> dict[str, Any]:
    """The resolved config as params a reader can scan: the chosen option of each group
    (`model: xgboost`) instead of `_target_` class paths, no Hydra internals, no absolute paths
    of this machine (the full config stays in the artifact config/resolved.yaml)."""
    import os

    flat = flatten(resolved)
    params: dict[str, Any] = {group: option for group, option in choices.items()}
    for key, value in flat.items():
        if key.endswith("_target_") or key.startswith(PARAMS_LEFT_OUT):
            continue
        if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
            continue
        params[key] = value
    return params


def streaming() -> bool:
    """Whether this process has an active MLflow run to stream to (mlflow never imported
    means none: a model fitted outside a run, e.g. in a unit test, imports nothing)."""
    import sys

    return "mlflow" in sys.modules and sys.modules["mlflow"].active_run() is not None


def log_epoch(prefix: str, logs: Mapping[str, Any], epoch: int) -> None:
    """One epoch's Keras logs as stepped metrics (`model_val_loss` at step = epoch), sent as
    the epoch ends so the UI's curves grow live; no-op without an active run."""
    if streaming():
        log_metrics({f"{prefix}_{k}": v for k, v in logs.items()}, step=epoch)


# ---- resume and orphans
# Every run records the host and process that write it (bench.host, bench.pid, bench.pid_start).
# The first time a process uses a store (`preflight`), the store's schema is created under a
# file lock, and RUNNING runs whose process on this host is gone are ended KILLED
# (`reap_orphans`). `find_finished_cell` answers resume's question (bench/resume.py).
HOST_TAG, PID_TAG, PID_START_TAG = "bench.host", "bench.pid", "bench.pid_start"
KILLED_TAG = "bench.killed_reason"
STORE_LOCK_TIMEOUT_S = 300.0
SQLITE_BUSY_TIMEOUT_MS = 60_000
_opened_stores: set[str] = set()


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22), to tell
    a live process from a later one that reuses its pid; None where /proc is not readable.
    A zombie (killed, not yet waited for) counts as gone: returns "zombie"."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and ')'
    return "zombie" if fields[0] in ("Z", "X") else fields[19]


def process_tags() -> dict[str, str]:
    """{bench.host, bench.pid, bench.pid_start} of this process, put on every run it creates."""
    import os
    import socket

    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid),
            PID_START_TAG: process_start(pid) or ""}


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` on this host still runs and is the one that started at
    `started` (a pid reused by another process counts as gone)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    now = process_start(pid)
    if now == "zombie":
        return False
    return not (started and now is not None and now != started)


def store_exists(uri: str) -> bool:
    """False for a sqlite store whose file does not exist yet (nothing to reuse or reap)."""
    if not uri.startswith("sqlite:///"):
        return True
    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    return path.is_file() and path.stat().st_size > 0


def open_store(uri: str, create: bool = True) -> None:
    """Once per process and store: create a database store's schema, under a file lock beside
    a sqlite file (MLflow migrates a fresh database on first use; concurrent first uses race:
    "table _alembic_tmp_metrics already exists"), then `reap_orphans`. `create=False` (the
    pre-flight check) leaves a sqlite store that does not exist yet alone: a command that fails
    before its run starts creates no store."""
    if uri in _opened_stores or not uri.startswith(("sqlite:", *SQL_SERVER_SCHEMES)):
        return
    if not create and not store_exists(uri):
        return
    from mlflow import MlflowClient

    _sqlite_busy_timeout()
    try:
        with _store_lock(uri):
            _create_sqlite_schema(uri)
            retry_locked(lambda: MlflowClient(uri).search_experiments(max_results=1))
    except TrackingError:
        raise
    except Exception as error:
        raise TrackingError(mask_secrets(f"cannot use MLflow store {uri}: {error}")) from error
    _opened_stores.add(uri)
    reap_orphans(uri)


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on `<sqlite file>.lock` (filelock: fcntl/msvcrt, released when the
    process dies); no lock for server databases, whose migrations MLflow runs in one
    transaction."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock, Timeout

    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    try:
        with FileLock(str(path) + ".lock", timeout=STORE_LOCK_TIMEOUT_S):
            yield
    except Timeout as error:
        raise TrackingError(f"waited {STORE_LOCK_TIMEOUT_S:.0f} s for the lock {error.lock_file} "
                            "of the MLflow store: delete it if no bench command is running"
                            ) from error


def _create_sqlite_schema(uri: str) -> None:
    """A new sqlite store is created in a temporary file and renamed into place once MLflow
    has created and migrated every table: a process killed meanwhile leaves no half-migrated
    store behind ("table datasets already exists" on every later run), only the temporary
    file, removed here next time. Called under the store's lock."""
    import os

    from mlflow import MlflowClient

    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    if path.exists() and path.stat().st_size > 0:
        return
    for stale in path.parent.glob(f".{path.name}.creating-*"):
        stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}"
    MlflowClient(f"sqlite:///{tmp}").search_experiments(max_results=1)
    os.replace(tmp, path)


def _sqlite_busy_timeout() -> None:
    """Every sqlite connection waits up to 60 s for another writer's lock (SQLite's busy
    timeout) instead of failing with "database is locked" after Python's default 5 s."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if getattr(_sqlite_busy_timeout, "installed", False):
        return

    @event.listens_for(Engine, "connect")
    def _busy_timeout(dbapi_connection: Any, record: Any) -> None:
        import sqlite3

        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")

    _sqlite_busy_timeout.installed = True  # type: ignore[attr-defined]


def retry_locked(call: Any, attempts: int = 8, first_wait_s: float = 0.2) -> Any:
    """`call()`, retried with exponential backoff (0.2 s, 0.4 s, ... plus jitter) while it
    fails with SQLite's "database is locked" (a writer upgrading its read lock is refused at
    once, busy timeout or not)."""
    import random

    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if "database is locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(first_wait_s * 2 ** attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def reap_orphans(uri: str) -> list[str]:
    """End KILLED every RUNNING run of the store whose process on this host is gone, with the
    tag bench.killed_reason; returns their ids. Runs of other hosts are left alone (their own
    host's next command ends them)."""
    import socket

    host = socket.gethostname()
    ids = list(experiments(uri).values())
    if not ids:
        return []
    found = retry_locked(lambda: search_all_runs(
        uri, ids, f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"))
    reaped = []
    for run in found:
        tags = run.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if process_alive(pid, tags.get(PID_START_TAG)):
            continue
        reason = (f"process {pid} on {host} died without ending the run (found at "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')} by a bench command)")
        retry_locked(lambda run=run, reason=reason: (
            set_tags(uri, run.info.run_id, {KILLED_TAG: reason}),
            set_terminated(uri, run.info.run_id, "KILLED")))
        reaped.append(run.info.run_id)
    if reaped:
        import logging

        logging.getLogger(__name__).warning(
            "%d run(s) of dead processes were left RUNNING in %s: ended KILLED (%s)",
            len(reaped), mask_secrets(uri), ", ".join(reaped))
    return reaped


def live_runs_of_cell(uri: str, tag: str, value: str) -> list[str]:
    """Ids of the RUNNING runs whose tag `tag` equals `value` (a cell identity) and whose
    process on this host, other than this one, still runs."""
    import socket

    ids = list(experiments(uri).values()) if store_exists(uri) else []
    if not ids:
        return []
    host = socket.gethostname()
    found = retry_locked(lambda: search_all_runs(
        uri, ids, f"attributes.status = 'RUNNING' and tags.`{tag}` = '{value}' "
                  f"and tags.`{HOST_TAG}` = '{host}'"))
    live = []
    for run in found:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if (pid.isdigit() and int(pid) != os.getpid()  # this process's own ends later
                and process_alive(int(pid), tags.get(PID_START_TAG))):
            live.append(run.info.run_id)
    return live


def find_finished_cell(uri: str, experiment: str, tag: str, value: str) -> Any:
    """The earliest FINISHED run of experiment `experiment` whose tag `tag` equals `value`
    (a cell identity), or None; the experiment is not created when missing."""
    from mlflow import MlflowClient

    if not store_exists(uri):
        return None
    client = MlflowClient(uri)
    found = retry_locked(lambda: client.get_experiment_by_name(experiment))
    if found is None:
        return None
    runs = retry_locked(lambda: client.search_runs(
        [found.experiment_id], f"tags.`{tag}` = '{value}' and attributes.status = 'FINISHED'",
        max_results=1, order_by=["attributes.start_time ASC"]))
    return runs[0] if runs else None


def runs_by_id(uri: str, experiment: str | None = None) -> dict[str, Any]:
    """{run id: (status, tags)} of the store's active runs (of one experiment, or all): what
    the fault-injection script and the tests count."""
    ids = list(experiments(uri).values()) if experiment is None else [
        experiments(uri)[experiment]]
    return {r.info.run_id: (r.info.status, dict(r.data.tags))
            for r in search_all_runs(uri, ids)} if ids else {}
