"""Optuna hyperparameter sweeps through Hydra multirun, tracked in MLflow (docs/sweeps.md).

    python -m bench -m hparams_search=xgboost_optuna [dataset=...] [hydra.sweeper.n_trials=...]

The parts, in the order a sweep meets them:

- objective: which metrics a sweep may optimise (VAL metrics and timings, never TEST) and the
  value or values a task returns to the sweeper (`objective_names`, `objective_value`);
- `make_storage`: an Optuna storage from one string: a URL is an RDB storage, anything else a
  JournalStorage file, which several processes on one host may write at once;
- `OptunaSweeper`: the official hydra-optuna-sweeper 1.4.0rc3 (config schema, samplers, search
  space syntax) with its own ask/tell loop. It adds the journal storage, passes each job its study
  and trial number (`tracking.study_name`, `tracking.trial_number`), records pruned trials as
  PRUNED and NaN objectives as FAIL, refuses to resume a study created with another base
  configuration, and writes the study's reports (trials table, best trial, plots) to
  `<sweep dir>/optuna/`;
- `MlflowSweepCallback`: a Hydra callback that opens one MLflow parent run per sweep (its id
  exported as BENCH_PARENT_RUN_ID, read by conf/tracking/mlflow.yaml), marks each trial's run, and
  at the end logs the best trial and the study's reports on the parent and closes it: FINISHED, or
  FAILED/KILLED when the sweep did not finish. It is never left RUNNING short of a SIGKILL;
- `optuna_pruning`: a Keras callback that reports the per-epoch VAL loss to the trial and prunes
  it (DFNNClassifier's `callbacks`); `dfnn`: the DFNN with width and depth as two numbers.

Only the sweeper touches Optuna's storage while a sweep runs (plus the pruning callback, which
writes intermediate values from the jobs); jobs return their objective through Hydra.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import BenchError, ConfigError

log = logging.getLogger(__name__)

PARENT_RUN_ENV = "BENCH_PARENT_RUN_ID"
# Costs a sweep may minimise beside VAL metrics. Scoring speed is measured on TEST rows, but it
# depends on their number only, never on their labels.
TIMING_METRICS = ("fit_seconds", "score_rows_per_second", "latency_per_row_median_seconds",
                  "latency_per_row_p99_seconds")
REPORTS_SUBDIR = "optuna"
# Keys that do not change what a trial computes; left out of a study's base-config id.
_NOT_IN_BASE = ("hydra", "tracking", "paths", "evaluation")


class SweepError(BenchError):
    """A sweep cannot go on (all its trials failed, or too many of a batch)."""


# --------------------------------------------------------------------------------- objective
def objective_names(optimized_metric: Any) -> list[str]:
    """The metric names a task returns: `optimized_metric` is one name or a list of names.

    Allowed: VAL metrics (`val_...`) and timings (TIMING_METRICS); TEST metrics never.
    """
    if isinstance(optimized_metric, str):
        names = [optimized_metric]
    elif isinstance(optimized_metric, Sequence):
        names = [str(name) for name in optimized_metric]
    else:
        raise ConfigError(f"optimized_metric must be a metric name or a list of names, got "
                          f"{optimized_metric!r}")
    if not names:
        raise ConfigError("optimized_metric is an empty list")
    for name in names:
        if name.startswith("test_"):
            raise ConfigError(f"optimized_metric {name!r} is a TEST metric: sweeps choose on VAL "
                              "and never look at TEST")
        if not (name.startswith("val_") or name in TIMING_METRICS):
            raise ConfigError(f"optimized_metric {name!r} must be a VAL metric (val_...) or a "
                              f"timing ({', '.join(TIMING_METRICS)})")
    if len(set(names)) < len(names):
        raise ConfigError(f"optimized_metric lists a metric twice: {names}")
    return names


def objective_value(metrics: Mapping[str, float], optimized_metric: Any) -> float | list[float]:
    """What the task returns: a float for one metric name, a list of floats for a list."""
    names = objective_names(optimized_metric)
    missing = [name for name in names if name not in metrics]
    if missing:
        available = sorted(k for k in metrics if k.startswith("val_") or k in TIMING_METRICS)
        raise ConfigError(f"optimized_metric {missing} was not computed; choose among "
                          f"{available}")
    values = [float(metrics[name]) for name in names]
    return values[0] if isinstance(optimized_metric, str) else values


def trial_outcome(job_return: JobReturn, n_objectives: int
                  ) -> tuple[str, list[float] | None, str]:
    """(Optuna state name, values, reason) of one finished Hydra job.

    A job that raised optuna.TrialPruned is PRUNED; one that raised anything else, returned a
    value of the wrong shape, or a NaN, is FAIL; otherwise COMPLETE with its values.
    """
    import optuna

    try:
        value = job_return.return_value  # re-raises the job's exception
    except optuna.TrialPruned as error:
        return "PRUNED", None, f"pruned: {error}"
    except Exception as error:
        return "FAIL", None, f"{type(error).__name__}: {error}"
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value]
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return "FAIL", None, f"the task returned {value!r}, not {n_objectives} number(s)"
    if len(values) != n_objectives:
        return "FAIL", None, (f"the task returned {len(values)} value(s) for {n_objectives} "
                              "objective(s)")
    if any(math.isnan(v) for v in values):
        return "FAIL", None, f"the objective is NaN: {values}"
    return "COMPLETE", values, ""


# ----------------------------------------------------------------------------------- storage
def make_storage(spec: str | None) -> Any:
    """An Optuna storage from `hydra.sweeper.storage`.

    None: in memory (lost at exit). A URL (`sqlite:///...`, `postgresql://...`): passed to Optuna
    (RDBStorage). Anything else is a file path, optionally written `journal:PATH`: a
    JournalStorage on a JournalFileBackend (file-locked appends), safe for several processes on
    one host - parallel sweeps of one study, and jobs reporting pruning values. SQLite is not
    meant for parallel writers.
    """
    if spec is None:
        return None
    spec = str(spec)
    if "://" in spec:
        if spec.startswith("sqlite:///"):
            Path(spec.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return spec
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(spec.removeprefix("journal:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def base_config_id(config: DictConfig, searched: Iterable[str]) -> str:
    """12-hex id of what every trial of a sweep shares: the composed config without hydra,
    tracking, paths, evaluation and the searched keys (unresolved, seed included)."""
    tree = OmegaConf.to_container(config, resolve=False)
    assert isinstance(tree, dict)
    for key in _NOT_IN_BASE:
        tree.pop(key, None)
    for dotted in searched:
        node: Any = tree
        *parents, leaf = dotted.lstrip("+~").split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    blob = json.dumps(tree, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _quote(value: str) -> str:
    """A string as a Hydra override value (quoted, so any character is kept)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ----------------------------------------------------------------------------------- sweeper
