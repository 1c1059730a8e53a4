"""Everything that talks to MLflow: store checks, run life cycle, params, tags, artifacts,
and reading runs back. No other module of bench imports mlflow (tests/test_layout.py checks)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.errors import TrackingError

TRACKED_PACKAGES = ("bench", "scikit-learn", "xgboost", "keras", "tensorflow", "mlflow",
                    "hydra-core", "optuna", "pandas", "numpy")
# Top-level config keys that do not change what a run computes (where it is logged, where the
# data lives, Hydra's own settings, how latency is measured). The one list: config ids, sweep
# base ids and the report's "what differs between cells" all leave exactly these out.
RUN_CONTEXT_KEYS = ("tracking", "paths", "hydra", "evaluation")
# config_id also leaves out `seed`, so the repetitions of one cell share their id.
CONFIG_ID_EXCLUDED = ("seed", *RUN_CONTEXT_KEYS)
MAX_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call
MAX_PARAM_LENGTH = 6000


def preflight(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before any data is loaded or model trained, if the store is unusable.

    http(s) servers must answer GET /health; a sqlite store's folder is created.
    """
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                if response.status != 200:
                    raise TrackingError(f"MLflow server {uri} answered {response.status} "
                                        "on /health")
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise TrackingError(
                f"cannot reach the MLflow tracking server tracking.uri={uri} ({error}). Start "
                "it, or use the local store: tracking.uri=sqlite:///mlruns/mlflow.db") from error
    elif uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


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
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path(__file__).parent, check=False)
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


@contextmanager
def tracked_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, str],
                parent_run_id: str | None = None) -> Iterator[Any]:
    """An active MLflow run; ends FINISHED, or FAILED with the traceback logged on error.

    The run is never left RUNNING: MLflow's context manager ends it on any exception, after
    the traceback is saved as `error/traceback.txt` and the `error` tag.
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    experiment_id = get_or_create_experiment(uri, experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags), experiment_id=experiment_id,
                          parent_run_id=parent_run_id) as run:
        try:
            yield run
        except BaseException as error:
            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
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


def metric_list(metrics: Mapping[str, Any], step: int = 0) -> list[Any]:
    """MLflow Metric entities of the numeric values in `metrics` (bools and text skipped)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)]


def log_metrics(metrics: Mapping[str, float], step: int | None = None,
                run_id: str | None = None, uri: str | None = None) -> None:
    """Log numeric metrics in one request; to the active run, or to `run_id` in `uri`."""
    run_id, store = _target_run(run_id, uri)
    store.log_batch(run_id, metrics=metric_list(metrics, step or 0))


def _target_run(run_id: str | None, uri: str | None) -> tuple[str, Any]:
    """(run id, client): the given run in the store `uri`, else the active run."""
    import mlflow

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("no active MLflow run and no run_id given")
        run_id = active.info.run_id
    return run_id, mlflow.MlflowClient(uri)


