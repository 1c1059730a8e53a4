"""`MlflowSweepCallback`: one MLflow parent run per sweep, every trial's run nested under it.

All MLflow calls go through bench.tracking. The parent's id travels to the jobs in the
environment variable BENCH_PARENT_RUN_ID, which conf/tracking/mlflow.yaml reads as
tracking.parent_run_id.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from bench import tracking
from bench.errors import ConfigError, raise_interrupted
from bench.objective import objective_names, trial_outcome
from bench.sweeps.reports import REPORTS_SUBDIR
from bench.sweeps.sweeper import register_sweeper

log = logging.getLogger(__name__)
PARENT_RUN_ENV = "BENCH_PARENT_RUN_ID"
SWEEPER_PARAMS = ("n_trials", "n_jobs", "storage", "study_name", "direction", "max_failure_rate")


class MlflowSweepCallback(Callback):
    """One MLflow parent run per sweep; every trial's run nested under it.

    on_multirun_start (the sweeping process): create the parent run in the experiment the
    trials use, log the search space and the sweeper settings, export its id in
    BENCH_PARENT_RUN_ID (jobs read it as tracking.parent_run_id). on_job_end (the job's process):
    tag the trial's run with the study, trial number and Optuna state; a NaN objective ends it
    FAILED, a pruned trial KILLED. on_multirun_end: log the best trial's params and metrics, the
    trials table, importances and plots on the parent and end it FINISHED, FAILED or KILLED
    (also on a SIGTERM, which is turned into a KeyboardInterrupt while the sweep runs).
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
        self.uri = str(config.tracking.uri)
        tracking.preflight(self.uri)
        choices = {k: str(v) for k, v in config.hydra.runtime.choices.items()
                   if not k.startswith("hydra")}
        experiment = config.tracking.experiment or choices.get("dataset", "sweeps")
        self.experiment_id = tracking.get_or_create_experiment(self.uri, experiment)
        study_name = config.hydra.sweeper.get("study_name")
        self.run_id = tracking.create_run(
            self.uri, self.experiment_id, tags=_parent_tags(config, choices),
            run_name=f"sweep/{study_name or choices.get('hparams_search')}")
        os.environ[PARENT_RUN_ENV] = self.run_id
        self._trap_sigterm()
        tracking.log_params(_sweep_params(config), run_id=self.run_id, uri=self.uri)
        base = OmegaConf.to_container(config, resolve=False)
        assert isinstance(base, dict)
        base.pop("hydra", None)
        tracking.log_text_to(self.uri, self.run_id, OmegaConf.to_yaml(OmegaConf.create(base)),
                             "config/base.yaml")
        tracking.log_text_to(self.uri, self.run_id, OmegaConf.to_yaml(config.hydra.sweeper),
                             "config/sweeper.yaml")
        log.info(f"MLflow parent run {self.run_id} (experiment '{experiment}')")

    # -- each job
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._job_started_ms = time.time() * 1000

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        parent = config.tracking.get("parent_run_id")
        if not parent:
            return
        run = tracking.last_active_run()  # this job's run, if the job got as far as starting one
        if (run is None or run.data.tags.get("mlflow.parentRunId") != parent
                or run.info.start_time < self._job_started_ms - 1000):
            return
        try:
            n_objectives = len(objective_names(config.optimized_metric))
        except ConfigError:
            n_objectives = 1
        state, _, reason = trial_outcome(job_return, n_objectives)
        uri, run_id = str(config.tracking.uri), run.info.run_id
        tags = {"bench.sweep": "trial", "optuna.state": state,
                "hydra.job_num": str(config.hydra.job.num)}
        if config.tracking.get("trial_number") is not None:
            tags["optuna.trial_number"] = str(config.tracking.trial_number)
            tags["optuna.study_name"] = str(config.tracking.study_name)
        ended_despite_failure = state == "FAIL" and run.info.status == "FINISHED"  # e.g. NaN
        if ended_despite_failure:
            tags["error"] = reason
        tracking.set_tags(uri, run_id, tags)
        if ended_despite_failure:
            tracking.set_terminated(uri, run_id, "FAILED")
        elif state == "PRUNED":
            tracking.set_terminated(uri, run_id, "KILLED")

    # -- sweep end
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        error = sys.exc_info()[1]  # called from Hydra's `finally`: the sweep's exception, if any
        if self.run_id is None:
            return
        assert self.uri is not None
        status = ("FINISHED" if error is None else
                  "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED")
        try:
            if error is not None:
                tracking.set_tags(self.uri, self.run_id,
                                  {"error": f"{type(error).__name__}: {error}"})
            self._summarize(config)
        except Exception as problem:
            log.warning(f"sweep summary incomplete: {type(problem).__name__}: {problem}")
            tracking.set_tags(self.uri, self.run_id,
                              {"summary_error": f"{type(problem).__name__}: {problem}"})
        finally:
            tracking.set_terminated(self.uri, self.run_id, status)
            os.environ.pop(PARENT_RUN_ENV, None)
            self._restore_sigterm()
            log.info(f"MLflow parent run {self.run_id} ended {status}")

    def _summarize(self, config: DictConfig) -> None:
        """Trial counts, the trials table, reports, plots and the best trial on the parent."""
        assert self.run_id is not None and self.uri is not None
        children = self._search(f"tags.mlflow.parentRunId = '{self.run_id}'")
        for run in children:  # jobs killed with the sweep (Ctrl-C, SIGTERM) cannot finish now
            if run.info.status == "RUNNING":
                tracking.set_terminated(self.uri, run.info.run_id, "KILLED")
        tracking.log_metrics(_trial_counts(children), run_id=self.run_id, uri=self.uri)
        folder = Path(str(config.hydra.sweep.dir)) / REPORTS_SUBDIR
        runs = self._runs_by_trial(config.hydra.sweeper.get("study_name"))
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "trials.csv"
            _trials_table(folder, runs, children).to_csv(table, index=False)
            tracking.log_artifact_to(self.uri, self.run_id, table, "reports")
        for name in ("best.json", "param_importances.json"):
            if (folder / name).exists():
                tracking.log_artifact_to(self.uri, self.run_id, folder / name, "reports")
        for png in sorted((folder / "plots").glob("*.png")):
            tracking.log_artifact_to(self.uri, self.run_id, png, "plots")
        if (folder / "best.json").exists():
            self._log_best(json.loads((folder / "best.json").read_text()), runs)

    def _search(self, filter_string: str) -> list[Any]:
        assert self.uri is not None and self.experiment_id is not None
        return tracking.search_all_runs(self.uri, [self.experiment_id], filter_string)

    def _runs_by_trial(self, study_name: str | None) -> dict[int, Any]:
        """{trial number: MLflow run} of every run of the study (this sweep's and earlier)."""
        if study_name is None:
            return {}
        return {int(r.data.tags["optuna.trial_number"]): r
                for r in self._search(f"tags.`optuna.study_name` = '{study_name}'")}

    def _log_best(self, best: Mapping[str, Any], runs: Mapping[int, Any]) -> None:
        """The best trial's params (best.*), number and metrics (best_*, from its run when
        found) on the parent; for several objectives, the Pareto front's trial numbers."""
        assert self.run_id is not None and self.uri is not None
        if "best" in best:
            trial = best["best"]
            tracking.log_params({f"best.{k}": v for k, v in trial["params"].items()},
                                run_id=self.run_id, uri=self.uri)
            tags = {"best_trial_number": str(trial["number"])}
            metrics = {"best_trial_number": trial["number"]}
            child = runs.get(int(trial["number"]))
            if child is not None:
                tags["best_trial_run_id"] = child.info.run_id
                metrics.update({f"best_{k}": v for k, v in child.data.metrics.items()})
            else:
                metrics.update({f"best_{k}": v for k, v in trial["values"].items()})
            tracking.set_tags(self.uri, self.run_id, tags)
            tracking.log_metrics(metrics, run_id=self.run_id, uri=self.uri)
        elif "pareto_front" in best:
            tracking.set_tags(self.uri, self.run_id, {"pareto_trial_numbers": ",".join(
                str(t["number"]) for t in best["pareto_front"])})

    # -- a SIGTERM (a job scheduler's stop) ends the parent KILLED rather than RUNNING
    def _trap_sigterm(self) -> None:
        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, raise_interrupted)
        except ValueError:  # not the main thread
            self._previous_sigterm = None

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None




