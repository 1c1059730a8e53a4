"""Everything that talks to MLflow: store checks, run life cycle, params, tags, artifacts."""

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
# Keys that do not change what is computed, left out of the configuration id.
_CONFIG_ID_EXCLUDED = ("seed", "tracking", "paths", "hydra", "evaluation")


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
    """Stable 12-hex id of what a run computes: the config without seed, tracking and paths.

    Uses the unresolved config, so `${seed}` interpolations stay symbolic and repetitions of
    one cell over seeds share the id.
    """
    kept = {k: v for k, v in unresolved.items() if k not in _CONFIG_ID_EXCLUDED}
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
    try:
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is None:
            mlflow.create_experiment(experiment,
                                     artifact_location=default_artifact_location(uri))
        mlflow.set_experiment(experiment)
    except Exception as error:
        raise TrackingError(f"cannot use MLflow store {uri}: {error}") from error
    with mlflow.start_run(run_name=run_name, tags=dict(tags),
                          parent_run_id=parent_run_id) as run:
        try:
            yield run
        except BaseException as error:
            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
            raise


def log_params(params: Mapping[str, Any]) -> None:
    """Log flattened params in batches (MLflow takes at most 100 per call, 6000 chars each)."""
    import mlflow

    items = [(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i : i + 100]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_history(history: Mapping[str, list[float]], prefix: str) -> None:
    """Per-epoch Keras history as stepped metrics, e.g. dfnn_val_loss at step = epoch."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"{prefix}_{key}", float(value), now, epoch)
               for key, values in history.items() for epoch, value in enumerate(values)]
    run_id = mlflow.active_run().info.run_id
    for i in range(0, len(metrics), 1000):  # one request per 1,000 values, not one per value
        mlflow.MlflowClient().log_batch(run_id, metrics=metrics[i : i + 1000])


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
