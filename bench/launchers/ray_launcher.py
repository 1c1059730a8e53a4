"""`hydra/launcher=ray`: each job of a Hydra multirun is one Ray task.

Hand-written rather than the official hydra-ray-launcher 1.2.2, whose pins do not fit this
stack: it requires cloudpickle<3 (pip would downgrade the cloudpickle 3 that MLflow 3.17 uses to
serialise models), pulls boto3 for its AWS autoscaler, and has no release for hydra-core 1.4.
What a local or cluster launch needs is small: `ray.init`, one `ray.remote` call per job, and
Hydra's own `run_job` in the worker, as the joblib launcher does.

A job that fails inside the task is Hydra's usual FAILED JobReturn (its MLflow run is FAILED);
a worker that dies (out of memory, node lost) becomes one too, so the other jobs of the grid
still finish and are returned.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


class RayLauncher(Launcher):
    """`init`: keyword arguments of `ray.init` (address null = a local Ray started here;
    `auto` or `host:port` = a running cluster). `remote`: options of each job's task
    (num_cpus, num_gpus, memory, max_retries, ...)."""

    def __init__(self, init: Mapping[str, Any] | None = None,
                 remote: Mapping[str, Any] | None = None) -> None:
        self.init = _plain(init)
        self.remote = _plain(remote)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every job's results table, not one
        import ray

        from bench.secrets import forwarded_environment

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if not ray.is_initialized():
            _start_ray(ray, {k: v for k, v in self.init.items() if v is not None})
        _prepare_store(self.config)
        log.info(f"Ray ({ray.get_runtime_context().gcs_address}) is launching "
                 f"{len(job_overrides)} jobs, {self.remote or 'default resources'} each")
        log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
        remote_job = ray.remote(_execute_job).options(**self.remote)
        state = Singleton.get_state()
        env = forwarded_environment()  # a cluster's workers do not inherit this process's env
        futures = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            futures.append(remote_job.remote(idx, list(overrides), self.hydra_context,
                                             self.config, self.task_function, state, env))
        return [_result(ray, future, overrides)
                for future, overrides in zip(futures, job_overrides, strict=True)]


def _start_ray(ray: Any, settings: Mapping[str, Any]) -> None:
    """ray.init with `settings` (hydra.launcher.init); Ray refusing them (no cluster at
    `auto`, a resource it cannot give) ends the command with one error line, exit code 2,
    before any job runs (bench.validate.check_launcher has checked what it can earlier)."""
    try:
        ray.init(**{"log_to_driver": True, **settings})
    except (ConnectionError, ValueError, TypeError, RuntimeError) as error:
        from bench.errors import ConfigError
        from bench.secrets import mask

        shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        print(mask(f"error: hydra.launcher.init ({shown}): Ray did not start: "
                           f"{error}"), file=sys.stderr)
        sys.exit(ConfigError.exit_code)


def _execute_job(idx: int, overrides: list[str], hydra_context: HydraContext,
                 config: DictConfig, task_function: TaskFunction, singleton_state: Any,
                 env: Mapping[str, str]) -> JobReturn:
    """In the Ray worker: Hydra's run_job for one override list, as the joblib launcher."""
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update(env)
    try:
        # relative paths (multirun/, ./data, a sqlite store) mean what they mean for the
        # driver, where its folder exists on this host (the same host, or a shared disk)
        driver_cwd = str(config.hydra.runtime.cwd)
        if os.path.isdir(driver_cwd):
            os.chdir(driver_cwd)
        setup_globals()
        Singleton.set_state(singleton_state)
        sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        return run_job(hydra_context=hydra_context, config=sweep_config,
                       task_function=task_function, job_dir_key="hydra.sweep.dir",
                       job_subdir_key="hydra.sweep.subdir")
    finally:  # Ray reuses worker processes: leave no job's environment behind
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


def _result(ray: Any, future: Any, overrides: Sequence[str]) -> JobReturn:
    """The job's JobReturn; a task Ray could not run (worker lost) as a FAILED one."""
    try:
        return ray.get(future)
    except ray.exceptions.RayError as error:
        log.error(f"Ray job {' '.join(overrides)} did not complete: {error}")
        return JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                         _return_value=RuntimeError(f"Ray task failed: {error}"))


def _prepare_store(config: DictConfig) -> None:
    """The tracking store checked, and its schema created, once here before any job runs."""
    from bench import tracking
    from bench.errors import BenchError

    uri = OmegaConf.select(config, "tracking.uri", default=None)
    if uri is None:
        return
    try:
        tracking.prepare_store(str(uri))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


def _plain(node: Any) -> dict[str, Any]:
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)
