"""The Hydra sweeper plugin `bench.sweeps.sweeper.OptunaSweeper` (hydra/sweeper/bench_optuna.yaml).

The official hydra-optuna-sweeper 1.4.0rc3 does the setup, the search-space parsing and the
trial configuration; bench runs its own ask/tell loop on top, which adds: the journal storage
(`storage.make_storage`), each job's study name and trial number as `tracking.*` overrides,
PRUNED and FAIL trials (`objective.trial_outcome`), the resume checks (`resume`), a stop when a
batch fails beyond `max_failure_rate`, and the study's reports in `<sweep dir>/optuna/`.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate

# Private module, kept on purpose: the plugin's only public name is the Hydra plugin class
# (hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper), which builds an
# OptunaSweeperImpl internally and runs its fixed loop. Subclassing the Impl is the one way to
# reuse its setup, search-space parser (create_params_from_overrides) and trial configuration
# rather than copying them; hydra-optuna-sweeper is pinned in pyproject.toml.
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import DictConfig

from bench.errors import BenchError, ConfigError
from bench.objective import objective_names, trial_outcome
from bench.sweeps.reports import REPORTS_SUBDIR, write_study_reports
from bench.sweeps.resume import (
    ask_owned,
    check_resumed,
    fail_orphaned_trials,
    requeue_killed,
    resumed_seed,
    trials_to_run,
)
from bench.sweeps.storage import make_storage

log = logging.getLogger(__name__)
OUTCOMES = ("COMPLETE", "PRUNED", "FAIL")


class SweepError(BenchError):
    """A sweep cannot go on (all its trials failed, or too many of a batch)."""


class OptunaSweeper(Sweeper):
    """The Hydra sweeper plugin. Same settings as hydra-optuna-sweeper 1.4.0rc3.

    `storage`: see `storage.make_storage`; `max_failure_rate`: the share of FAIL trials in one
    batch of `n_jobs` above which the sweep stops (1.0: never; pruned trials are not failures).
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


def register_sweeper() -> None:
    """Make `OptunaSweeper` known to Hydra, which instantiates only registered plugin classes.
    Called by MlflowSweepCallback, which Hydra builds before the sweeper."""
    from hydra.core.plugins import Plugins

    Plugins.instance().register(OptunaSweeper)


def _attach_run_ids(trials: Sequence[Any], sweep_dir: Path) -> None:
    """Each trial's MLflow run id as its user attribute `mlflow_run_id`, from the line its job
    wrote to <sweep dir>/cells.jsonl (bench.callbacks.GridSummary) when it ended."""
    from bench import cells

    runs = {line.get("job"): line.get("run_id")
            for line in cells.read_lines(sweep_dir / cells.CELLS_FILE)}
    for trial in trials:
        run_id = runs.get(trial.user_attrs.get("hydra.job_num"))
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)


def best_lines(study: Any) -> list[str]:
    """The sweep's last lines: the best trial's value(s), params and MLflow run id (for several
    objectives, each trial of the Pareto front)."""
    try:
        best = study.best_trials
    except ValueError:
        return []
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    lines = [f"Pareto front: {len(best)} trial(s)"] if len(study.directions) > 1 else []
    for trial in best[:10]:
        values = ", ".join(f"{n}={v:.4f}" for n, v in zip(names, trial.values, strict=True))
        lines.append(f"Best trial {trial.number}: {values}; params {trial.params}; "
                     f"MLflow run {trial.user_attrs.get('mlflow_run_id', '?')}")
    return lines


def _instantiate_sampler(config: Any, **overrides: Any) -> Any:
    return instantiate(config, **overrides, _execution_whitelist_=(
        "hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*"))