def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _parent_tags(config: DictConfig, choices: Mapping[str, str]) -> dict[str, str]:
    """The parent run's tags: the study, its storage, sweep folder, objectives, directions,
    git commit and the chosen config groups (sweep.choice.*)."""
    sweeper = config.hydra.sweeper
    return {"bench.sweep": "parent", "sweep.study_name": str(sweeper.get("study_name")),
            "sweep.storage": str(sweeper.get("storage")),
            "sweep.dir": str(config.hydra.sweep.dir),
            "sweep.optimized_metric": json.dumps(_plain(config.optimized_metric)),
            "sweep.direction": json.dumps(_plain(sweeper.get("direction"))),
            "git_commit": tracking.git_commit(),
            **{f"sweep.choice.{k}": v for k, v in choices.items()}}


def _sweep_params(config: DictConfig) -> dict[str, Any]:
    """The parent run's params: the search space (search.*, command-line sweeps included),
    the sweeper settings (sweeper.*) and optimized_metric."""
    sweeper = config.hydra.sweeper
    space = dict(_plain(sweeper.get("params")) or {})
    for override in config.hydra.overrides.task:  # sweeps given on the command line
        key, _, value = str(override).partition("=")
        if "(" in value or "," in value:
            space[key] = value
    params = {f"search.{k}": v for k, v in space.items()}
    params.update({f"sweeper.{key}": _plain(sweeper.get(key)) for key in SWEEPER_PARAMS})
    sampler = sweeper.get("sampler") or {}
    params["sweeper.sampler"] = str(sampler.get("_target_", "")).rsplit(".", 1)[-1]
    params["sweeper.sampler_seed"] = sampler.get("seed")
    params["sweeper.launcher"] = str(config.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1]
    params["optimized_metric"] = _plain(config.optimized_metric)
    return params


