"""What a sweep may optimise and what a task returns to the sweeper (docs/sweeps.md).

Imported by every run (bench/app.py checks `optimized_metric` before any work), so it imports
neither Optuna nor the sweep package: `trial_outcome` imports Optuna only when called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bench.errors import ConfigError

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn

# Costs a sweep may minimise beside VAL metrics. Scoring speed is measured on TEST rows, but it
# depends on their number only, never on their labels.
TIMING_METRICS = ("fit_seconds", "score_rows_per_second", "latency_per_row_median_seconds",
                  "latency_per_row_p99_seconds")


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
        _check_objective(name)
    if len(set(names)) < len(names):
        raise ConfigError(f"optimized_metric lists a metric twice: {names}")
    return names


def _check_objective(name: str) -> None:
    if name.startswith("test_"):
        raise ConfigError(f"optimized_metric {name!r} is a TEST metric: sweeps choose on VAL "
                          "and never look at TEST")
    if not (name.startswith("val_") or name in TIMING_METRICS):
        raise ConfigError(f"optimized_metric {name!r} must be a VAL metric (val_...) or a "
                          f"timing ({', '.join(TIMING_METRICS)})")


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
