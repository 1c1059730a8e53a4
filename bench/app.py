"""Hydra entry point: `python -m bench [group=option ...] [key=value ...]`, `-m` for grids.

Heavy libraries (MLflow, TensorFlow, xgboost) are imported inside the task, so `--help` and
config errors answer fast. The task returns the configured VAL metric for sweepers.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bench.errors import ConfigError, hydras_failed_job_line_hidden, run_reporting_user_errors
from bench.instantiate import HYDRA_CALLBACKS, HYDRA_LOGGING
from bench.objective import objective_value

# The configs ship inside the package (bench/conf), so an installed wheel finds them too.
log = logging.getLogger("bench")
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
TABLE_METRICS = ("precision", "recall", "f1", "roc_auc", "pr_auc", "fpr", "accuracy",
                 "balanced_accuracy")
TABLE_HEADERS = ("precision", "recall", "f1", "roc_auc", "pr_auc", "fpr", "accuracy",
                 "bal_acc")


def results_table(metrics: dict[str, float]) -> str:
    """Rows VAL, TEST, then TEST_DEDUP and the extra TEST sets (TEST21, ...) when present, of
    the main metrics at the chosen threshold, plus timings."""
    tests = sorted({key.removesuffix("_f1") for key in metrics
                    if key.startswith("test") and key.endswith("_f1")},
                   key=lambda name: (name.removesuffix("_dedup") != "test", name))
    rows = ["val", *tests]
    width = max(6, *(len(row) + 1 for row in rows))
    lines = [f"{'':{width}}" + "".join(f"{m:>11}" for m in TABLE_HEADERS)]
    for row in rows:
        cells = "".join(f"{metrics.get(f'{row}_{m}', math.nan):>11.4f}" for m in TABLE_METRICS)
        lines.append(f"{row.upper():{width}}{cells}")
    lines.append(f"threshold {metrics['threshold']:.6g} (chosen on VAL)   "
                 f"fit {metrics['fit_seconds']:.2f} s   "
                 f"scoring {metrics['score_rows_per_second']:,.0f} rows/s")
    return "\n".join(lines)


def ui_hint(uri: str, experiment_id: str, run_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return (f"mlflow ui --backend-store-uri {uri}   "
            f"# then open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}")


def task(cfg: DictConfig) -> float | list[float]:
    """Run one experiment; returns `cfg.optimized_metric` for sweepers: a float, or a list of
    floats when it lists several metrics (multi-objective sweeps, docs/sweeps.md).

    The config is validated before any data is read or run created; a BenchError propagates
    (in a sweep, the sweeper records the failed trial) to `main`'s one handler.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from bench import console, helper
    from bench.data.kept import reuse_across_cells
    from bench.experiment import finish_runs_later
    from bench.launchers.jobs import parallel_workers
    from bench.validate import validate_config

    validate_config(cfg)
    console.configure(cfg.progress, cfg.verbosity)
    hydra = HydraConfig.get()
    in_grid = hydra.mode == RunMode.MULTIRUN
    reuse_across_cells(in_grid)  # a grid loads its data once
    finish_runs_later(in_grid and _one_cell_after_another(hydra))
    helper.work_inline(parallel_workers() > 1)  # a parallel grid's workers use every core
    return _job(cfg, dict(hydra.runtime.choices))


def _one_cell_after_another(hydra_settings: DictConfig) -> bool:
    """The grid sweeper (bench.launchers.grid_sweeper, a subclass of Hydra's BasicSweeper)
    with a launcher that runs a grid's cells in this process, in turn:
    the basic launcher, or joblib's with one job at a time (joblib then runs them here too).
    A cell may then end its run when the next one starts (bench.experiment.finish_runs_later),
    so the figure helper draws while the next cell runs."""
    from bench.launchers.jobs import runs_in_this_process

    return (str(hydra_settings.sweeper.get("_target_", "")).endswith(".BasicSweeper")
            and runs_in_this_process(hydra_settings.launcher))


def _job(cfg: DictConfig, choices: dict[str, str]) -> float | list[float]:
    """One cell: under a parallel launcher, models get their share of the cores and the
    console lines carry the job number (bench.launchers.jobs); with `resume=true`, a cell
    that already has a FINISHED run returns that run's objective (bench.resume) before any
    data is loaded. Orphaned runs of the store are ended first (tracking.preflight), and a
    parent run that the store does not have is refused (tracking.check_parent_run)."""
    from bench import resume, tracking
    from bench.launchers.jobs import job_console

    with job_console():
        tracking.preflight(cfg.tracking.uri)
        tracking.check_parent_run(cfg.tracking.uri, cfg.tracking.get("parent_run_id"))
        identity = resume.cell_identity(cfg, choices)
        with resume.claim(cfg, identity):
            reused = resume.reuse_finished(cfg, choices, identity)
            return _run(cfg, choices) if reused is None else reused


def _run(cfg: DictConfig, choices: dict[str, str]) -> float | list[float]:
    from bench import cells, console
    from bench.experiment import run_experiment

    started = time.perf_counter()
    result = run_experiment(cfg, choices)
    console.result(log, results_table(result.metrics))
    console.result(log, f"MLflow run {result.run_id} (experiment '{result.experiment}')")
    console.result(log, ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
    value = objective_value(result.metrics, cfg.optimized_metric)
    cells.record(cells.CellOutcome(cells.FINISHED, result.run_id, value,
                                   result.metrics.get("test_f1"),
                                   time.perf_counter() - started))
    return value


@hydra.main(config_path=CONFIG_DIR, config_name="config",
             execution_whitelist=[*HYDRA_CALLBACKS, *HYDRA_LOGGING])
def hydra_main(cfg: DictConfig) -> float | list[float]:
    return task(cfg)


def main() -> None:
    """`bench ...`: validate the command line's config, then let Hydra run it; every user
    mistake ends in one `error: ...` line (bench.errors.run_reporting_user_errors).
    `bench score ...` is a command of its own (bench.score), not a Hydra run."""
    from bench.shutdown import skip_final_collection

    skip_final_collection()
    if sys.argv[1:2] == ["score"]:
        from bench.score import main as score_main

        sys.exit(score_main(sys.argv[2:]))
    run_reporting_user_errors(_main)


def _main() -> None:
    from bench.config_check import unknown_key_errors
    from bench.launchers import prepare_cli
    from bench.validate import preflight

    sys.argv[1:] = prepare_cli(sys.argv[1:])  # URL passwords out before Hydra sees argv
    errors = unknown_key_errors(sys.argv[1:], CONFIG_DIR)
    if errors:
        raise ConfigError(" | ".join(errors))
    first = preflight(sys.argv[1:], CONFIG_DIR)
    if first is not None:
        _warm_up_helper(first)
    with hydras_failed_job_line_hidden():
        hydra_main()


def _warm_up_helper(cfg: DictConfig) -> None:
    """The command line is valid: when its launcher runs the cells in this process (a
    single run always uses the basic launcher's way), the run's helper (bench.helper) starts
    importing now, while Hydra, MLflow and the store start up (~2 s earlier than the run
    itself could start it; a cheap cell no longer waits for its skops file). The first cell's
    config decides; each run still starts one when it needs it."""
    from bench import helper
    from bench.launchers.jobs import runs_in_this_process

    if runs_in_this_process(cfg.hydra.launcher) and helper.wanted_by(cfg):
        helper.warm_up()