def _trial_counts(children: list[Any]) -> dict[str, int]:
    """n_trials, n_trials_complete / _failed / _pruned of the parent's child runs."""
    states = [r.data.tags.get("optuna.state", r.info.status) for r in children]
    return {"n_trials": len(children),
            "n_trials_complete": sum(s in ("COMPLETE", "FINISHED") for s in states),
            "n_trials_failed": sum(s in ("FAIL", "FAILED") for s in states),
            "n_trials_pruned": sum(s == "PRUNED" for s in states)}


def _trials_table(folder: Path, runs: Mapping[int, Any], children: list[Any]) -> Any:
    """The sweeper's trials.csv with each trial's MLflow run and parent run ids; without one
    (another sweeper), a table built from the child runs."""
    import pandas as pd

    if not (folder / "trials.csv").exists():
        return pd.DataFrame([{"mlflow_run_id": r.info.run_id, "status": r.info.status,
                              **{f"params_{k}": v for k, v in r.data.params.items()},
                              **r.data.metrics} for r in children])
    frame = pd.read_csv(folder / "trials.csv")
    if "number" in frame.columns:
        frame["mlflow_run_id"] = [runs[n].info.run_id if n in runs else None
                                  for n in frame["number"]]
        frame["mlflow_parent_run_id"] = [
            runs[n].data.tags.get("mlflow.parentRunId") if n in runs else None
            for n in frame["number"]]
    return frame
