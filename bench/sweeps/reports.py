"""A study's reports in `<sweep dir>/optuna/`: trials.csv, best.json, param_importances.json
and plots/*.png, written by the sweeper at the end of every sweep (also an interrupted one)."""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
REPORTS_SUBDIR = "optuna"


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
    best = best_summary(study, objectives, n_complete=len(complete))
    (folder / "best.json").write_text(json.dumps(best, indent=2, default=str))
    if not complete:
        return
    importances = _all_importances(study, objectives)
    if importances:
        (folder / "param_importances.json").write_text(json.dumps(importances, indent=2))
    _write_plots(study, folder / "plots", objectives)


def best_summary(study: Any, objectives: list[str], n_complete: int) -> dict[str, Any]:
    """best.json: the study's settings and counts, with its best trial (one objective) or its
    Pareto front (several), each as {number, values by objective name, params}."""
    best: dict[str, Any] = {"study_name": study.study_name, "objectives": objectives,
                            "directions": [d.name.lower() for d in study.directions],
                            "n_trials": len(study.trials), "n_complete": n_complete}

    def entry(trial: Any) -> dict[str, Any]:
        return {"number": trial.number,
                "values": dict(zip(objectives, trial.values, strict=True)),
                "params": trial.params}

    if n_complete and len(objectives) == 1:
        best["best"] = entry(study.best_trial)
    elif n_complete:
        best["pareto_front"] = [entry(t) for t in study.best_trials]
    return best


def _all_importances(study: Any, objectives: list[str]) -> dict[str, dict[str, float]]:
    """{objective: {param: importance}}; an objective whose importances fail is skipped."""
    importances = {}
    for i, name in enumerate(objectives):
        try:
            importances[name] = _importances(study, i if len(objectives) > 1 else None)
        except Exception as error:
            log.info(f"parameter importances for {name} skipped: {error}")
    return importances


def _importances(study: Any, index: int | None) -> dict[str, float]:
    import optuna

    target = None if index is None else (lambda t: t.values[index])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = optuna.importance.get_param_importances(study, target=target)
    return {k: float(v) for k, v in values.items()}


def _plots(study: Any, objectives: list[str]) -> dict[str, Callable[[], Any]]:
    """{file stem: a function drawing the plot}: history, importances and parallel coordinates
    per objective; intermediate values when trials reported any; a Pareto front for 2-3."""
    from optuna.visualization import matplotlib as vis

    single = len(objectives) == 1
    plots: dict[str, Callable[[], Any]] = {}
    for i, name in enumerate(objectives):
        target = None if single else (lambda t, i=i: t.values[i])
        suffix = "" if single else f"_{name}"
        for kind, draw in (("optimization_history", vis.plot_optimization_history),
                           ("param_importances", vis.plot_param_importances),
                           ("parallel_coordinate", vis.plot_parallel_coordinate)):
            plots[f"{kind}{suffix}"] = functools.partial(draw, study, target=target,
                                                         target_name=name)
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots["intermediate_values"] = functools.partial(vis.plot_intermediate_values, study)
    if len(objectives) in (2, 3):
        plots["pareto_front"] = functools.partial(vis.plot_pareto_front, study,
                                                  target_names=objectives)
    return plots


def _write_plots(study: Any, folder: Path, objectives: list[str]) -> None:
    """Each plot of `_plots` as a PNG; one that cannot be drawn is logged and skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in _plots(study, objectives).items():
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