class _SweeperImpl(OptunaSweeperImpl):
    """The official implementation's setup, search-space parsing and trial configuration, with
    its own `sweep` loop (see the module docstring for what it adds)."""

    def sweep(self, arguments: list[str]) -> None:
        import optuna
        from optuna.trial import TrialState

        assert self.config is not None and self.launcher is not None
        self._process_searchspace_config()
        space, fixed, fixed_overrides = create_params_from_overrides(
            self._parse_sweeper_params_config() + list(arguments))
        for name in fixed:
            space.pop(name, None)
        is_grid = (isinstance(self.sampler, functools.partial)
                   and self.sampler.func == optuna.samplers.GridSampler)
        if is_grid:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in space.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        directions = [d.lower() for d in self._get_directions()]
        objectives = objective_names(self.config.optimized_metric)
        if len(objectives) != len(directions):
            raise ConfigError(f"optimized_metric {objectives} has {len(objectives)} metric(s) but "
                              f"hydra.sweeper.direction has {len(directions)} ({directions}): "
                              "give one direction per metric")
        if not space:
            raise ConfigError("the search space is empty: set hydra.sweeper.params (see "
                              "conf/hparams_search/) or pass a sweep such as "
                              "'model.max_depth=int(interval(2,10))'")
        study = optuna.create_study(study_name=self.study_name, storage=make_storage(self.storage),
                                    sampler=self.sampler, directions=directions,
                                    load_if_exists=True)
        self._check_resumed(study, directions, objectives, space)
        if study.trials and not is_grid:
            self._reseed(study)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        log.info(f"Study {study.study_name!r} in {self.storage or 'memory'}: "
                 f"{len(study.trials)} trial(s) so far; sampler {type(self.sampler).__name__}; "
                 f"{' / '.join(f'{d} {o}' for d, o in zip(directions, objectives, strict=True))}")
        outcomes: list[str] = []
        first_error: JobReturn | None = None
        try:
            remaining = self.n_trials
            while remaining > 0:
                batch = min(remaining, max(1, self.n_jobs))
                trials = [study.ask() for _ in range(batch)]
                overrides = self._configure_trials(trials, space, fixed, fixed_overrides)
                linked = []
                for i, (trial, override) in enumerate(zip(trials, overrides, strict=True)):
                    trial.set_user_attr("hydra.job_num", self.job_idx + i)
                    trial.set_user_attr("hydra.sweep_dir", str(sweep_dir))
                    linked.append((*override, f"++tracking.study_name={_quote(study.study_name)}",
                                   f"++tracking.trial_number={trial.number}"))
                try:
                    returns = self.launcher.launch(linked, initial_job_idx=self.job_idx)
                except BaseException:  # interrupted (Ctrl-C, SIGTERM): no trial left RUNNING
                    for trial in trials:
                        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    raise
                self.job_idx += len(returns)
                failed = []
                for trial, ret in zip(trials, returns, strict=True):
                    state, values, reason = trial_outcome(ret, len(directions))
                    try:
                        study.tell(trial, values=values, state=TrialState[state])
                    except RuntimeError as error:  # GridSampler stops the study when exhausted
                        if not (is_grid and "Study.stop" in str(error)):
                            raise
                    outcomes.append(state)
                    if state == "FAIL":
                        failed.append(ret)
                        log.warning(f"Trial {trial.number} failed: {reason}")
                    elif state == "PRUNED":
                        log.info(f"Trial {trial.number} {reason}")
                    else:
                        log.info(f"Trial {trial.number}: {values} {trial.params}")
                first_error = first_error or next(
                    (r for r in failed if r.status.name == "FAILED"), None)
                if failed and len(failed) / len(returns) > self.max_failure_rate:
                    log.error(f"{len(failed)} of {len(returns)} trials of a batch failed "
                              f"(max_failure_rate={self.max_failure_rate})")
                    for ret in failed:
                        if ret.status.name == "FAILED":
                            _ = ret.return_value  # re-raise the job's error, with its traceback
                    raise SweepError(f"{len(failed)} of {len(returns)} trials of a batch failed "
                                     f"(max_failure_rate={self.max_failure_rate})")
                remaining -= batch
        finally:
            write_study_reports(study, sweep_dir / REPORTS_SUBDIR, objectives)
        counts = {s: outcomes.count(s) for s in ("COMPLETE", "PRUNED", "FAIL")}
        log.info(f"Study {study.study_name!r}: this sweep {counts}; {len(study.trials)} trial(s) "
                 "in the study")
        if outcomes and counts["COMPLETE"] == 0 and counts["PRUNED"] == 0:
            if first_error is not None:
                _ = first_error.return_value
            raise SweepError(f"all {len(outcomes)} trials of this sweep failed")

    def _reseed(self, study: Any) -> None:
        """A resumed study gets its sampler seeded with seed + trials so far: re-seeding with
        the same seed would propose the same random start-up points again."""
        config = getattr(self, "sampler_config", None)
        if config is None or config.get("seed") is None:
            return
        seed = int(config.seed) + len(study.trials)
        self.sampler = _instantiate_sampler(config, seed=seed)
        study.sampler = self.sampler
        log.info(f"Resumed study: sampler seeded with {seed} (seed + trials so far)")

    def _check_resumed(self, study: Any, directions: list[str], objectives: list[str],
                       space: Mapping[str, Any]) -> None:
        """A resumed study must optimise the same thing on the same base configuration."""
        stored = [d.name.lower() for d in study.directions]
        if stored != directions:
            raise ConfigError(f"study {study.study_name!r} was created to {stored}, this sweep "
                              f"asks to {directions}: choose another hydra.sweeper.study_name")
        base = base_config_id(self.config, space)
        attrs = study.user_attrs
        previous = attrs.get("bench.base_config_id")
        if previous is not None and previous != base:
            raise ConfigError(
                f"study {study.study_name!r} in {self.storage} was created with another base "
                f"configuration (id {previous}, this sweep {base}): dataset, model, seed, "
                "optimized_metric or a fixed override differ, so its trials are not comparable. "
                "Name a new study (hydra.sweeper.study_name=...) or rerun the first command.")
        if previous is None:
            study.set_user_attr("bench.base_config_id", base)
            study.set_user_attr("bench.objectives", objectives)
        described = {name: repr(dist) for name, dist in space.items()}
        if attrs.get("bench.search_space") not in (None, described):
            log.warning(f"study {study.study_name!r}: the search space differs from its last "
                        "sweep's; Optuna handles it, but compare trials with care")
        study.set_user_attr("bench.search_space", described)


