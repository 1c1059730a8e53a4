"""One experiment along the one path:

config -> dataset -> split -> audit -> fit (preprocess -> select -> model) on TRAIN
-> score VAL -> threshold on VAL -> score each TEST set once -> evaluate -> track.

This is the only module that knows the order of the stages.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from bench import cells, helper, tracking
from bench.data.audit import AuditReport, AuditSettings, audit
from bench.data.class_check import check_classes, split_dataset
from bench.data.dataset import Dataset, Schema
from bench.data.kept import audit_key, data_key, fit_key, kept, preprocess_key, reused, select_key
from bench.data.split import Splits
from bench.evaluation import chosen_plots, figures
from bench.evaluation.metrics import binary_metrics, family_recall, score_in_batches
from bench.features.preprocess import check_log1p_columns
from bench.fitting import (
    assemble,
    fit_model,
    fit_preprocess,
    fit_selector,
    refusals,
    selected_feature_names,
)
from bench.instantiate import build
from bench.models.scoring import anomaly_score
from bench.resume import cell_identity

log = logging.getLogger(__name__)

@dataclass
class ExperimentResult:
    metrics: dict[str, float]
    run_id: str
    experiment: str
    threshold: float
    experiment_id: str


def _prefixed(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


# The path itself, kept whole (about one screen) so that its order reads top to bottom.
def run_experiment(cfg: DictConfig, choices: Mapping[str, str]) -> ExperimentResult:
    """Run the configured experiment and record it in MLflow; returns its metrics.

    `choices` are the selected config-group options (Hydra's runtime choices), used for
    names and tags. Nothing is fitted before the tracking store is known to be usable.
    """
    tracking.preflight(cfg.tracking.uri)
    names = {group: str(choices.get(group, "?")) for group in
             ("dataset", "selector", "model", "threshold", "split", "preprocess")}
    experiment = cfg.tracking.experiment or names["dataset"]
    tracking.check_experiment(cfg.tracking.uri, experiment, "tracking.experiment")
    if helper.wanted_by(cfg):  # bench.app starts it earlier for a command's first run
        helper.warm_up()  # it imports (figures, skops) while the data loads and the model fits
    dataset, schema, splits, findings = _load_split_audit(cfg, choices)
    check_log1p_columns(cfg.preprocess.get("log1p"), schema.categorical, schema.numeric)
    trial = cfg.tracking.get("trial_number")
    run_name = tracking.run_name(names, cfg.seed, trial)
    with tracking.tracked_run(cfg.tracking.uri, experiment, run_name,
                              _tags(cfg, choices, names, dataset, splits, findings),
                              cfg.tracking.get("parent_run_id")) as run:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        tracking.log_params(tracking.readable_params(resolved, names))
        tracking.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/resolved.yaml")
        tracking.log_dict(findings.to_dict(), "reports/data_audit.json")

        X = {name: frame[schema.features] for name, frame in
             (("train", splits.train), ("val", splits.val))}
        y = {name: frame[schema.label].to_numpy() for name, frame in
             (("train", splits.train), ("val", splits.val), ("test", splits.test))}
        tracking.log_dataset_inputs(  # names, digests and row counts only, no values read
            {**X, "test": splits.test[schema.features]}, dataset.name, tracking.split_sources(
            dataset.notes, cfg.dataset.get("data_dir"), resolved["dataset"]))
        pipeline, fit_seconds = kept("fit", fit_key(cfg), lambda: _fit(cfg, schema, X, y))
        _tell_reuse(cfg.tracking.uri, run.info.run_id, fit_seconds)
        tracking.log_text("\n".join(selected_feature_names(pipeline)),
                          "reports/selected_features.txt")

        # VAL chooses the threshold ...
        with refusals("model", pipeline[-1]):  # some check their settings here (knn)
            scores_val = anomaly_score(pipeline, X["val"])
        choice = build(cfg.threshold).choose(y["val"], scores_val)
        # ... and each TEST set is scored once, in timed batches, at the end.
        test_metrics, scores_test, timings = _evaluate_tests(
            pipeline, schema, splits, findings, choice.threshold,
            cfg.evaluation.latency_batch_rows)
        finish_pending_runs()  # the previous cell's figures: the helper works in order
        model = tracking.prepare_model(  # its skops file by the helper, before the figures
            pipeline, X["val"].head(5), choice.threshold,
            {"threshold_strategy": choice.strategy, "dataset": dataset.name,
             "batch_rows": cfg.evaluation.latency_batch_rows},
            cfg.tracking.get("model_format", "skops"))
        drawing = _start_figures(cfg, pipeline, y, scores_val, scores_test, choice, run_name)
        try:  # while the figures are drawn:
            metrics = {
                **_prefixed("val", binary_metrics(y["val"], scores_val, choice.threshold)),
                **test_metrics,
                "threshold": choice.threshold, "fit_seconds": fit_seconds, **timings,
            }
            if dataset.unlabelled is not None:  # scored for the user, never used for metrics
                metrics.update(_score_unlabelled(pipeline, dataset.unlabelled[schema.features],
                                                 choice.threshold))
            model_id = tracking.log_model(model)
            tracking.log_metrics(metrics, model_id=model_id)  # the run's and its model's
            _log_reports(y["test"], scores_test, choice)
            tracking.log_frame(splits.test[[]].assign(  # the scores the logged model gives
                anomaly_score=scores_test,
                flag=(scores_test >= choice.threshold).astype("int64")),
                "reports/test_scores.parquet")
            if _finishing_later:  # the next cell (or the grid's end) logs them, ends the run
                _unfinished.append((drawing, tracking.leave_running(), cfg.tracking.uri))
            else:
                _log_figures(drawing)
                drawing.discard()
        except BaseException:
            drawing.discard()
            model.discard()
            raise
        return ExperimentResult(metrics, run.info.run_id, experiment, choice.threshold,
                                run.info.experiment_id)


# A cell of a sequential grid ends before its figures are drawn: its run stays RUNNING until
# the next cell starts its own figures (or the grid ends), then gets them and ends FINISHED,
# so the figure helper draws while the next cell loads and fits. A process killed meanwhile
# leaves the run RUNNING for reap_orphans, as any unfinished run: never FINISHED without them.
_finishing_later = False
_unfinished: list[tuple[figures.PendingFigures, str, str]] = []  # (figures, run id, store)


def finish_runs_later(on: bool) -> None:
    """On: cells end their runs as described above (bench.app, for a grid run one cell after
    the other in this process). Off: each run ends with its figures (and pending ones now)."""
    global _finishing_later
    if not on:
        finish_pending_runs()
    _finishing_later = on
    if on:
        atexit.unregister(finish_pending_runs)  # registered once
        atexit.register(finish_pending_runs)


def finish_pending_runs() -> None:
    """Log the figures of the runs left RUNNING for them and end them FINISHED; a run whose
    figures failed ends FAILED with the error, like a cell that fails inline."""
    while _unfinished:
        drawing, run_id, uri = _unfinished.pop(0)
        try:
            _log_figures(drawing, run_id, uri)
        except Exception as error:
            log.error(f"run {run_id}: its figures failed, the run ends FAILED: {error}")
            tracking.set_tags(uri, run_id, {"error": f"{type(error).__name__}: {error}"})
            tracking.set_terminated(uri, run_id, "FAILED")
            cells.correct(run_id, cells.FAILED, f"{type(error).__name__}: {error}")
        else:
            tracking.set_terminated(uri, run_id, "FINISHED")
        finally:
            drawing.discard()


def _log_figures(drawing: figures.PendingFigures, run_id: str | None = None,
                 uri: str | None = None) -> None:
    """The drawn figures under `plots/` of the active run (or of `run_id` in `uri`); with
    `evaluation.plots=none` there are none, and no empty folder is logged."""
    if drawing.files():
        tracking.log_artifacts(drawing.folder(), "plots", run_id=run_id, uri=uri)


def _fit(cfg: DictConfig, schema: Schema, X: Mapping[str, Any], y: Mapping[str, Any]
         ) -> tuple[Pipeline, float]:
    """preprocess -> select -> model, each fitted on TRAIN (bench.fitting); the fitted
    Pipeline and the seconds its three fits took. In a grid, a preprocessing or selector that
    the previous cell fitted with the same settings on the same TRAIN is reused with what it
    made of TRAIN and VAL (bench.data.kept): `selector=rf_importance model=a,b,c` fits its
    random forest once, not three times. Their seconds count as when they were fitted."""
    prepared = kept("preprocess", preprocess_key(cfg), lambda: fit_preprocess(
        build(cfg.preprocess)(categorical=list(schema.categorical),
                              numeric=list(schema.numeric)),
        X["train"], y["train"], X["val"]))
    selected = kept("select", select_key(cfg), lambda: fit_selector(
        build(cfg.selector), prepared, y["train"], y["val"]))
    model = build(cfg.model)
    seconds = fit_model(model, selected, y["train"], y["val"])
    return assemble(prepared, selected, model), prepared.seconds + selected.seconds + seconds


def _tell_reuse(uri: str, run_id: str, fit_seconds: float) -> None:
    """Say (log line and run tag) which fitted stages came from the previous cell."""
    if reused("fit"):  # a grid's cells that differ only in the threshold fit once
        log.info("[fit] the previous cell fitted this same pipeline on the same TRAIN: "
                 f"reused (fit_seconds is that fit's, {fit_seconds:.2f} s)")
        tracking.set_tags(uri, run_id, {"fit_reused": "true"})
        return
    stages = [stage for stage in ("preprocess", "select") if reused(stage)]
    if stages:
        log.info(f"[fit] the previous cell fitted the same {' and '.join(stages)} stage(s) on "
                 "the same TRAIN: reused; only the later stages were fitted")
        tracking.set_tags(uri, run_id, {"fit_reused_stages": ",".join(stages)})


def _load_split_audit(cfg: DictConfig, choices: Mapping[str, str]
                      ) -> tuple[Dataset, Schema, Splits, AuditReport]:
    """Dataset -> split (refused when a partition lacks a needed class) -> leakage audit;
    announces what was found. The schema returned is the audited one (what may reach a
    model)."""
    settings = AuditSettings.from_config(cfg.audit)
    log.info(f"[data] loading {choices.get('dataset', '?')} ...")
    started = time.perf_counter()
    dataset, splits = kept("split", data_key(cfg), lambda: _load_and_split(cfg))
    check_classes(cfg, splits, dataset.schema.label)  # what this cell's model needs
    schema, splits, findings = kept("audit", audit_key(cfg),
                                    lambda: audit(dataset.schema, splits, settings))
    log.info(f"[data] {dataset.name}: {splits.description}; rows {splits.sizes()} "
             f"({time.perf_counter() - started:.1f} s)")
    for key, note in dataset.notes.items():
        log.info(f"[data] {key.removeprefix('data.')}: {note}")
    for line in findings.summary_lines():
        log.info(f"[audit] {line}")
    for warning in findings.warnings:
        log.warning(f"[audit] {warning}")
    return dataset, schema, splits, findings


def _load_and_split(cfg: DictConfig) -> tuple[Dataset, Splits]:
    dataset = build(cfg.dataset)
    splits = split_dataset(cfg, dataset)
    return dataset, replace(splits, extra_tests=dict(dataset.extra_tests))


def _tags(cfg: DictConfig, choices: Mapping[str, str], names: Mapping[str, str],
          dataset: Dataset, splits: Splits, findings: AuditReport) -> dict[str, str]:
    """The run's tags: chosen options, seed, config id and cell identity, versions, data
    notes, and the audit's counts (facts about the data, so tags rather than metric charts)."""
    unresolved = OmegaConf.to_container(cfg, resolve=False)
    tags = {**names, "seed": str(cfg.seed), "git_commit": tracking.git_commit(),
            "config_id": tracking.config_id(unresolved, choices),
            "split_description": splits.description,
            **{f"version.{k}": v for k, v in tracking.package_versions().items()},
            **{k: str(v) for k, v in dataset.notes.items()},
            **cell_identity(cfg, choices).tags(),
            **{f"audit.{k.removeprefix('audit_')}": f"{v:g}"
               for k, v in findings.metrics().items()}}
    trial = cfg.tracking.get("trial_number")
    if trial is not None:
        tags["optuna.trial_number"] = str(trial)
    return tags


def _start_figures(cfg: DictConfig, pipeline: Any, y: Mapping[str, np.ndarray],
                   scores_val: np.ndarray, scores_test: np.ndarray, choice: Any,
                   title: str) -> figures.PendingFigures:
    """Start drawing the figures asked for, as soon as the scores are known (logged by the
    caller once drawn, bench.evaluation.figures)."""
    return figures.start(figures.FigureData(
        y["val"], scores_val, y["test"], scores_test, choice.threshold, title,
        chosen_plots(cfg.evaluation.get("plots", "all")),
        bool(getattr(pipeline["model"], "score_is_negative_log_density", False))))


def _log_reports(y_test: np.ndarray, scores_test: np.ndarray, choice: Any) -> None:
    """The threshold's report and the TEST classification report."""
    tracking.log_dict({"strategy": choice.strategy, "threshold": choice.threshold,
                       **choice.details}, "reports/threshold.json")
    tracking.log_text(_classification_report(y_test, scores_test, choice.threshold),
                      "reports/classification_report_test.txt")


def _evaluate_tests(pipeline: Any, schema: Schema, splits: Splits, findings: AuditReport,
                    threshold: float, batch_rows: int
                    ) -> tuple[dict[str, float], np.ndarray, dict[str, float]]:
    """Score every TEST set once at the VAL `threshold`: metrics `<name>_*` (test_*, test21_*),
    per-family recall, and `<name>_dedup_*` on the rows not duplicating TRAIN/VAL when the audit
    found too many. Returns (metrics, scores of the primary TEST, its timings)."""
    metrics: dict[str, float] = {}
    primary: tuple[np.ndarray, dict[str, float]] | None = None
    for name, frame in splits.tests.items():
        y = frame[schema.label].to_numpy()
        scores, timings = score_in_batches(lambda batch: anomaly_score(pipeline, batch),
                                           frame[schema.features], batch_rows)
        primary = primary or (scores, timings)
        metrics.update(_prefixed(name, binary_metrics(y, scores, threshold)))
        if schema.family is not None:
            metrics.update(_prefixed(name, family_recall(frame[schema.family], y, scores,
                                                         threshold)))
        shared = findings.test_duplicate_rows.get(name)
        if shared is not None and not shared.all():
            metrics.update(_prefixed(f"{name}_dedup", binary_metrics(
                y[~shared], scores[~shared], threshold)))
    assert primary is not None  # splits.tests always holds "test"
    return metrics, *primary


def _score_unlabelled(pipeline: Any, X: Any, threshold: float) -> dict[str, float]:
    """Score rows without labels; log their scores and flags, return counts (no metrics)."""
    scores = anomaly_score(pipeline, X)
    table = X.assign(anomaly_score=scores, flagged=(scores >= threshold).astype(int))
    tracking.log_text(table[["anomaly_score", "flagged"]].to_csv(index_label="row"),
                      "reports/unlabelled_scores.csv")
    return {"unlabelled_rows": float(len(X)),
            "unlabelled_flagged_share": float(table["flagged"].mean()) if len(X) else 0.0}


def _classification_report(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> str:
    from sklearn.metrics import classification_report

    return classification_report(y_true, (scores >= threshold).astype(int),
                                 target_names=["normal", "attack"], digits=4, zero_division=0)


