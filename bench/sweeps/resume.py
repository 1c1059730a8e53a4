"""Resuming a study: the same objectives, the same base configuration, a fresh sampler seed."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.errors import ConfigError
from bench.tracking import RUN_CONTEXT_KEYS

log = logging.getLogger(__name__)


def base_config_id(config: DictConfig, searched: Iterable[str]) -> str:
    """12-hex id of what every trial of a sweep shares: the composed config (unresolved) without
    the top-level keys tracking.RUN_CONTEXT_KEYS (tracking, paths, hydra, evaluation) and
    without the searched keys. The seed, dataset, model, optimized_metric and fixed overrides
    are all in it."""
    tree = OmegaConf.to_container(config, resolve=False)
    assert isinstance(tree, dict)
    for key in RUN_CONTEXT_KEYS:
        tree.pop(key, None)
    for dotted in searched:
        _drop(tree, dotted.lstrip("+~").split("."))
    blob = json.dumps(tree, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _drop(tree: dict[str, Any], path: list[str]) -> None:
    """Remove the key at `path` from a nested dict, if it is there."""
    node: Any = tree
    *parents, leaf = path
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def check_resumed(study: Any, config: DictConfig, storage: Any, directions: list[str],
                  objectives: list[str], space: Mapping[str, Any]) -> None:
    """Refuse (ConfigError) a resumed study created for other directions or on another base
    configuration; record both on a new study; warn when the search space changed."""
    stored = [d.name.lower() for d in study.directions]
    if stored != directions:
        raise ConfigError(f"study {study.study_name!r} was created to {stored}, this sweep "
                          f"asks to {directions}: choose another hydra.sweeper.study_name")
    base = base_config_id(config, space)
    attrs = study.user_attrs
    previous = attrs.get("bench.base_config_id")
    if previous is not None and previous != base:
        raise ConfigError(
            f"study {study.study_name!r} in {storage} was created with another "
            f"base configuration (id {previous}, this sweep {base}): dataset, model, "
            "seed, optimized_metric or a fixed override differ, so its trials are not "
            "comparable. Name a new study (hydra.sweeper.study_name=...) or rerun the first "
            "command.")
    if previous is None:
        study.set_user_attr("bench.base_config_id", base)
        study.set_user_attr("bench.objectives", objectives)
    described = {name: repr(dist) for name, dist in space.items()}
    if attrs.get("bench.search_space") not in (None, described):
        log.warning(f"study {study.study_name!r}: the search space differs from its last "
                    "sweep's; Optuna handles it, but compare trials with care")
    study.set_user_attr("bench.search_space", described)


def resumed_seed(sampler_config: Any, study: Any) -> int | None:
    """The seed for a resumed study's sampler: seed + trials so far (re-seeding with the same
    seed would propose the same random start-up points again); None if unseeded."""
    if sampler_config is None or sampler_config.get("seed") is None:
        return None
    return int(sampler_config.seed) + len(study.trials)