class OptunaSweeper(Sweeper):
    """`hydra.sweeper._target_: bench.sweeps.OptunaSweeper` over `hydra/sweeper: optuna`.

    Same settings as hydra-optuna-sweeper 1.4.0rc3. `storage`: see `make_storage`;
    `max_failure_rate`: the share of FAIL trials in one batch of `n_jobs` above which the sweep
    stops (1.0: never; pruned trials are not failures).
    """

    def __init__(self, sampler: Any, direction: Any, storage: Any | None, study_name: str | None,
                 n_trials: int, n_jobs: int, max_failure_rate: float,
                 custom_search_space: str | None, params: DictConfig | None) -> None:
        self.sweeper = _SweeperImpl(_instantiate_sampler(sampler), direction, storage,
                                    study_name, n_trials, n_jobs, max_failure_rate,
                                    custom_search_space, params)
        self.sweeper.sampler_config = sampler

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function,
                           config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)


def _instantiate_sampler(config: Any, **overrides: Any) -> Any:
    return instantiate(config, **overrides, _execution_whitelist_=(
        "hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*"))


def register_sweeper() -> None:
    """Make `bench.sweeps.OptunaSweeper` known to Hydra, which instantiates only registered
    plugin classes. Called by MlflowSweepCallback, which Hydra builds before the sweeper."""
    from hydra.core.plugins import Plugins

    Plugins.instance().register(OptunaSweeper)


