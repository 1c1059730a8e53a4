"""The decision a run ends with, as files that load without running code.

A *decision* is the fitted sklearn Pipeline plus the threshold chosen on VAL and its metadata
(strategy, run id, dataset). `Decision.predict(X)` returns a frame with `anomaly_score`
(float64, higher = more likely attack; `bench.models.scoring.anomaly_score`) and `flag`
(int64, 1 when `anomaly_score >= threshold`).

On disk (`save_decision`), a folder with no unrestricted pickle:

    decision.json        threshold, strategy, run id, format, the files below
    pipeline.skops       the Pipeline, every type in TRUSTED_TYPES (skops, no pickle)
    parts/<n>.keras      each Keras model inside it, in Keras' own format (safe_mode on load)
    parts/<n>.ubj        each xgboost Booster inside it, in xgboost's own binary format

Keras models and xgboost Boosters are cut out of the pipeline before skops sees it (replaced
by `ExternalPart` markers) and put back at load. `load_decision` first lists the types the
.skops file would build (`skops.io.get_untrusted_types`, which only reads the file) and
refuses any type outside TRUSTED_TYPES with an `UnsafeModelError` naming it: nothing is
built, nothing is run. Every other way a file can fail is an `UnsafeModelError` too, one line
naming the file and the reason: a part or the metadata missing, empty, truncated, of another
kind, or refused by its library; a .skops file that holds trusted objects but not a fitted
scikit-learn Pipeline that ends in a scoring estimator (`check_pipeline`). Custom estimators
that skops cannot store need `tracking.model_format=cloudpickle`, which writes `pipeline.pkl`;
loading it needs an explicit `unsafe=True` (docs/models.md).

MLflow loads the decision through `_load_pyfunc` (a pyfunc loader module), so the logged
model is data only and this module never imports mlflow.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.models.scoring import anomaly_score

FORMATS = ("skops", "cloudpickle")
DECISION_FILE = "decision.json"
SKOPS_FILE = "pipeline.skops"
PICKLE_FILE = "pipeline.pkl"
OUTPUTS = ("anomaly_score", "flag")

# The types, beyond those skops trusts by default (scikit-learn's own estimators, builtins,
# numpy arrays), that bench's configs put into a fitted pipeline. Written out, not a prefix
# rule: a type that is not listed is refused, whoever made the file. tests/test_decision.py
# saves the models and selectors of conf/ and checks that this list covers them.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "bench.models.decision.ExternalPart",
    "bench.features.preprocess.SkewedLog1p",
    "bench.features.selectors.AtMost",
    "bench.features.selectors.CappedPCA",
    "bench.models.detectors.Detector",
    "bench.models.detectors.GaussianDensity",
    "bench.models.detectors.MeanSigma",
    "bench.models.detectors.AutoencoderDetector",
    "bench.models.detectors.DBSCANDetector",
    "bench.models.keras_nets.DFNNClassifier",
    "bench.models.keras_nets.AutoencoderFeatures",
    "sklearn.tree._tree.Tree",  # the fitted tree of DecisionTree / RandomForest / AdaBoost
    "xgboost.sklearn.XGBClassifier",  # its Booster is stored apart, in xgboost's own format
})


class UnsafeModelError(BenchError):
    """A model file is refused: it holds a type outside the trusted list, is a pickle loaded
    without `unsafe`, or is missing, damaged or not what bench writes (the message names the
    file and the reason). Nothing in a refused .skops file was built or run."""


PART_KINDS = ("keras", "xgboost")
SCORING_METHODS = ("predict_proba", "score_samples", "decision_function")  # anomaly_score's


@dataclass(frozen=True)
class ExternalPart:
    """Marker left in the skops tree where a Keras model or xgboost Booster was cut out."""

    kind: str  # "keras" | "xgboost"
    file: str  # relative to the decision folder


@dataclass
class Decision:
    """A fitted pipeline at its VAL threshold. `metadata`: strategy, run id, dataset, ..."""

    pipeline: Any
    threshold: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_rows(self) -> int:
        """Rows per scoring batch: the batches the run scored TEST in (metadata
        `batch_rows`). BLAS-backed models (logreg, MLP) can differ in the last bit with the
        batch layout, so scoring in the run's batches reproduces its TEST scores exactly."""
        return int(self.metadata.get("batch_rows") or 1000)

    @property
    def row_wise(self) -> bool:
        """True when each row's score depends on that row alone, bit for bit, whatever the
        batch it is scored in: every step is in ROW_WISE (elementwise transforms, column
        selection, tree ensembles). Such a decision may score a whole chunk in one call and
        still reproduce the run's TEST scores exactly (bench score's exact=auto)."""
        return all(_qualified_name(step) in ROW_WISE or
                   (_qualified_name(step) == _IDENTITY and getattr(step, "func", None) is None)
                   for step in _steps(self.pipeline))

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows,) float64 anomaly scores, higher = more likely attack; X is scored in
        batches of `batch_rows` from its first row."""
        step = self.batch_rows
        parts = [anomaly_score(self.pipeline, X.iloc[i : i + step])
                 for i in range(0, len(X), step)]
        if not parts:
            return np.empty(0, dtype=np.float64)
        return np.concatenate(parts).astype(np.float64, copy=False)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Frame of `anomaly_score` (float64) and `flag` (int64, score >= threshold), X's index."""
        scores = self.score(X)
        return pd.DataFrame({"anomaly_score": scores,
                             "flag": (scores >= self.threshold).astype(np.int64)},
                            index=X.index)


