"""Assemble the report from the selected runs: leaderboard, failures, significance, paired
comparison, per-family recall; write Markdown + one self-contained HTML; log it to MLflow."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.evaluation.metrics import metric_safe
from bench.report import plots, stats, tables
from bench.report.render import Document
from bench.report.runs import RunSelection, finished_runs

REPORT_EXPERIMENT = "bench-reports"


@dataclass
class ReportOptions:
    metric: str = "test_f1"
    alpha: float = 0.05
    confidence: float = 0.95
    pipeline_keys: Sequence[str] = ("selector", "model")
    blocks: str = "dataset-seed"
    compare: Sequence[str] | None = None
    title: str = "bench report"
    source: dict[str, Any] = field(default_factory=dict)  # uri and filters, for the header


@dataclass
class ReportResult:
    document: Document
    paths: dict[str, Path]
    leaderboard: pd.DataFrame
    friedman: stats.FriedmanResult | None
    paired: stats.PairedResult | None
    summary: dict[str, Any]


def build_report(selection: RunSelection, out_dir: str | Path,
                 options: ReportOptions | None = None) -> ReportResult:
    """Write `report.md`, `report.html`, `images/` and CSV tables into `out_dir`."""
    options = options or ReportOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = selection.runs
    doc = Document(options.title, out_dir)
    metric = options.metric
    summary: dict[str, Any] = {"runs": len(runs), "metric": metric}

    _header(doc, selection, options)
    if runs.empty:
        doc.note("no bench runs matched the selection: nothing to report. Check --tracking-uri, "
                 "--experiment, --dataset, --tag and --filter.")
        return ReportResult(doc, doc.write("report"), pd.DataFrame(), None, None, summary)

    finished, repeats = finished_runs(runs)
    n_failed = int((runs["status"] != "FINISHED").sum())
    summary.update(finished=len(finished), failed=n_failed, repeats_set_aside=repeats)
    doc.bullets([
        f"{len(runs)} runs selected: {len(finished)} finished (used), {n_failed} failed"
        + (f", {repeats} older repeat(s) of the same configuration and seed set aside "
           "(the latest run of each is used)" if repeats else ""),
        f"datasets: {', '.join(sorted(runs['dataset'].astype(str).unique()))}",
        f"seeds: {', '.join(str(int(s)) for s in sorted(runs['seed'].dropna().unique()))}",
        *selection.notes,
    ])
    commits = runs["git_commit"].dropna().unique()
    if len(commits) > 1:
        doc.note(f"the runs come from {len(commits)} different git commits; differences may "
                 "come from code changes as well as from configurations")

    # -- leaderboard ----------------------------------------------------------------------
    shown = dict(tables.LEADERBOARD)
    if metric not in shown:
        shown[metric] = metric
    board = tables.leaderboard(runs, finished, {**shown, **tables.LATENCY},
                               options.confidence, sort_by=metric)
    board.to_csv(out_dir / "leaderboard.csv", index=False)
    doc.heading("Leaderboard (TEST, threshold chosen on VAL)")
    pct = round(options.confidence * 100)
    doc.text(f"One row per configuration (config_id = hash of the configuration without seed, "
             f"tracking and paths) of dataset x selector x model. Cells read mean ± half-width "
             f"of the {pct} % Student-t confidence interval of the mean over seeds (n = number "
             f"of finished seeds); \"(n=1)\" means a single run, so no interval. 'failed' counts "
             f"FAILED/KILLED runs of the configuration; a row with n = 0 had no finished run. "
             f"Sorted by {metric} within each dataset. Raw numbers: leaderboard.csv.")
    for dataset, part in board.groupby("dataset", sort=True):
        doc.table(tables.leaderboard_display(part, shown), caption=f"dataset {dataset}")
        if f"metrics.{metric}" in runs:
            doc.figure(plots.leaderboard_figure(part, metric, f"{dataset}: {metric}"),
                       f"leaderboard_{metric_safe(str(dataset))}",
                       f"{metric} by configuration, dataset {dataset}")
    latency = board[board["n"] > 0]
    if any(f"{m}" in latency for m in tables.LATENCY):
        doc.heading("Scoring latency", 3)
        doc.text("Per-row scoring latency on TEST, scored in batches: median and 99th "
                 "percentile over batches of (batch time / batch rows), in microseconds per row, "
                 "mean ± CI over seeds. Timings depend on the machine and its load.")
        shown = tables.leaderboard_display(latency, tables.LATENCY)
        doc.table(shown.drop(columns=["failed"]))

    failed = tables.failed_runs(runs)
    doc.heading("Failed runs")
    if failed.empty:
        doc.text("None.")
    else:
        doc.text("Every run that did not finish, with the first line of its `error` tag "
                 "(the full traceback is the run's error/traceback.txt artifact).")
        doc.table(failed)
        failed.to_csv(out_dir / "failed_runs.csv", index=False)

    # -- significance ---------------------------------------------------------------------
    friedman, paired = _significance(doc, finished, options, out_dir, summary)

    # -- per family -----------------------------------------------------------------------
    doc.heading("Recall per attack family (TEST)")
    families = tables.family_recall(finished, options.pipeline_keys)
    if not families:
        doc.text("No run logged per-family metrics (datasets without an attack family).")
    for dataset, table in families.items():
        doc.text(f"dataset {dataset}: share of each family's TEST rows flagged as attack, mean "
                 "over seeds (n = finished runs); 'FPR <family>' is the false-positive rate of "
                 "the normal family.")
        doc.table(table, caption=f"per-family recall, dataset {dataset}", float_format=".3f")
        table.to_csv(out_dir / f"family_recall_{dataset}.csv", index=False)

    _method_notes(doc, options)
    paths = doc.write("report")
    return ReportResult(doc, paths, board, friedman, paired, summary)


def _header(doc: Document, selection: RunSelection, options: ReportOptions) -> None:
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    source = options.source
    items = [f"generated {now}"]
    items += [f"{key}: {value}" for key, value in source.items() if value not in (None, "", [])]
    items.append(f"experiments read: {', '.join(selection.experiments) or '(none)'}")
    doc.bullets(items)


def _significance(doc: Document, finished: pd.DataFrame, options: ReportOptions,
                  out_dir: Path, summary: dict[str, Any]
                  ) -> tuple[stats.FriedmanResult | None, stats.PairedResult | None]:
    metric = options.metric
    keys = list(options.pipeline_keys)
    doc.heading(f"Significance on {metric}")
    blocks_text = ("dataset x seed pairs" if options.blocks == "dataset-seed"
                   else "datasets (mean over seeds)")
    doc.text(f"Pipelines = {'/'.join(keys)}; blocks = {blocks_text}. Only finished runs count; "
             "a pipeline must be measured on every block to enter the multi-pipeline test.")
    matrix = stats.block_matrix(finished, metric, keys, options.blocks)
    for note in matrix.notes:
        doc.note(note)
    ranking = stats.mean_ranks(matrix.matrix, metric)
    if not ranking.empty:
        doc.table(ranking, caption=f"mean rank over {len(matrix.matrix)} blocks (1 = best)")
        ranking.to_csv(out_dir / "ranking.csv", index=False)

    doc.heading("Friedman test with Nemenyi post-hoc", 3)
    friedman = stats.friedman_nemenyi(matrix.matrix, metric, options.alpha)
    if not friedman.ran:
        doc.note(friedman.note)
    else:
        verdict = "significant" if friedman.significant else "not significant"
        doc.text(f"Friedman chi-square = {friedman.statistic:.4g} over "
                 f"{matrix.matrix.shape[0]} blocks and {matrix.matrix.shape[1]} pipelines, "
                 f"p = {friedman.pvalue:.4g}: {verdict} at alpha = {options.alpha}. Nemenyi "
                 f"critical difference CD = {friedman.critical_difference:.4g} mean ranks: two "
                 "pipelines whose mean ranks differ by more than CD differ significantly; in the "
                 "diagram, pipelines joined by a bar do not.")
        if not friedman.significant:
            doc.note("the Friedman test is not significant: the post-hoc results below do not "
                     "license claims that any pipeline is better.")
        if friedman.figure is not None:
            doc.figure(friedman.figure, "critical_difference",
                       f"critical-difference diagram ({metric})")
        assert friedman.ranks is not None and friedman.nemenyi_pvalues is not None
        doc.table(friedman.ranks, caption="autorank: mean rank, median, MAD, CI of the median, "
                  "effect size against the best (Cliff's delta / Akinshin's gamma)")
        doc.table(friedman.nemenyi_pvalues, caption="pairwise Nemenyi p-values "
                  "(scikit-posthocs)", float_format=".3g")
        summary.update(friedman_p=friedman.pvalue, nemenyi_cd=friedman.critical_difference)

    doc.heading("Paired comparison", 3)
    paired = None
    pair = list(options.compare or [])
    if not pair:
        overall = stats.mean_ranks(matrix.full.dropna(axis=1, how="all"), metric) \
            if matrix.matrix.shape[1] < 2 else ranking
        if len(overall) >= 2:
            pair = list(overall["pipeline"][:2])
            doc.text(f"Default pair: the two best pipelines by mean rank: {pair[0]} vs "
                     f"{pair[1]} (choose with --compare A B).")
    if len(pair) == 2:
        paired = stats.paired_comparison(matrix.full, pair[0], pair[1], metric,
                                         options.confidence)
        if not paired.ran:
            doc.note(paired.note)
        else:
            direction = "higher" if tables.higher_is_better(metric) else "lower"
            interval = ("no interval" if math.isnan(paired.ci_low) else
                        f"{round(options.confidence * 100)} % paired bootstrap CI "
                        f"[{paired.ci_low:+.4g}, {paired.ci_high:+.4g}]")
            doc.text(f"{paired.a} minus {paired.b} on {paired.n} shared blocks: mean "
                     f"difference {paired.mean_diff:+.4g} ({interval}), "
                     f"median {paired.median_diff:+.4g}; {paired.a} better ({direction} "
                     f"{metric}) in {paired.wins}, tied in {paired.ties}, worse in "
                     f"{paired.losses}. Wilcoxon signed-rank: statistic "
                     f"{paired.wilcoxon_statistic:.4g}, p = {paired.wilcoxon_p:.4g}.")
            if paired.note:
                doc.note(paired.note)
            assert paired.pairs is not None
            doc.table(paired.pairs, caption=f"{metric} per block")
            summary.update(paired_a=paired.a, paired_b=paired.b, paired_p=paired.wilcoxon_p,
                           paired_mean_diff=paired.mean_diff)
    elif not pair:
        doc.note("fewer than two pipelines: no paired comparison")
    return friedman, paired


def _method_notes(doc: Document, options: ReportOptions) -> None:
    doc.heading("How to read the statistics")
    doc.bullets([
        "Confidence intervals: Student-t interval of the mean over seeds (scipy.stats.t). They "
        "describe run-to-run variation from the seed (split, model initialisation, synthetic "
        "data), not variation over other datasets.",
        "Friedman test: ranks the pipelines within each block and tests whether all mean ranks "
        "are equal. It needs at least three pipelines and several blocks (autorank asks five). "
        "Nemenyi post-hoc: all pairwise comparisons with the critical difference CD of mean "
        "ranks (autorank; p-values from scikit-posthocs).",
        "Seeds are not independent datasets: with blocks = dataset x seed, the seeds of one "
        "dataset are correlated, so p-values are optimistic about generalising to new "
        "datasets. Use --blocks dataset for the classic per-dataset test (Demšar 2006), which "
        "needs at least five datasets.",
        "Paired comparison: differences on the same blocks; Wilcoxon signed-rank test (zero "
        "differences dropped) and a BCa paired bootstrap interval of the mean difference "
        "(scipy.stats.bootstrap).",
        "FPR, fit seconds and latency rank lower-is-better; everything else higher-is-better.",
    ])


def log_report(uri: str, out_dir: str | Path, summary: dict[str, Any],
               tags: dict[str, str] | None = None, experiment: str = REPORT_EXPERIMENT) -> str:
    """Log the report folder as the artifacts of a run named `report`; returns the run id."""
    import mlflow

    from bench import tracking

    tags = {"report.metric": str(summary.get("metric")), "git_commit": tracking.git_commit(),
            **(tags or {})}
    with tracking.tracked_run(uri, experiment, "report", tags) as run:
        numbers = {k: float(v) for k, v in summary.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)
                   and not math.isnan(float(v))}
        tracking.log_metrics(numbers)
        mlflow.log_artifacts(str(out_dir))
        return run.info.run_id