# ----------------------------------------------------------------------------- study reports
def write_study_reports(study: Any, folder: Path, objectives: Sequence[str]) -> None:
    """trials.csv, best.json, param_importances.json and plots/*.png of a study into `folder`.

    Never raises: a report that cannot be made (too few trials) is logged and skipped.
    """
    try:
        _write_study_reports(study, folder, list(objectives))
    except Exception as error:  # reports must not hide the sweep's own outcome
        log.warning(f"study reports not written: {type(error).__name__}: {error}")


def _write_study_reports(study: Any, folder: Path, objectives: list[str]) -> None:
    from optuna.trial import TrialState

    folder.mkdir(parents=True, exist_ok=True)
    frame = study.trials_dataframe()
    if len(objectives) == 1:
        frame = frame.rename(columns={"value": objectives[0]})
    else:
        frame = frame.rename(columns={f"values_{i}": name for i, name in enumerate(objectives)})
    frame.to_csv(folder / "trials.csv", index=False)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best: dict[str, Any] = {"study_name": study.study_name, "objectives": objectives,
                            "directions": [d.name.lower() for d in study.directions],
                            "n_trials": len(study.trials), "n_complete": len(complete)}
    if complete and len(objectives) == 1:
        trial = study.best_trial
        best["best"] = {"number": trial.number, "values": dict(zip(objectives, trial.values,
                                                                   strict=True)),
                        "params": trial.params}
    elif complete:
        best["pareto_front"] = [{"number": t.number,
                                 "values": dict(zip(objectives, t.values, strict=True)),
                                 "params": t.params} for t in study.best_trials]
    (folder / "best.json").write_text(json.dumps(best, indent=2, default=str))
    if not complete:
        return
    importances = {}
    for i, name in enumerate(objectives):
        try:
            importances[name] = _importances(study, i if len(objectives) > 1 else None)
        except Exception as error:
            log.info(f"parameter importances for {name} skipped: {error}")
    if importances:
        (folder / "param_importances.json").write_text(json.dumps(importances, indent=2))
    _write_plots(study, folder / "plots", objectives)


