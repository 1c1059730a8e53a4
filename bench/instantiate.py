"""Hydra instantiation restricted by kind: an allow-list, checked before anything is imported.

A `_target_` in a config node (at any depth) may name only:

- a bench class or factory registered in BUILDABLE (exact dotted names, nothing else of bench);
- a public scikit-learn-compatible class from a trusted library (TRUSTED_LIBRARIES): an
  estimator / transformer (subclass of sklearn's BaseEstimator, which xgboost's estimators are)
  or a splitter (sklearn's BaseCrossValidator / BaseShuffleSplit), named by its public path
  `package.module.Class`: no path component may start with `_`.

Nothing else is imported: a bench name is compared with the list as a string; for a library
name only modules under the trusted package are imported (its own code), and only once the
name has passed the checks above, so a config can neither run a function (`os.system`,
`sklearn.datasets.fetch_openml`), reach a private helper (`sklearn.utils._testing...`), nor an
alias re-exported through a trusted module (`bench.x.os.system`, `xgboost.core.os`).
Hydra's own execution whitelist is then set to exactly the checked names (a second lock).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.errors import ConfigError

TRUSTED_LIBRARIES = ("sklearn", "xgboost")

# bench's buildable classes and factories (everything bench's configs name), exact names.
BUILDABLE: frozenset[str] = frozenset({
    "bench.data.graph_traffic.load", "bench.data.kaggle_nid.load", "bench.data.nslkdd.load",
    "bench.data.snmp_mib.load", "bench.data.synthetic.load", "bench.data.unsw.load",
    "bench.data.split.BlockedSplit", "bench.data.split.StratifiedSplit",
    "bench.data.split.GroupedSplit", "bench.data.split.ByFileSplit",
    "bench.data.split.ByTimeSplit", "bench.data.table.load",
    "bench.evaluation.thresholds.BestF1", "bench.evaluation.thresholds.Fixed",
    "bench.evaluation.thresholds.FprBudget", "bench.evaluation.thresholds.Quantile",
    "bench.features.preprocess.build_preprocessor", "bench.features.selectors.CappedPCA",
    "bench.features.selectors.rf_importance",
    "bench.models.detectors.Detector", "bench.models.detectors.AutoencoderDetector",
    "bench.models.detectors.DBSCANDetector", "bench.models.detectors.GaussianDensity",
    "bench.models.detectors.MeanSigma",
    "bench.models.keras_nets.AutoencoderFeatures", "bench.models.keras_nets.DFNNClassifier",
    "bench.models.keras_nets.dfnn", "bench.sweeps.pruning.optuna_pruning",
})
# Registered targets whose call has effects beyond building an object (the pruning callback
# opens the running Optuna study): config validation leaves them out (builds None instead).
BUILT_ONLY_IN_A_RUN: frozenset[str] = frozenset({"bench.sweeps.pruning.optuna_pruning"})
# Hydra callbacks (hydra.callbacks.*), instantiated by Hydra itself; app.py passes this list
# to hydra.main as its execution whitelist.
HYDRA_CALLBACKS: tuple[str, ...] = ("bench.sweeps.callback.MlflowSweepCallback",
                                     "bench.callbacks.GridSummary")
# The logging classes conf/config.yaml's hydra.job_logging / hydra_logging name (Hydra checks
# them against the same execution whitelist).
HYDRA_LOGGING: tuple[str, ...] = ("bench.console.ConsoleFormatter", "bench.console.ConsoleHandler")
# Instantiation keys a config may use; bench sets _convert_ / _recursive_ itself.
ALLOWED_SPECIAL_KEYS = frozenset({"_target_", "_partial_"})

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _refuse(key: str, target: object, why: str) -> ConfigError:
    return ConfigError(f"{key}._target_={target}: {why}")


def _is_sklearn_compatible(obj: Any) -> bool:
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import BaseCrossValidator, BaseShuffleSplit

    return inspect.isclass(obj) and issubclass(
        obj, BaseEstimator | BaseCrossValidator | BaseShuffleSplit)


def resolve_library_class(target: str) -> type:
    """The class a trusted-library `_target_` names, or ValueError saying why not.

    Imports `package.module` only after every path component passed the name checks.
    """
    parts = target.split(".")
    module_name, name = ".".join(parts[:-1]), parts[-1]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{module_name} is not an importable module of {parts[0]} "
                         f"({error.__class__.__name__}: {error})") from None
    obj = inspect.getattr_static(module, name, None)
    if obj is None:
        raise ValueError(f"{module_name} has no public class {name}")
    if not inspect.isclass(obj) or not (obj.__module__ or "").startswith(f"{parts[0]}."):
        raise ValueError(f"not a class defined in {parts[0]} (a function, module or alias)")
    if not _is_sklearn_compatible(obj):
        raise ValueError("not a scikit-learn-compatible estimator, transformer or splitter")
    if inspect.isabstract(obj) or name.startswith("Base") or name.endswith("Mixin"):
        raise ValueError("a base class or mixin to derive classes from, not one to build")
    return obj


def check_target(key: str, target: object) -> None:
    """Raise ConfigError (naming `key` and `target`) unless the allow-list admits `target`."""
    allowed = (f"allowed are public scikit-learn-compatible classes of "
               f"{', '.join(TRUSTED_LIBRARIES)} and the bench classes registered in "
               "bench.instantiate.BUILDABLE")
    if not isinstance(target, str):
        raise _refuse(key, target, f"must be a dotted class name; {allowed}")
    parts = target.split(".")
    if any(not _IDENTIFIER.match(p) for p in parts) or len(parts) < 2:
        raise _refuse(key, target, "a public dotted name is required (no component may start "
                      f"with '_' or hold other characters); {allowed}")
    if target in BUILDABLE:
        return
    if parts[0] not in TRUSTED_LIBRARIES:
        raise _refuse(key, target, f"not an allowed target; {allowed}")
    try:
        resolve_library_class(target)
    except ValueError as why:
        raise _refuse(key, target, f"{why}; {allowed}") from None


def _plain(node: Any, key: str) -> Any:
    """`node` as plain dicts and lists, interpolations resolved (ConfigError naming the key)."""
    if not isinstance(node, DictConfig | ListConfig):
        return node
    try:
        return OmegaConf.to_container(node, resolve=True)
    except OmegaConfBaseException as error:
        where = getattr(error, "full_key", None) or key
        raise ConfigError(f"{where}: {str(error).splitlines()[0]}") from None


def _walk(value: Any, key: str) -> Iterator[tuple[str, str, Any]]:
    """(key, name, value) of every entry of nested dicts and lists, depth first."""
    if isinstance(value, dict):
        for name, child in value.items():
            yield key, str(name), child
            yield from _walk(child, f"{key}.{name}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{key}[{index}]")


def check_node(node: Any, key: str) -> list[str]:
    """Check every `_target_` in `node` (at any depth) and its special keys (`_name_`).

    Returns the checked targets; raises ConfigError naming the key and the value.
    """
    checked = []
    for where, name, value in _walk(_plain(node, key), key):
        if name == "_target_":
            check_target(where, value)
            checked.append(str(value))
        elif name == "_partial_" and not isinstance(value, bool):
            raise ConfigError(f"{where}._partial_={value!r}: must be true or false")
        elif name.startswith("_") and name.endswith("_") and name not in ALLOWED_SPECIAL_KEYS:
            raise ConfigError(f"{where}.{name}={value!r}: not allowed in bench's configs (only "
                              f"{', '.join(sorted(ALLOWED_SPECIAL_KEYS))}; bench sets how "
                              "nodes are built)")
    return checked


def _key_of(node: Any) -> str:
    try:  # OmegaConf knows where a node sits in the config (private API, display only)
        return str(node._get_full_key(None)) or "config"
    except Exception:
        return "config"


def build(node: Any, key: str | None = None, **kwargs: Any) -> Any:
    """Instantiate a `_target_` config node into plain Python objects (lists, dicts).

    Every target in the node is checked first (ConfigError naming the key); Hydra may then
    call exactly those.
    """
    key = key or _key_of(node)
    checked = check_node(node, key)
    if not checked:
        raise ConfigError(f"{key}: a _target_ is required")
    return instantiate(node, _convert_="all", _execution_whitelist_=sorted(set(checked)),
                       **kwargs)


def build_for_validation(node: Any, key: str) -> Any:
    """As `build`, with targets in BUILT_ONLY_IN_A_RUN replaced by None (nothing opened)."""
    plain = _plain(node, key)
    check_node(plain, key)
    return build(OmegaConf.create(_without_run_only(plain)), key)


def _without_run_only(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("_target_") in BUILT_ONLY_IN_A_RUN:
            return None
        return {k: _without_run_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v for v in (_without_run_only(v) for v in value) if v is not None]
    return value