def log_history(history: Mapping[str, list[float]], prefix: str) -> None:
    """Per-epoch Keras history as stepped metrics, e.g. dfnn_val_loss at step = epoch."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"{prefix}_{key}", float(value), now, epoch)
               for key, values in history.items() for epoch, value in enumerate(values)]
    run_id, store = _target_run(None, None)
    for i in range(0, len(metrics), 1000):  # one request per 1,000 values, not one per value
        store.log_batch(run_id, metrics=metrics[i : i + 1000])


def log_figure(figure: Any, path: str) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    mlflow.log_figure(figure, path)
    plt.close(figure)


def log_text(text: str, path: str) -> None:
    import mlflow

    mlflow.log_text(text, path)


def log_dict(data: Mapping[str, Any], path: str) -> None:
    import mlflow

    mlflow.log_dict(dict(data), path)


def log_model(pipeline: Any, input_example: Any, scores: Any) -> str:
    """Log the fitted sklearn Pipeline as an MLflow model named `model`; returns its URI.

    cloudpickle rather than skops: the pipeline holds Keras wrappers and xgboost models that
    skops would need listed as trusted types; loading a cloudpickle model executes code, so
    load models only from stores you trust. Requirements are pinned explicitly so that MLflow
    does not re-import and probe the pipeline to infer them.
    """
    import logging
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    versions = package_versions()
    requirements = [f"{name}=={version}" for name, version in versions.items()
                    if version != "absent" and name != "bench"]
    sklearn_logger = logging.getLogger("mlflow.sklearn")
    level = sklearn_logger.level
    sklearn_logger.setLevel(logging.ERROR)  # the pickle caution above, said once here
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ii]nteger column", category=UserWarning)
            info = mlflow.sklearn.log_model(
                pipeline, name="model", serialization_format="cloudpickle",
                signature=infer_signature(input_example, scores), pip_requirements=requirements,
            )
    finally:
        sklearn_logger.setLevel(level)
    return info.model_uri


def log_artifacts(folder: str | Path, artifact_path: str | None = None,
                  run_id: str | None = None, uri: str | None = None) -> None:
    """Every file under `folder` as artifacts of the active run (or of `run_id` in `uri`)."""
    run_id, store = _target_run(run_id, uri)
    store.log_artifacts(run_id, str(folder), artifact_path)


# ------------------------------------------------------------------ experiments, reading back
def get_or_create_experiment(uri: str, name: str) -> str:
    """The id of experiment `name` in the store `uri`, created (artifacts beside a sqlite
    store) when missing. A store that cannot be used is a TrackingError."""
    from mlflow import MlflowClient

    store = MlflowClient(uri)
    try:
        existing = store.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        return store.create_experiment(name, artifact_location=default_artifact_location(uri))
    except Exception as error:
        raise TrackingError(f"cannot use MLflow store {uri}: {error}") from error


def experiments(uri: str) -> dict[str, str]:
    """{name: experiment id} of the active experiments in the store `uri`."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    found = MlflowClient(uri).search_experiments(view_type=ViewType.ACTIVE_ONLY)
    return {e.name: e.experiment_id for e in found}


def search_all_runs(uri: str, experiment_ids: list[str], filter_string: str = "",
                    page_size: int = 1000) -> list[Any]:
    """Every active run of the experiments matching `filter_string` (MLflow search syntax),
    following MLflow's page tokens to the end. Returns mlflow Run entities."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    store = MlflowClient(uri)
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
    from mlflow import MlflowClient

    return MlflowClient(uri).get_run(run_id)


# ---- sweeps: parent runs
# The sweep's MLflow callback (bench/sweeps/callback.py) writes to runs by id: the parent run is
# never the active run of the sweeping process, and trial runs belong to the jobs.
MAX_TAG_LENGTH = 5000  # tags the sweep writes (error messages) are cut here


def create_run(uri: str, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> str:
    """A new RUNNING run (not made active) in `experiment_id`; returns its id."""
    from mlflow import MlflowClient

    run = MlflowClient(uri).create_run(experiment_id, tags=dict(tags), run_name=run_name)
    return run.info.run_id


def set_tags(uri: str, run_id: str, tags: Mapping[str, Any]) -> None:
    """Tags (values as text, cut to 5000 characters) on `run_id`, in one request."""
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:MAX_TAG_LENGTH]) for k, v in tags.items()]
    MlflowClient(uri).log_batch(run_id, tags=items)


def set_terminated(uri: str, run_id: str, status: str) -> None:
    """End `run_id` with `status` (FINISHED, FAILED or KILLED)."""
    from mlflow import MlflowClient

    MlflowClient(uri).set_terminated(run_id, status)


def log_text_to(uri: str, run_id: str, text: str, path: str) -> None:
    """`text` as the artifact file `path` of `run_id`."""
    from mlflow import MlflowClient

    MlflowClient(uri).log_text(run_id, text, path)


def log_artifact_to(uri: str, run_id: str, local_path: str | Path,
                    artifact_path: str | None = None) -> None:
    """One local file as an artifact of `run_id`, under the folder `artifact_path`."""
    from mlflow import MlflowClient

    MlflowClient(uri).log_artifact(run_id, str(local_path), artifact_path)


def last_active_run() -> Any:
    """The run this process last made active (None if none): a job's trial run."""
    import mlflow

    return mlflow.last_active_run()