def _importances(study: Any, index: int | None) -> dict[str, float]:
    import optuna

    target = None if index is None else (lambda t: t.values[index])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = optuna.importance.get_param_importances(study, target=target)
    return {k: float(v) for k, v in values.items()}


def _write_plots(study: Any, folder: Path, objectives: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    folder.mkdir(parents=True, exist_ok=True)
    single = len(objectives) == 1
    plots: dict[str, Any] = {}
    for i, name in enumerate(objectives):
        target = None if single else (lambda t, i=i: t.values[i])
        suffix = "" if single else f"_{name}"
        plots[f"optimization_history{suffix}"] = functools.partial(
            vis.plot_optimization_history, study, target=target, target_name=name)
        plots[f"param_importances{suffix}"] = functools.partial(
            vis.plot_param_importances, study, target=target, target_name=name)
        plots[f"parallel_coordinate{suffix}"] = functools.partial(
            vis.plot_parallel_coordinate, study, target=target, target_name=name)
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots["intermediate_values"] = functools.partial(vis.plot_intermediate_values, study)
    if len(objectives) in (2, 3):
        plots["pareto_front"] = functools.partial(vis.plot_pareto_front, study,
                                                  target_names=objectives)
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw()
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
            plt.close(figure)
        except Exception as error:
            log.info(f"plot {name} skipped: {type(error).__name__}: {error}")
        finally:
            plt.close("all")


# ------------------------------------------------------------------------------ MLflow runs
class MlflowSweepCallback(Callback):
    """One MLflow parent run per sweep; every trial's run nested under it.

    on_multirun_start (the sweeping process): create the parent run in the experiment the
    trials use, log the search space and the sweeper settings, export its id in
    BENCH_PARENT_RUN_ID (jobs read it as tracking.parent_run_id). on_job_end (the job's process):
    tag the trial's run with the study, trial number and Optuna state; a NaN objective ends it
    FAILED, a pruned trial KILLED. on_multirun_end: log the best trial's params and metrics, the
    trials table, importances and plots on the parent and end it FINISHED, FAILED or KILLED.
    """

    def __init__(self) -> None:
        register_sweeper()
        self.run_id: str | None = None
        self.uri: str | None = None
        self.experiment_id: str | None = None
        self._job_started_ms = 0.0
        self._previous_sigterm: Any = None

    # -- sweep start
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        from bench import tracking

        self.uri = str(config.tracking.uri)
        tracking.preflight(self.uri)
        client = MlflowClient(self.uri)
        choices = {k: str(v) for k, v in config.hydra.runtime.choices.items()
                   if not k.startswith("hydra")}
        experiment = config.tracking.experiment or choices.get("dataset", "sweeps")
        existing = client.get_experiment_by_name(experiment)
        self.experiment_id = (existing.experiment_id if existing is not None else
                              client.create_experiment(
                                  experiment,
                                  artifact_location=tracking.default_artifact_location(self.uri)))
        sweeper = config.hydra.sweeper
        study_name = sweeper.get("study_name")
        tags = {"bench.sweep": "parent", "sweep.study_name": str(study_name),
                "sweep.storage": str(sweeper.get("storage")),
                "sweep.dir": str(config.hydra.sweep.dir),
                "sweep.optimized_metric": json.dumps(_plain(config.optimized_metric)),
                "sweep.direction": json.dumps(_plain(sweeper.get("direction"))),
                "git_commit": tracking.git_commit(),
                **{f"sweep.choice.{k}": v for k, v in choices.items()}}
        run = client.create_run(self.experiment_id, tags=tags,
                                run_name=f"sweep/{study_name or choices.get('hparams_search')}")
        self.run_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.run_id
        self._trap_sigterm()
        space = dict(_plain(sweeper.get("params")) or {})
        for override in config.hydra.overrides.task:  # sweeps given on the command line
            key, _, value = str(override).partition("=")
            if "(" in value or "," in value:
                space[key] = value
        params = {f"search.{k}": v for k, v in space.items()}
        for key in ("n_trials", "n_jobs", "storage", "study_name", "direction",
                    "max_failure_rate"):
            params[f"sweeper.{key}"] = _plain(sweeper.get(key))
        sampler = sweeper.get("sampler") or {}
        params["sweeper.sampler"] = str(sampler.get("_target_", "")).rsplit(".", 1)[-1]
        params["sweeper.sampler_seed"] = sampler.get("seed")
        params["sweeper.launcher"] = str(config.hydra.launcher.get("_target_", "")
                                         ).rsplit(".", 1)[-1]
        params["optimized_metric"] = _plain(config.optimized_metric)
        _log_params(client, self.run_id, params)
        base = OmegaConf.to_container(config, resolve=False)
        assert isinstance(base, dict)
        base.pop("hydra", None)
        client.log_text(self.run_id, OmegaConf.to_yaml(OmegaConf.create(base)),
                        "config/base.yaml")
        client.log_text(self.run_id, OmegaConf.to_yaml(sweeper), "config/sweeper.yaml")
        log.info(f"MLflow parent run {self.run_id} (experiment '{experiment}')")

    # -- each job
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._job_started_ms = time.time() * 1000

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        parent = config.tracking.get("parent_run_id")
        if not parent:
            return
        import mlflow
        from mlflow.tracking import MlflowClient

        run = mlflow.last_active_run()  # this job's run, if the job got as far as starting one
        if (run is None or run.data.tags.get("mlflow.parentRunId") != parent
                or run.info.start_time < self._job_started_ms - 1000):
            return
        try:
            n_objectives = len(objective_names(config.optimized_metric))
        except ConfigError:
            n_objectives = 1
        state, _, reason = trial_outcome(job_return, n_objectives)
        client = MlflowClient(str(config.tracking.uri))
        run_id = run.info.run_id
        tags = {"bench.sweep": "trial", "optuna.state": state,
                "hydra.job_num": str(config.hydra.job.num)}
        if config.tracking.get("trial_number") is not None:
            tags["optuna.trial_number"] = str(config.tracking.trial_number)
            tags["optuna.study_name"] = str(config.tracking.study_name)
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        if state == "FAIL" and run.info.status == "FINISHED":
            client.set_tag(run_id, "error", reason[:5000])
            client.set_terminated(run_id, "FAILED")
        elif state == "PRUNED":
            client.set_terminated(run_id, "KILLED")

    # -- sweep end
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        error = sys.exc_info()[1]  # called from Hydra's `finally`: the sweep's exception, if any
        if self.run_id is None:
            return
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        status = ("FINISHED" if error is None else
                  "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED")
        try:
            if error is not None:
                client.set_tag(self.run_id, "error", f"{type(error).__name__}: {error}"[:5000])
            self._summarize(client, config)
        except Exception as problem:
            log.warning(f"sweep summary incomplete: {type(problem).__name__}: {problem}")
            client.set_tag(self.run_id, "summary_error", f"{type(problem).__name__}: {problem}")
        finally:
            client.set_terminated(self.run_id, status)
            os.environ.pop(PARENT_RUN_ENV, None)
            self._restore_sigterm()
            log.info(f"MLflow parent run {self.run_id} ended {status}")

    def _summarize(self, client: Any, config: DictConfig) -> None:
        import pandas as pd

        assert self.run_id is not None and self.experiment_id is not None
        children = _search(client, self.experiment_id,
                           f"tags.mlflow.parentRunId = '{self.run_id}'")
        for run in children:  # jobs killed with the sweep (Ctrl-C, SIGTERM) cannot finish now
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "KILLED")
        states = [r.data.tags.get("optuna.state", r.info.status) for r in children]
        counts = {"n_trials": len(children),
                  "n_trials_complete": sum(s in ("COMPLETE", "FINISHED") for s in states),
                  "n_trials_failed": sum(s in ("FAIL", "FAILED") for s in states),
                  "n_trials_pruned": sum(s == "PRUNED" for s in states)}
        client.log_batch(self.run_id, metrics=_metric_list(counts))
        folder = Path(str(config.hydra.sweep.dir)) / REPORTS_SUBDIR
        study_name = config.hydra.sweeper.get("study_name")
        runs = {}
        if study_name is not None:
            for r in _search(client, self.experiment_id,
                             f"tags.`optuna.study_name` = '{study_name}'"):
                runs[int(r.data.tags["optuna.trial_number"])] = r
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "trials.csv"
            if (folder / "trials.csv").exists():
                frame = pd.read_csv(folder / "trials.csv")
                if "number" in frame.columns:
                    frame["mlflow_run_id"] = [runs[n].info.run_id if n in runs else None
                                              for n in frame["number"]]
                    frame["mlflow_parent_run_id"] = [
                        runs[n].data.tags.get("mlflow.parentRunId") if n in runs else None
                        for n in frame["number"]]
            else:  # another sweeper: the table comes from the child runs
                frame = pd.DataFrame([{"mlflow_run_id": r.info.run_id, "status": r.info.status,
                                       **{f"params_{k}": v for k, v in r.data.params.items()},
                                       **r.data.metrics} for r in children])
            frame.to_csv(table, index=False)
            client.log_artifact(self.run_id, str(table), "reports")
        for name in ("best.json", "param_importances.json"):
            if (folder / name).exists():
                client.log_artifact(self.run_id, str(folder / name), "reports")
        if (folder / "plots").is_dir():
            for png in sorted((folder / "plots").glob("*.png")):
                client.log_artifact(self.run_id, str(png), "plots")
        if (folder / "best.json").exists():
            self._log_best(client, json.loads((folder / "best.json").read_text()), runs)

    def _log_best(self, client: Any, best: Mapping[str, Any], runs: Mapping[int, Any]) -> None:
        assert self.run_id is not None
        if "best" in best:
            trial = best["best"]
            _log_params(client, self.run_id,
                        {f"best.{k}": v for k, v in trial["params"].items()})
            client.set_tag(self.run_id, "best_trial_number", str(trial["number"]))
            metrics = {"best_trial_number": trial["number"]}
            child = runs.get(int(trial["number"]))
            if child is not None:
                client.set_tag(self.run_id, "best_trial_run_id", child.info.run_id)
                metrics.update({f"best_{k}": v for k, v in child.data.metrics.items()})
            else:
                metrics.update({f"best_{k}": v for k, v in trial["values"].items()})
            client.log_batch(self.run_id, metrics=_metric_list(metrics))
        elif "pareto_front" in best:
            client.set_tag(self.run_id, "pareto_trial_numbers",
                           ",".join(str(t["number"]) for t in best["pareto_front"]))

    # -- a SIGTERM (a job scheduler's stop) ends the parent KILLED rather than RUNNING
    def _trap_sigterm(self) -> None:
        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        except ValueError:  # not the main thread
            self._previous_sigterm = None

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _search(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string,
                                  max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _log_params(client: Any, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def _metric_list(metrics: Mapping[str, Any]) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, 0) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)]