def _quote(value: str) -> str:
    """A string as a Hydra override value (quoted, so any character is kept)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _SweeperImpl(OptunaSweeperImpl):
    """The official implementation's setup, search-space parsing and trial configuration, with
    bench's `sweep` loop: ask a batch of `n_jobs` trials, launch them, tell their outcomes."""

    sampler_config: Any = None

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        objectives = objective_names(self.config.optimized_metric)
        directions = self._checked_directions(objectives)
        space, fixed, fixed_overrides = self._search_space(arguments)
        study = self._open_study(space, directions, objectives)
        self._outcomes: list[str] = []
        self._first_error: JobReturn | None = None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            remaining = self._resumed(study)
            while remaining > 0:
                batch = min(remaining, max(1, self.n_jobs))
                trials = [ask_owned(study) for _ in range(batch)]
                jobs = self._job_overrides(study, trials, space, fixed, fixed_overrides)
                self._run_batch(study, trials, jobs, len(directions))
                remaining -= batch
        finally:
            write_study_reports(study, sweep_dir / REPORTS_SUBDIR, objectives)
        self._finish(study)

    # -- before the first trial
    def _resumed(self, study: Any) -> int:
        """Trials of dead sweeps ended FAIL; with `resume=true` the killed ones re-run and the
        study topped up to n_trials finished trials. Returns how many trials to ask."""
        fail_orphaned_trials(study, self.storage)
        resume = bool(self.config.get("resume", False))
        if resume:
            requeue_killed(study)
        return trials_to_run(study, self.n_trials, resume)

    def _checked_directions(self, objectives: list[str]) -> list[str]:
        """hydra.sweeper.direction, lower case; one per objective or a ConfigError."""
        directions = [d.lower() for d in self._get_directions()]
        if len(objectives) != len(directions):
            raise ConfigError(f"optimized_metric {objectives} has {len(objectives)} metric(s) but "
                              f"hydra.sweeper.direction has {len(directions)} ({directions}): "
                              "give one direction per metric")
        return directions

    def _search_space(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any],
                                                            list[str]]:
        """(distributions, fixed params, fixed overrides) from hydra.sweeper.params and the
        command line; a GridSampler gets its grid and caps n_trials at the grid's size."""
        self._process_searchspace_config()
        space, fixed, fixed_overrides = create_params_from_overrides(
            self._parse_sweeper_params_config() + list(arguments))
        for name in fixed:
            space.pop(name, None)
        if not space:
            raise ConfigError("the search space is empty: set hydra.sweeper.params (see "
                              "conf/hparams_search/) or pass a sweep such as "
                              "'model.max_depth=int(interval(2,10))'")
        if self._is_grid():
            grid = {name: self._to_grid_sampler_choices(d) for name, d in space.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        return space, fixed, fixed_overrides

    def _is_grid(self) -> bool:
        """Whether the sampler is a GridSampler (still a partial waiting for its grid, or built)."""
        grid = optuna.samplers.GridSampler
        return (isinstance(self.sampler, grid) or (isinstance(self.sampler, functools.partial)
                                                   and self.sampler.func == grid))

    def _open_study(self, space: Mapping[str, Any], directions: list[str],
                    objectives: list[str]) -> Any:
        """Create the study, or load it and check that resuming it is sound."""
        from sqlalchemy.exc import SQLAlchemyError

        from bench.secrets import mask

        try:
            study = optuna.create_study(study_name=self.study_name,
                                        storage=make_storage(self.storage), sampler=self.sampler,
                                        directions=directions, load_if_exists=True)
        except (SQLAlchemyError, OSError) as error:  # a database that cannot be reached or
            # used, a journal file that cannot be created
            raise ConfigError(mask(f"hydra.sweeper.storage={self.storage}: cannot open the "
                                   f"study's storage: {error}".splitlines()[0])) from None
        check_resumed(study, self.config, self.storage, directions, objectives, space)
        if study.metric_names != objectives:
            study.set_metric_names(objectives)  # optuna-dashboard shows val_f1, not Objective 0
        seed = resumed_seed(self.sampler_config, study) if study.trials else None
        if seed is not None and not self._is_grid():
            self.sampler = _instantiate_sampler(self.sampler_config, seed=seed)
            study.sampler = self.sampler
            log.info(f"Resumed study: sampler seeded with {seed} (seed + trials so far)")
        log.info(f"Study {study.study_name!r} in {self.storage or 'memory'}: "
                 f"{len(study.trials)} trial(s) so far; sampler {type(self.sampler).__name__}; "
                 f"{' / '.join(f'{d} {o}' for d, o in zip(directions, objectives, strict=True))}")
        return study

    # -- each batch
    def _job_overrides(self, study: Any, trials: list[Any], space: Mapping[str, Any],
                       fixed: Mapping[str, Any], fixed_overrides: list[str]) -> list[tuple]:
        """Each trial's overrides (sampled values, fixed ones) plus its study and number."""
        overrides = self._configure_trials(trials, space, fixed, fixed_overrides)
        jobs = []
        for i, (trial, override) in enumerate(zip(trials, overrides, strict=True)):
            trial.set_user_attr("hydra.job_num", self.job_idx + i)
            trial.set_user_attr("hydra.sweep_dir", str(self.config.hydra.sweep.dir))
            jobs.append((*override, f"++tracking.study_name={_quote(study.study_name)}",
                         f"++tracking.trial_number={trial.number}"))
        return jobs

    def _run_batch(self, study: Any, trials: list[Any], jobs: list[tuple],
                   n_objectives: int) -> None:
        """Launch one batch, tell each outcome, stop beyond max_failure_rate."""
        try:
            returns = self.launcher.launch(jobs, initial_job_idx=self.job_idx)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): no trial left RUNNING
            for trial in trials:
                study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            raise
        self.job_idx += len(returns)
        _attach_run_ids(trials, Path(str(self.config.hydra.sweep.dir)))
        failed = [ret for trial, ret in zip(trials, returns, strict=True)
                  if self._tell(study, trial, ret, n_objectives) == "FAIL"]
        self._first_error = self._first_error or next(
            (r for r in failed if r.status.name == "FAILED"), None)
        self._check_failure_rate(failed, len(returns))

    def _tell(self, study: Any, trial: Any, job_return: JobReturn, n_objectives: int) -> str:
        """Record one job's outcome on its trial; returns the Optuna state name."""
        state, values, reason = trial_outcome(job_return, n_objectives)
        try:
            study.tell(trial, values=values, state=optuna.trial.TrialState[state])
        except RuntimeError as error:  # GridSampler stops the study when exhausted
            if not (self._is_grid() and "Study.stop" in str(error)):
                raise
        self._outcomes.append(state)
        if state == "FAIL":
            log.warning(f"Trial {trial.number} failed: {reason}")
        elif state == "PRUNED":
            log.info(f"Trial {trial.number} {reason}")
        else:
            log.info(f"Trial {trial.number}: {values} {trial.params}")
        return state

    def _check_failure_rate(self, failed: Sequence[JobReturn], n_jobs: int) -> None:
        """Beyond max_failure_rate, re-raise the first job error (with its traceback), else a
        SweepError."""
        if not failed or len(failed) / n_jobs <= self.max_failure_rate:
            return
        message = (f"{len(failed)} of {n_jobs} trials of a batch failed "
                   f"(max_failure_rate={self.max_failure_rate})")
        log.error(message)
        for ret in failed:
            if ret.status.name == "FAILED":
                _ = ret.return_value  # re-raises the job's error
        raise SweepError(message)

    # -- after the last batch
    def _finish(self, study: Any) -> None:
        """Log this sweep's counts and the study's best trial (value, params, MLflow run); a
        sweep whose every trial failed raises."""
        counts = {s: self._outcomes.count(s) for s in OUTCOMES}
        log.info(f"Study {study.study_name!r}: this sweep {counts}; {len(study.trials)} trial(s) "
                 "in the study")
        for line in best_lines(study):
            log.info(line)
        if self._outcomes and counts["COMPLETE"] == 0 and counts["PRUNED"] == 0:
            if self._first_error is not None:
                _ = self._first_error.return_value  # re-raises the first job's error
            raise SweepError(f"all {len(self._outcomes)} trials of this sweep failed")
