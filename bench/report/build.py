"""Assemble the report from the selected runs: leaderboard, failures, significance, paired
comparison, per-family recall; write Markdown + one self-contained HTML; log it to MLflow."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench import tracking
from bench.evaluation.metrics import metric_safe
from bench.outputs import write_csv
from bench.report import plots, prose, stats, tables
from bench.report.render import Document
from bench.report.runs import REPORT_EXPERIMENT, RunSelection, finished_runs


@dataclass
class ReportOptions:
    metric: str = "test_f1"
    select_by: str = "val_f1"  # the VAL metric that picks a pipeline per dataset (and split)
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
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)  # VAL's pick per dataset


def build_report(selection: RunSelection, out_dir: str | Path,
                 options: ReportOptions | None = None) -> ReportResult:
    """Write `report.md`, `report.html`, `images/` and CSV tables into `out_dir`."""
    options = options or ReportOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = selection.runs
    doc = Document(options.title, out_dir)
    summary: dict[str, Any] = {"runs": len(runs), "metric": options.metric}

    _header(doc, selection, options)
    if runs.empty:
        doc.note(prose.NO_RUNS)
        return ReportResult(doc, doc.write("report"), pd.DataFrame(), None, None, summary)
    finished = _selection_section(doc, selection, summary)
    picks = _val_selection_section(doc, finished, options, out_dir, summary)
    board = _leaderboard_section(doc, runs, finished, options, out_dir)
    _latency_section(doc, board)
    _failed_section(doc, runs, out_dir)
    friedman, paired = _significance(doc, finished, options, out_dir, summary)
    _family_section(doc, finished, options, out_dir)
    doc.heading("How to read the statistics")
    doc.bullets(prose.METHOD_NOTES)
    return ReportResult(doc, doc.write("report"), board, friedman, paired, summary, picks)


def _header(doc: Document, selection: RunSelection, options: ReportOptions) -> None:
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    source = options.source
    items = [f"generated {now}"]
    items += [f"{key}: {value}" for key, value in source.items() if value not in (None, "", [])]
    items.append(f"experiments read: {', '.join(selection.experiments) or '(none)'}")
    doc.bullets(items)


def _selection_section(doc: Document, selection: RunSelection, summary: dict[str, Any]
                       ) -> pd.DataFrame:
    """What was selected and used; returns the finished runs, one per config_id and seed."""
    runs = selection.runs
    finished, repeats = finished_runs(runs)
    n_failed = int((runs["status"] != "FINISHED").sum())
    summary.update(finished=len(finished), failed=n_failed, repeats_set_aside=repeats)
    doc.bullets([
        prose.selection_counts(len(runs), len(finished), n_failed, repeats),
        f"datasets: {', '.join(sorted(runs['dataset'].astype(str).unique()))}",
        f"seeds: {', '.join(str(int(s)) for s in sorted(runs['seed'].dropna().unique()))}",
        *selection.notes,
    ])
    commits = runs["git_commit"].dropna().unique()
    if len(commits) > 1:
        doc.note(prose.several_commits(len(commits)))
    return finished


def _val_selection_section(doc: Document, finished: pd.DataFrame, options: ReportOptions,
                           out_dir: Path, summary: dict[str, Any]) -> pd.DataFrame:
    """What VAL picks per dataset (and validation), with that pick's TEST beside it, and the
    published figures kept for the dataset."""
    picks = tables.select_by_val(finished, options.select_by)
    summary["selected_pipelines"] = len(picks)
    if picks.empty:
        return picks
    write_csv(picks, out_dir / "selection.csv")
    doc.heading(f"Selection by VAL ({options.select_by})")
    doc.text(prose.selection_by_val(options.select_by))
    shown = [c for c in ("dataset", "split", "selector", "model", "n", "candidates",
                         options.select_by, *tables.SELECTION_SHOWN) if c in picks]
    doc.table(picks[shown].round(4), caption=f"chosen by mean VAL {options.select_by} over "
              "seeds; TEST columns are shown, never used to choose")
    for dataset in sorted(picks["dataset"].astype(str).unique()):
        published = tables.literature(dataset)
        if published is not None:
            doc.table(published.drop(columns=["citation"]),
                      caption=f"published figures for {dataset} (citations in "
                              f"bench/report/literature/{dataset}.csv)")
            doc.bullets([f"{row.source}: {row.citation}" for row in
                         published.drop_duplicates("source").itertuples()])
    return picks


def _leaderboard_section(doc: Document, runs: pd.DataFrame, finished: pd.DataFrame,
                         options: ReportOptions, out_dir: Path) -> pd.DataFrame:
    """Per dataset, a table and a figure of the cells; returns the leaderboard (all metrics)."""
    metric = options.metric
    shown = dict(tables.LEADERBOARD)
    if metric not in shown:
        shown[metric] = metric
    board = tables.leaderboard(runs, finished, {**shown, **tables.LATENCY},
                               options.confidence, sort_by=metric)
    write_csv(board, out_dir / "leaderboard.csv")
    doc.heading("Leaderboard (TEST, threshold chosen on VAL)")
    doc.text(prose.leaderboard(options.confidence, metric))
    for dataset, part in board.groupby("dataset", sort=True):
        doc.table(tables.leaderboard_display(part, shown), caption=f"dataset {dataset}")
        if f"metrics.{metric}" in runs:
            doc.figure(plots.leaderboard_figure(part, metric, f"{dataset}: {metric}"),
                       f"leaderboard_{metric_safe(str(dataset))}",
                       f"{metric} by configuration, dataset {dataset}")
    return board


def _latency_section(doc: Document, board: pd.DataFrame) -> None:
    latency = board[board["n"] > 0]
    if any(f"{m}" in latency for m in tables.LATENCY):
        doc.heading("Scoring latency", 3)
        doc.text(prose.LATENCY)
        shown = tables.leaderboard_display(latency, tables.LATENCY)
        doc.table(shown.drop(columns=["failed"]))


def _failed_section(doc: Document, runs: pd.DataFrame, out_dir: Path) -> None:
    failed = tables.failed_runs(runs)
    doc.heading("Failed runs")
    if failed.empty:
        doc.text(prose.NO_FAILURES)
        return
    doc.text(prose.FAILURES)
    doc.table(failed)
    write_csv(failed, out_dir / "failed_runs.csv")


def _significance(doc: Document, finished: pd.DataFrame, options: ReportOptions,
                  out_dir: Path, summary: dict[str, Any]
                  ) -> tuple[stats.FriedmanResult | None, stats.PairedResult | None]:
    """Mean ranks, the Friedman/Nemenyi test and the paired comparison over the blocks."""
    metric = options.metric
    doc.heading(f"Significance on {metric}")
    doc.text(prose.significance(options.pipeline_keys, options.blocks))
    matrix = stats.block_matrix(finished, metric, list(options.pipeline_keys), options.blocks)
    for note in matrix.notes:
        doc.note(note)
    ranking = stats.mean_ranks(matrix.matrix, metric)
    if not ranking.empty:
        doc.table(ranking, caption=f"mean rank over {len(matrix.matrix)} blocks (1 = best)")
        write_csv(ranking, out_dir / "ranking.csv")
    friedman = _friedman_section(doc, matrix, options, summary)
    paired = _paired_section(doc, matrix, ranking, options, summary)
    return friedman, paired


def _friedman_section(doc: Document, matrix: stats.BlockMatrix, options: ReportOptions,
                      summary: dict[str, Any]) -> stats.FriedmanResult:
    doc.heading("Friedman test with Nemenyi post-hoc", 3)
    friedman = stats.friedman_nemenyi(matrix.matrix, options.metric, options.alpha)
    if not friedman.ran:
        doc.note(friedman.note)
        return friedman
    doc.text(prose.friedman(friedman, *matrix.matrix.shape, options.alpha))
    if not friedman.significant:
        doc.note(prose.FRIEDMAN_NOT_SIGNIFICANT)
    if friedman.figure is not None:
        doc.figure(friedman.figure, "critical_difference",
                   f"critical-difference diagram ({options.metric})")
    assert friedman.ranks is not None and friedman.nemenyi_pvalues is not None
    doc.table(friedman.ranks, caption=prose.AUTORANK_CAPTION)
    doc.table(friedman.nemenyi_pvalues, caption=prose.NEMENYI_CAPTION, float_format=".3g")
    summary.update(friedman_p=friedman.pvalue, nemenyi_cd=friedman.critical_difference)
    return friedman


def _paired_section(doc: Document, matrix: stats.BlockMatrix, ranking: pd.DataFrame,
                    options: ReportOptions, summary: dict[str, Any]
                    ) -> stats.PairedResult | None:
    """The pair of --compare, else the two best by mean rank; None when there is no pair."""
    metric = options.metric
    doc.heading("Paired comparison", 3)
    pair = list(options.compare or [])
    if not pair:
        pair = _best_two(matrix, ranking, metric)
        if not pair:
            doc.note(prose.NO_PAIR)
            return None
        doc.text(prose.default_pair(*pair))
    if len(pair) != 2:
        return None
    paired = stats.paired_comparison(matrix.full, pair[0], pair[1], metric, options.confidence)
    if not paired.ran:
        doc.note(paired.note)
        return paired
    doc.text(prose.paired(paired, metric, options.confidence, tables.higher_is_better(metric)))
    if paired.note:
        doc.note(paired.note)
    assert paired.pairs is not None
    doc.table(paired.pairs, caption=f"{metric} per block")
    summary.update(paired_a=paired.a, paired_b=paired.b, paired_p=paired.wilcoxon_p,
                   paired_mean_diff=paired.mean_diff)
    return paired


def _best_two(matrix: stats.BlockMatrix, ranking: pd.DataFrame, metric: str) -> list[str]:
    """The two best pipelines by mean rank; with fewer than two pipelines on every block,
    ranked over the blocks each was measured on. [] when there are fewer than two."""
    overall = (stats.mean_ranks(matrix.full.dropna(axis=1, how="all"), metric)
               if matrix.matrix.shape[1] < 2 else ranking)
    return list(overall["pipeline"][:2]) if len(overall) >= 2 else []


def _family_section(doc: Document, finished: pd.DataFrame, options: ReportOptions,
                    out_dir: Path) -> None:
    doc.heading("Recall per attack family (TEST)")
    families = tables.family_recall(finished, options.pipeline_keys)
    if not families:
        doc.text(prose.NO_FAMILIES)
    for dataset, table in families.items():
        doc.text(prose.family_recall(dataset))
        doc.table(table, caption=f"per-family recall, dataset {dataset}", float_format=".3f")
        write_csv(table, out_dir / f"family_recall_{dataset}.csv")


def log_report(uri: str, out_dir: str | Path, summary: dict[str, Any],
               tags: dict[str, str] | None = None, experiment: str = REPORT_EXPERIMENT) -> str:
    """Log the report folder as the artifacts of a run named `report`, with the numbers of
    `summary` as metrics; returns the run id."""
    tags = {"report.metric": str(summary.get("metric")), "git_commit": tracking.git_commit(),
            **(tags or {})}
    with tracking.report_run(uri, experiment, "report", out_dir, tags) as run:
        run.metrics.update(summary)
    return run.run_id