# ---------------------------------------------------------------------------------- pruning
def optuna_pruning(monitor: str = "val_loss", mode: str = "min", n_startup_trials: int = 5,
                   n_warmup_steps: int = 5, study_name: str | None = None,
                   trial_number: int | None = None) -> Any:
    """A Keras callback that reports `monitor` after each epoch to the running Optuna trial and
    raises optuna.TrialPruned when a median pruner says the trial is worse than the median of
    earlier trials at that epoch; the sweeper records it PRUNED.

    `study_name` / `trial_number` come from tracking.* (set by the sweeper); outside a sweep, or
    for a multi-objective study (Optuna cannot prune those), the callback does nothing. The value
    is reported with the sign that matches the study's direction (-val_loss for a study that
    maximises val_f1), so the pruner compares like with like.
    """
    from bench.models.keras_nets import _keras

    keras = _keras()
    if study_name is None or trial_number is None:
        return keras.callbacks.Callback()
    import optuna
    from hydra.core.hydra_config import HydraConfig

    storage = make_storage(HydraConfig.get().sweeper.get("storage"))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials,
                                         n_warmup_steps=n_warmup_steps)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    if len(study.directions) > 1:
        return keras.callbacks.Callback()
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id,
                                                                      int(trial_number))
    trial = optuna.Trial(study, trial_id)
    maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
    sign = -1.0 if (mode == "min") == maximise else 1.0
    return _pruning_class(keras)(trial, monitor, sign)