# Steps whose output for a row is computed from that row alone with elementwise arithmetic or
# per-row tree traversal (summed over trees in a fixed order): no matrix products, whose BLAS
# blocking (and so the last bit) depends on how many rows are multiplied together.
ROW_WISE = frozenset({
    "sklearn.pipeline.Pipeline", "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._data.StandardScaler", "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._data.RobustScaler", "sklearn.preprocessing._data.MaxAbsScaler",
    "bench.features.preprocess.SkewedLog1p",
    "sklearn.feature_selection._from_model.SelectFromModel",
    "xgboost.sklearn.XGBClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
})
_IDENTITY = "sklearn.preprocessing._function_transformer.FunctionTransformer"  # func=None


def _qualified_name(step: Any) -> str:
    return f"{type(step).__module__}.{type(step).__qualname__}"


def _steps(root: Any) -> Iterator[Any]:
    """`root` and every step nested in it (Pipeline steps, ColumnTransformer parts); a
    SelectFromModel's fitted estimator is not a step (only its column choice is applied)."""
    yield root
    children = [step for _, step in getattr(root, "steps", [])]
    children += [part for _, part, _ in getattr(root, "transformers_", [])]
    for child in children:
        if isinstance(child, str):  # "passthrough" or "drop"
            continue
        yield from _steps(child)


# ------------------------------------------------------------------------------ cutting out
def _is_keras_model(value: Any) -> bool:
    return any(c.__module__.startswith("keras") and c.__name__ in ("Model", "Functional",
                                                                   "Sequential")
               for c in type(value).__mro__)


def _is_booster(value: Any) -> bool:
    return type(value).__module__ == "xgboost.core" and type(value).__name__ == "Booster"


def _attributes(root: Any) -> Iterator[tuple[Any, str, Any]]:
    """(estimator, attribute name, value) for every attribute of every scikit-learn estimator
    reachable from `root` (`_reachable`: Keras models, Boosters and ExternalPart markers are
    yielded as values but not entered)."""
    from sklearn.base import BaseEstimator

    for node in list(_reachable(root)):
        if isinstance(node, BaseEstimator):
            for name, value in list(vars(node).items()):
                yield node, name, value


def _reachable(root: Any) -> Iterator[Any]:
    """Every object reachable from `root` through lists, tuples, dicts and the attributes of
    scikit-learn estimators."""
    from sklearn.base import BaseEstimator

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, list | tuple):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, BaseEstimator):
            stack.extend(vars(node).values())


def _holders(root: Any) -> list[tuple[Any, str, Any]]:
    """(estimator, attribute, value) for every Keras model / xgboost Booster in `root`."""
    return [(owner, name, value) for owner, name, value in _attributes(root)
            if _is_keras_model(value) or _is_booster(value)]


