"""Resuming a study: the same objectives, the same base configuration, a fresh sampler seed;
trials of dead sweep processes ended FAIL, and with `resume=true` re-run (docs/resume.md)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench import tracking
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


# ---- killed trials: owners, orphans, re-runs (docs/resume.md)
KILLED_ATTR, RERUN_ATTR = "bench.killed_reason", "bench.rerun_of"
FINISHED_STATES = ("COMPLETE", "PRUNED")


def ask_owned(study: Any) -> Any:
    """`study.ask()` for a trial that carries, from its creation, the host and process that
    will tell it (user attrs bench.host, bench.pid, bench.pid_start), so that a later sweep can
    tell a dead sweep's RUNNING trials from a live one's (Optuna's own heartbeat needs an RDB
    storage; this works on journals too). Hand-written because `ask` takes no user attrs: the
    trial is enqueued with them first, unless trials wait already (killed trials re-queued by
    `requeue_killed`), which `ask` takes first and which are then re-marked."""
    import optuna

    owner = tracking.process_tags()
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        study.enqueue_trial({}, user_attrs=owner)
    trial = study.ask()
    for key, value in owner.items():
        if trial.user_attrs.get(key) != value:
            trial.set_user_attr(key, value)
    return trial


def fail_orphaned_trials(study: Any, storage_spec: Any) -> list[int]:
    """End FAIL the RUNNING trials of `study` whose sweeping process on this host is gone,
    with the user attr bench.killed_reason; returns their numbers."""
    import socket

    import optuna

    from bench.sweeps.storage import open_storage

    host, orphans = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = trial.user_attrs
        try:
            pid = int(attrs.get(tracking.PID_TAG, ""))
        except ValueError:
            continue
        if attrs.get(tracking.HOST_TAG) != host or tracking.process_alive(
                pid, attrs.get(tracking.PID_START_TAG)):
            continue
        storage = open_storage(storage_spec)
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study.study_name), trial.number)
        storage.set_trial_user_attr(trial_id, KILLED_ATTR,
                                    f"sweep process {pid} on {host} died while it ran")
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        orphans.append(trial.number)
    if orphans:
        log.warning(f"study {study.study_name!r}: trial(s) {orphans} of a dead sweep process "
                    "were left RUNNING: ended FAIL")
    return orphans


def requeue_killed(study: Any) -> list[int]:
    """With resume: enqueue once more the params of every killed trial (bench.killed_reason)
    not yet re-run; the enqueued trials are asked first. Returns the killed trials' numbers."""
    rerun = {t.user_attrs.get(RERUN_ATTR) for t in study.trials}
    killed = [t for t in study.trials if t.state.name == "FAIL"
              and KILLED_ATTR in t.user_attrs and t.number not in rerun]
    owner = tracking.process_tags()
    for trial in killed:
        study.enqueue_trial(trial.params, user_attrs={RERUN_ATTR: trial.number, **owner})
    if killed:
        log.info(f"Resume: re-running killed trial(s) {[t.number for t in killed]} with their "
                 "params")
    return [t.number for t in killed]


def trials_to_run(study: Any, n_trials: int, resume: bool) -> int:
    """How many trials this sweep asks: n_trials, or with resume what the study lacks to reach
    n_trials finished (COMPLETE or PRUNED) trials."""
    if not resume:
        return n_trials
    done = sum(t.state.name in FINISHED_STATES for t in study.trials)
    if done:
        log.info(f"Resume: {done} of {n_trials} trial(s) finished, {max(0, n_trials - done)} "
                 "to run")
    return max(0, n_trials - done)
