"""Hydra entry point: `python -m bench [group=option ...] [key=value ...]`, `-m` for grids.

Heavy libraries (MLflow, TensorFlow, xgboost) are imported inside the task, so `--help` and
config errors answer fast. The task returns the configured VAL metric for sweepers.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from bench.errors import BenchError
from bench.objective import objective_names, objective_value

# The configs ship inside the package (bench/conf), so an installed wheel finds them too.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
TABLE_METRICS = ("precision", "recall", "f1", "roc_auc", "pr_auc", "fpr")


def results_table(metrics: dict[str, float]) -> str:
    """VAL and TEST rows of the main metrics at the chosen threshold, plus timings."""
    header = f"{'':6}" + "".join(f"{m:>11}" for m in TABLE_METRICS)
    lines = [header]
    for split in ("val", "test"):
        cells = "".join(f"{metrics.get(f'{split}_{m}', math.nan):>11.4f}" for m in TABLE_METRICS)
        lines.append(f"{split.upper():6}{cells}")
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
    floats when it lists several metrics (multi-objective sweeps, docs/sweeps.md)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    try:
        return _run(cfg, dict(hydra_cfg.runtime.choices))
    except BenchError as error:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the sweeper records the failed job and decides whether to go on
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


def _run(cfg: DictConfig, choices: dict[str, str]) -> float | list[float]:
    objective_names(cfg.optimized_metric)  # VAL metrics or timings, never TEST: checked first
    from bench import tracking
    from bench.experiment import run_experiment

    result = run_experiment(cfg, choices)
    print(results_table(result.metrics))
    experiment_id = tracking.get_run(cfg.tracking.uri, result.run_id).info.experiment_id
    print(f"MLflow run {result.run_id} (experiment '{result.experiment}')")
    print(ui_hint(cfg.tracking.uri, experiment_id, result.run_id))
    return objective_value(result.metrics, cfg.optimized_metric)


@hydra.main(config_path=CONFIG_DIR, config_name="config",
             execution_whitelist=["bench.sweeps.callback.MlflowSweepCallback"])
def hydra_main(cfg: DictConfig) -> float | list[float]:
    return task(cfg)


def main() -> None:
    from bench.config_check import unknown_key_errors

    errors = unknown_key_errors(sys.argv[1:], CONFIG_DIR)
    if errors:
        for message in errors:
            print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    hydra_main()