def pipeline_modules(pipeline: Any) -> set[str]:
    """Top-level modules of the classes a fitted pipeline holds (sklearn, xgboost, keras,
    bench, ...): what loading it needs installed."""
    modules = {type(pipeline).__module__.split(".")[0]}
    for owner, _, value in _attributes(pipeline):
        modules.add(type(owner).__module__.split(".")[0])
        if _is_keras_model(value):
            modules.add("keras")
        elif _is_booster(value):
            modules.add("xgboost")
    return modules


def _write_part(value: Any, folder: Path, index: int) -> ExternalPart:
    (folder / "parts").mkdir(exist_ok=True)
    if _is_booster(value):
        part = ExternalPart("xgboost", f"parts/{index}.ubj")
        value.save_model(str(folder / part.file))
    else:
        part = ExternalPart("keras", f"parts/{index}.keras")
        value.save(str(folder / part.file))
    return part


def inside(folder: Path, name: Any, what: str) -> Path:
    """`folder / name`, refused (UnsafeModelError) unless `name` is a relative path that stays
    inside `folder`: a model file names only its own files (a tampered MLmodel or part pointed
    at files elsewhere on the machine)."""
    if not isinstance(name, str) or not name:
        raise UnsafeModelError(f"{folder}: {what} is missing or not a file name: {name!r}")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise UnsafeModelError(f"{folder}: {what} {name!r} points outside the model's folder")
    return path


def _read_part(part: ExternalPart, folder: Path) -> Any:
    """The Keras model or xgboost Booster of `part`; UnsafeModelError naming its file and the
    reason when it is missing, empty, of another kind, or refused by its library."""
    if part.kind not in PART_KINDS:
        raise UnsafeModelError(f"{folder / SKOPS_FILE}: unknown part kind {part.kind!r} "
                               f"(bench writes {', '.join(PART_KINDS)})")
    path = inside(folder, part.file, "a part's file")
    check_file(path, f"the {part.kind} part of the model")
    if part.kind == "keras":
        _check_keras_archive(path)
    try:  # a library that is not installed is not a damaged file
        if part.kind == "xgboost":
            import xgboost
        else:
            from bench.models.keras_nets import _keras

            keras = _keras()
    except ImportError as error:
        raise BenchError(f"{path}: loading this model needs {part.kind}, which cannot be "
                         f"imported here ({reason(error)})") from error
    try:
        if part.kind == "xgboost":
            return xgboost.Booster(model_file=str(path))
        # safe_mode refuses Lambda layers and other deserialised code
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as error:  # whatever the library raises: the file is not a model
        raise UnsafeModelError(f"{path}: not a readable {part.kind} model file "
                               f"({reason(error)})") from error