@functools.cache
def _pruning_class(keras: Any) -> type:
    import optuna

    class OptunaPruningCallback(keras.callbacks.Callback):
        def __init__(self, trial: Any, monitor: str, sign: float) -> None:
            super().__init__()
            self.trial, self.monitor, self.sign = trial, monitor, sign

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            self.trial.report(self.sign * float(value), step=epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: {self.monitor}={float(value):.5g} "
                                         "worse than the median of earlier trials")

    return OptunaPruningCallback


# ----------------------------------------------------------------------------- search spaces
def layer_widths(units: int, depth: int, shrink: float = 0.5) -> list[int]:
    """Widths of a funnel: `units`, then each layer `shrink` times the one before (>= 1)."""
    if int(depth) < 1 or int(units) < 1:
        raise ConfigError(f"units and depth must be >= 1, got units={units}, depth={depth}")
    return [max(1, round(int(units) * shrink**i)) for i in range(int(depth))]


def dfnn(units: int = 128, depth: int = 2, shrink: float = 0.5,
         hidden_units: Sequence[int] | None = None, class_weight: str | None = "balanced",
         **params: Any) -> Any:
    """DFNNClassifier whose hidden layers are `layer_widths(units, depth, shrink)`, so that a
    sweep searches width and depth as two numbers (128, 2 -> the thesis 128-64).

    `class_weight`: "balanced", or "none"/None (a Hydra choice cannot hold null).
    """
    from bench.models.keras_nets import DFNNClassifier

    if hidden_units is not None:
        raise ConfigError("model.hidden_units is set by units/depth in this preset; leave it null")
    weight = None if class_weight in (None, "none", "None") else class_weight
    return DFNNClassifier(hidden_units=layer_widths(units, depth, shrink), class_weight=weight,
                          **params)