def _check_keras_archive(path: Path) -> None:
    """A .keras file is a zip archive with config.json (checked before Keras is imported:
    Keras calls a file that is not a zip archive "not found")."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise UnsafeModelError(f"{path}: not a readable keras model file (not a .keras zip "
                               f"archive: {reason(error)})") from error
    if "config.json" not in names:
        raise UnsafeModelError(f"{path}: not a readable keras model file (a zip archive "
                               "without config.json)")


def check_file(path: Path, what: str) -> None:
    """UnsafeModelError unless `path` is a non-empty file (`what` it is, for the message)."""
    if not path.exists():
        raise UnsafeModelError(f"{path}: {what} is missing")
    if not path.is_file():
        raise UnsafeModelError(f"{path}: {what} is not a file")
    if path.stat().st_size == 0:
        raise UnsafeModelError(f"{path}: {what} is empty")


def reason(error: BaseException) -> str:
    """A library's error as a short line: xgboost's "[12:00:00] /src/x.cc:12: Check failed:
    ... Stack trace: ..." becomes "Check failed: ...", whitespace is collapsed, long text cut."""
    text = str(error).split("Stack trace:", 1)[0]
    text = re.sub(r"^\s*\[[\d:]+\]\s+\S+:\d+:\s*", "", text)
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------------------ save / load
def save_decision(decision: Decision, folder: str | Path, model_format: str = "skops") -> Path:
    """Write `decision` into the empty or new `folder` (layout in the module docstring).

    The pipeline is left as it was (cut-out parts are put back even on error). Raises
    UnsafeModelError when the skops file would hold a type outside TRUSTED_TYPES (a custom
    estimator: use model_format="cloudpickle").
    """
    if model_format not in FORMATS:
        raise BenchError(f"tracking.model_format={model_format!r}: must be one of "
                         f"{', '.join(repr(f) for f in FORMATS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if model_format == "cloudpickle":
        import cloudpickle

        (folder / PICKLE_FILE).write_bytes(cloudpickle.dumps(decision.pipeline))
        files = [PICKLE_FILE]
    else:
        files = _save_skops(decision.pipeline, folder)
    meta = {"threshold": float(decision.threshold), "format": model_format, "files": files,
            "outputs": {"anomaly_score": "float64, higher = more likely attack",
                        "flag": "int64, 1 when anomaly_score >= threshold"},
            **decision.metadata}
    (folder / DECISION_FILE).write_text(json.dumps(meta, indent=1, default=str))
    return folder


def _save_skops(pipeline: Any, folder: Path) -> list[str]:
    from bench import helper

    holders = _holders(pipeline)
    files = []
    try:
        for index, (owner, name, value) in enumerate(holders):
            part = _write_part(value, folder, index)
            files.append(part.file)
            vars(owner)[name] = part
        # by the run's helper process when it is up: it has imported skops already (bench.helper)
        data, types = helper.call("skops", pipeline, skops_dump)
    finally:
        for owner, name, value in holders:
            vars(owner)[name] = value
    _check_types(types, folder / SKOPS_FILE, saving=True)
    (folder / SKOPS_FILE).write_bytes(data)
    return [SKOPS_FILE, *files]


def skops_dump(pipeline: Any) -> tuple[bytes, list[str]]:
    """`pipeline` in skops' format, and the types in it that skops does not trust by default
    (checked against TRUSTED_TYPES by the caller)."""
    import skops.io

    data = skops.io.dumps(pipeline)
    return data, skops.io.get_untrusted_types(data=data)


def _check_types(types: list[str], path: Path, saving: bool = False) -> None:
    refused = sorted(set(types) - TRUSTED_TYPES)
    if not refused:
        return
    if saving:
        raise UnsafeModelError(
            f"cannot store the pipeline safely in {path}: type(s) {refused} are not in bench's "
            "trusted list (bench.models.decision.TRUSTED_TYPES). Add them there if they are "
            "plain estimators, or set tracking.model_format=cloudpickle (docs/models.md)")
    raise UnsafeModelError(
        f"{path}: refused to load: type {refused[0]!r} is not in bench's trusted list"
        + (f" (also {refused[1:]})" if len(refused) > 1 else "")
        + "; nothing was loaded or run. Only load model files you trust")


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """The decision.json of `folder` (threshold, strategy, run id, format, files)."""
    path = Path(folder) / DECISION_FILE
    check_file(path, "the model's decision file")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # not UTF-8, not JSON
        raise UnsafeModelError(f"{path}: not a bench decision file ({reason(error)})"
                               ) from error
    if not isinstance(meta, dict):
        raise UnsafeModelError(f"{path}: not a bench decision file (a JSON "
                               f"{type(meta).__name__}, not an object)")
    try:
        threshold = float(meta["threshold"])
    except (KeyError, ValueError, TypeError) as error:
        raise UnsafeModelError(f"{path}: not a bench decision file (threshold "
                               f"{meta.get('threshold', 'missing')!r} is not a number)"
                               ) from error
    if not math.isfinite(threshold):  # NaN flagged nothing, -inf everything, silently
        raise UnsafeModelError(f"{path}: threshold {meta['threshold']!r} is not a finite number")
    rows = meta.get("batch_rows", 1)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise UnsafeModelError(f"{path}: batch_rows {rows!r} is not an integer >= 1")
    model_format = meta.get("format", "skops")  # files written before the key was added
    if model_format not in FORMATS:
        raise UnsafeModelError(f"{path}: format {model_format!r} is not one bench writes "
                               f"({', '.join(FORMATS)})")
    return meta


def load_decision(folder: str | Path, unsafe: bool = False) -> Decision:
    """Load a folder written by `save_decision`.

    skops files are checked against TRUSTED_TYPES before anything is built; a pickle
    (model_format=cloudpickle) is refused unless `unsafe=True`. What was loaded must be what
    bench writes (`check_pipeline`). Raises UnsafeModelError, one line naming the file.
    """
    folder = Path(folder)
    meta = read_metadata(folder)
    threshold = float(meta.pop("threshold"))
    if meta.get("format") == "cloudpickle":
        if not unsafe:
            raise UnsafeModelError(
                f"{folder / PICKLE_FILE} is a pickle (tracking.model_format=cloudpickle): "
                "loading it runs whatever code it holds. Load it only if you trust its "
                "source, with unsafe=true (bench score) or model_config={'unsafe': True}")
        import cloudpickle

        path = folder / PICKLE_FILE
        check_file(path, "the model's pipeline")
        try:
            pipeline = cloudpickle.loads(path.read_bytes())
        except Exception as error:
            raise UnsafeModelError(f"{path}: not a readable pickle ({reason(error)})"
                                   ) from error
        check_pipeline(pipeline, path)
        return Decision(pipeline, threshold, meta)
    return Decision(_load_skops(folder), threshold, meta)


def _load_skops(folder: Path) -> Any:
    import skops.io

    path = folder / SKOPS_FILE
    check_file(path, "the model's pipeline")
    try:
        types = skops.io.get_untrusted_types(file=path)
    except Exception as error:  # a damaged or foreign file: never fall back to anything
        raise UnsafeModelError(f"{path}: not a readable skops file ({reason(error)})"
                               ) from error
    _check_types(types, path)
    try:
        pipeline = skops.io.load(path, trusted=types)
    except Exception as error:  # trusted types, damaged state (a truncated member, ...)
        raise UnsafeModelError(f"{path}: not a readable skops file ({reason(error)})"
                               ) from error
    check_pipeline(pipeline, path)  # before parts are read: a bare array has none
    for owner, name, part in _markers(pipeline):
        if part.kind in PART_KINDS and (part.kind == "xgboost") != _is_xgboost(owner):
            raise UnsafeModelError(f"{path}: the {part.kind} part {part.file!r} is inside a "
                                   f"{_qualified_name(owner)}, where bench puts none")
        vars(owner)[name] = value = _read_part(part, folder)
        if part.kind == "xgboost":
            _check_booster(owner, value, folder / part.file, pipeline)
    check_pipeline(pipeline, path, parts_read=True)
    return pipeline


def _check_booster(owner: Any, booster: Any, path: Path, pipeline: Any) -> None:
    """UnsafeModelError unless the Booster read from `path` is one its XGBClassifier `owner`
    could have fitted: the same objective (a regression or multi-class model scored silently
    wrong) and, for the pipeline's last step, as many features as the steps before it give
    (else every row was "a value the model cannot score")."""
    try:
        learner = json.loads(booster.save_config())["learner"]
        objective = learner["objective"]["name"]
        features = int(booster.num_features())
    except Exception as error:
        raise UnsafeModelError(f"{path}: not a readable xgboost model file "
                               f"({reason(error)})") from error
    expected = getattr(owner, "objective", None)
    if isinstance(expected, str) and objective != expected:
        raise UnsafeModelError(f"{path}: an xgboost model with objective {objective!r}, not "
                               f"the {expected!r} of the pipeline's {type(owner).__name__}")
    steps = getattr(pipeline, "steps", None)
    if not steps or steps[-1][1] is not owner or len(steps) < 2:
        return
    try:
        given = len(pipeline[:-1].get_feature_names_out())
    except Exception:  # a step that cannot name its outputs: nothing to compare
        return
    if given != features:
        raise UnsafeModelError(f"{path}: an xgboost model of {features} features, but the "
                               f"pipeline's steps before it give {given}")


def _is_xgboost(owner: Any) -> bool:
    return type(owner).__module__.split(".")[0] == "xgboost"


def _markers(root: Any) -> list[tuple[Any, str, ExternalPart]]:
    """(estimator, attribute, marker) for every ExternalPart left in a loaded pipeline."""
    return [(owner, name, value) for owner, name, value in _attributes(root)
            if isinstance(value, ExternalPart)]


def check_pipeline(pipeline: Any, path: Path, parts_read: bool = False) -> None:
    """UnsafeModelError naming `path` unless `pipeline` is what bench writes: a scikit-learn
    Pipeline of (name, step) pairs whose intermediate steps transform and whose last step
    gives an anomaly score (predict_proba, score_samples or decision_function). With
    `parts_read` (its Keras models and Boosters put back), also fitted, and with no
    ExternalPart marker left anywhere. A file of trusted types only may still hold any of them
    (an array, a dict, a scaler alone): it failed later, in scoring, with a traceback."""
    try:
        _check_structure(pipeline, parts_read)
    except UnsafeModelError as error:
        raise UnsafeModelError(f"{path}: not a pipeline bench writes: {error}") from None
    except Exception as error:  # a tampered state that the checks cannot even walk
        raise UnsafeModelError(f"{path}: not a pipeline bench writes ({reason(error)})"
                               ) from error


def _check_structure(pipeline: Any, parts_read: bool) -> None:
    """`check_pipeline`'s checks; UnsafeModelError says what is wrong (no file name)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(pipeline, Pipeline):
        raise UnsafeModelError(f"it holds a {_qualified_name(pipeline)}, not a "
                               "sklearn.pipeline.Pipeline")
    steps = vars(pipeline).get("steps")
    if not isinstance(steps, list) or not steps:
        raise UnsafeModelError(f"its steps are {_short(steps)}, not a list of (name, step) "
                               "pairs")
    for index, item in enumerate(steps):
        if (not isinstance(item, tuple | list) or len(item) != 2
                or not isinstance(item[0], str)):
            raise UnsafeModelError(f"step {index} is {_short(item)}, not a (name, step) pair")
        name, step = item
        if index == len(steps) - 1:
            if not any(callable(getattr(step, m, None)) for m in SCORING_METHODS):
                raise UnsafeModelError(
                    f"its last step {name!r} is a {_qualified_name(step)}, which gives no "
                    f"anomaly score (none of {', '.join(SCORING_METHODS)})")
        elif not (step is None or (isinstance(step, str) and step == "passthrough")
                  or callable(getattr(step, "transform", None))):
            raise UnsafeModelError(f"step {name!r} is a {_qualified_name(step)}, which does "
                                   "not transform")
    if not parts_read:
        return
    try:
        check_is_fitted(pipeline)
    except NotFittedError as error:
        raise UnsafeModelError(f"it is not fitted ({reason(error)})") from None
    left = [value.file for value in _reachable(pipeline) if isinstance(value, ExternalPart)]
    if left:
        raise UnsafeModelError(f"part marker(s) {left} where bench puts none")
    list(_steps(pipeline))  # row_wise walks these (ColumnTransformer parts are triples)


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------ MLflow pyfunc
class PyfuncDecision:
    """What `mlflow.pyfunc.load_model` returns inside its wrapper: predict(frame) -> frame of
    `anomaly_score` (float64) and `flag` (int64), index reset."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def predict(self, data: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.decision.predict(pd.DataFrame(data)).reset_index(drop=True)


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> PyfuncDecision:
    """MLflow's loader-module hook (the MLmodel names `loader_module: bench.models.decision`).

    The model folder holds data only (MLmodel, decision.json, .skops, .keras, .ubj): no pickle
    and no code of its own, so loading runs bench's installed code and nothing from the
    artifact store. `model_config={"unsafe": True}` allows a cloudpickle pipeline.
    """
    unsafe = bool((model_config or {}).get("unsafe", False))
    return PyfuncDecision(load_decision(data_path, unsafe=unsafe))
