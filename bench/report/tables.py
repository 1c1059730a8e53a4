"""Leaderboards and per-family tables from the run frame of `bench.report.runs`.

A cell is one configuration: dataset x selector x model with everything else fixed, i.e. one
`config_id` (`bench.tracking.config_id`: the configuration hash without the keys of
`tracking.CONFIG_ID_EXCLUDED`, i.e. seed, tracking, paths, hydra and evaluation); its seed
repetitions are the samples the mean and the confidence interval are taken over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bench.errors import ConfigError
from bench.report.runs import FINISHED
from bench.tracking import CONFIG_ID_EXCLUDED

CELL = ("dataset", "selector", "model", "config_id")
# Leaderboard metric -> column title. All TEST metrics, chosen at the VAL threshold.
LEADERBOARD = {
    "test_f1": "F1", "test_roc_auc": "ROC-AUC", "test_pr_auc": "PR-AUC", "test_fpr": "FPR",
    "fit_seconds": "fit s", "score_rows_per_second": "rows/s",
}
LATENCY = {"latency_per_row_median_seconds": "latency median µs/row",
           "latency_per_row_p99_seconds": "latency p99 µs/row"}
# Metrics where lower is better (ranking order).
LOWER_IS_BETTER = re.compile(r"(fpr|seconds|loss|latency)")
VARYING_KEYS = ("preprocess", "threshold", "split")


def higher_is_better(metric: str) -> bool:
    return LOWER_IS_BETTER.search(metric) is None


@dataclass(frozen=True)
class MeanCI:
    mean: float
    low: float
    high: float
    n: int

    def text(self, fmt: str = ".4f") -> str:
        """"0.9123 ± 0.0110" (± = half-width of the t-interval); "0.9123 (n=1)"; "—"."""
        if self.n == 0 or math.isnan(self.mean):
            return "—"
        if self.n == 1 or math.isnan(self.low):
            return f"{self.mean:{fmt}} (n=1)"
        return f"{self.mean:{fmt}} ± {(self.high - self.low) / 2:{fmt}}"


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean and two-sided Student-t confidence interval of the mean (scipy.stats.t).

    n = 0: all NaN; n = 1: the value, no interval (NaN bounds); zero spread: a zero-width
    interval.
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(float(v))], float)
    n = len(x)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return MeanCI(mean, math.nan, math.nan, 1)
    sem = float(stats.sem(x))
    if sem == 0.0:
        return MeanCI(mean, mean, mean, n)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return MeanCI(mean, float(low), float(high), n)


def _cells(runs: pd.DataFrame) -> pd.DataFrame:
    keys = runs[list(CELL)].fillna("?")
    return keys.drop_duplicates().reset_index(drop=True)


def leaderboard(runs: pd.DataFrame, finished: pd.DataFrame, metrics: dict[str, str] | None = None,
                confidence: float = 0.95, sort_by: str = "test_f1") -> pd.DataFrame:
    """One row per cell (config_id) with n (finished seeds), failed (FAILED or KILLED runs) and
    per metric `<metric>`, `<metric>_low`, `<metric>_high` (t-interval over seeds).

    `runs` are all selected runs (for the failure counts), `finished` the deduplicated FINISHED
    ones (`runs.finished_runs`). Cells where every run failed appear with n = 0.
    """
    metrics = metrics or {**LEADERBOARD, **LATENCY}
    all_runs = runs.assign(**{k: runs[k].fillna("?") for k in CELL})
    done = finished.assign(**{k: finished[k].fillna("?") for k in CELL})
    rows = []
    for cell in _cells(all_runs).itertuples(index=False):
        mask = np.logical_and.reduce([all_runs[k] == getattr(cell, k) for k in CELL])
        cell_runs = all_runs[mask]
        cell_done = done[np.logical_and.reduce([done[k] == getattr(cell, k) for k in CELL])]
        row = {k: getattr(cell, k) for k in CELL}
        for key in VARYING_KEYS:
            values = cell_runs[key].dropna().unique() if key in cell_runs else []
            row[key] = ",".join(map(str, values)) if len(values) else "?"
        row["n"] = len(cell_done)
        row["failed"] = int((cell_runs["status"] != FINISHED).sum())
        row["seeds"] = ",".join(str(int(s)) for s in sorted(cell_done["seed"].dropna()))
        for metric in metrics:
            column = f"metrics.{metric}"
            values = cell_done.get(column, [])
            ci = mean_ci(list(values), confidence)
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = ci.mean, ci.low, ci.high
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["variant"] = _variants(table, all_runs)
    ascending = not higher_is_better(sort_by)
    return table.sort_values(["dataset", sort_by], ascending=[True, ascending],
                             na_position="last").reset_index(drop=True)


# Params of the keys config_id leaves out (seed and the run context) never tell cells apart.
_NOT_A_VARIANT = re.compile(
    "^(" + "|".join(rf"{re.escape(key)}(\.|$)" for key in CONFIG_ID_EXCLUDED) + ")")


def _variants(table: pd.DataFrame, runs: pd.DataFrame, max_keys: int = 3) -> list[str]:
    """For cells that share dataset/selector/model but not config_id: the params whose value
    tells them apart ("model.C=0.5"), from the runs' logged params, never one under
    CONFIG_ID_EXCLUDED; "" elsewhere."""
    params = [c for c in runs.columns if c.startswith("params.")
              and not _NOT_A_VARIANT.match(c.removeprefix("params."))]
    out = [""] * len(table)
    for _, group in table.groupby(["dataset", "selector", "model"]):
        if len(group) < 2:
            continue
        values = {i: _param_values(runs[runs["config_id"] == cell["config_id"]], params)
                  for i, cell in group.iterrows()}
        differing = _differing(list(values.values()), params)
        for i in group.index:
            shown = [f"{p.removeprefix('params.')}={values[i][p] or '?'}"
                     for p in differing[:max_keys]]
            out[i] = "; ".join(shown) + (" …" if len(differing) > max_keys else "")
    return out


def _differing(cells: list[dict[str, str]], params: list[str]) -> list[str]:
    """The params with one value per cell (no "|") that is not the same in every cell."""
    return [p for p in params if len({cell[p] for cell in cells}) > 1
            and all("|" not in cell[p] for cell in cells)]


def _param_values(cell_runs: pd.DataFrame, params: list[str]) -> dict[str, str]:
    """{param: its values over the cell's runs, sorted and joined by "|"}."""
    return {p: "|".join(sorted(map(str, cell_runs[p].dropna().unique()))) for p in params}


def leaderboard_display(board: pd.DataFrame, metrics: dict[str, str] | None = None
                        ) -> pd.DataFrame:
    """The leaderboard as text cells "mean ± half-width"; columns that do not vary between the
    cells (preprocess, threshold, split) are left out."""
    metrics = metrics or LEADERBOARD
    columns: dict[str, pd.Series] = {"dataset": board["dataset"], "selector": board["selector"],
                                     "model": board["model"]}
    for key in VARYING_KEYS:
        if key in board and board[key].nunique() > 1:
            columns[key] = board[key]
    if "variant" in board and (board["variant"] != "").any():
        columns["variant"] = board["variant"]
    columns["config_id"] = board["config_id"]
    columns["n"] = board["n"]
    columns["failed"] = board["failed"]
    for metric, title in metrics.items():
        fmt = _format_for(metric)
        scale = 1e6 if "latency" in metric else 1.0
        columns[title] = pd.Series([
            MeanCI(r[metric] * scale, r[f"{metric}_low"] * scale, r[f"{metric}_high"] * scale,
                   int(r["n"])).text(fmt) for _, r in board.iterrows()], index=board.index)
    return pd.DataFrame(columns)


def _format_for(metric: str) -> str:
    if metric == "score_rows_per_second":
        return ",.0f"
    if metric == "fit_seconds" or "latency" in metric:
        return ".3g"
    return ".4f"


def family_recall(finished: pd.DataFrame, pipeline_keys: Sequence[str] = ("selector", "model")
                  ) -> dict[str, pd.DataFrame]:
    """Per dataset: pipeline x family, the mean over seeds of TEST recall per attack family
    (`test_recall_family_<f>`) and the false-positive rate of the normal family
    (`test_fpr_family_<f>`, columns titled "FPR <f>"). Datasets without families are absent.
    """
    out: dict[str, pd.DataFrame] = {}
    for dataset, group in finished.groupby("dataset", sort=True):
        recall = sorted(c for c in group.columns if c.startswith("metrics.test_recall_family_")
                        and group[c].notna().any())
        fpr = sorted(c for c in group.columns if c.startswith("metrics.test_fpr_family_")
                     and group[c].notna().any())
        if not recall and not fpr:
            continue
        labels = group[list(pipeline_keys)].fillna("?").astype(str).agg("/".join, axis=1)
        means = group[recall + fpr].groupby(labels).mean()
        counts = group.groupby(labels).size()
        means.columns = ([c.removeprefix("metrics.test_recall_family_") for c in recall]
                         + [f"FPR {c.removeprefix('metrics.test_fpr_family_')}" for c in fpr])
        means.insert(0, "n", counts)
        means.index.name = "pipeline"
        out[str(dataset)] = means.reset_index()
    return out


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every FAILED/KILLED run with its error tag (first line, shortened)."""
    bad = runs[runs["status"] != FINISHED]
    if bad.empty:
        return pd.DataFrame(columns=["run", "seed", "status", "error", "run_id"])
    errors = bad["error"].fillna("(no error tag)").astype(str).map(
        lambda e: (e.splitlines() or [""])[0][:200])
    return pd.DataFrame({"run": bad["run_name"], "seed": bad["seed"], "status": bad["status"],
                         "error": errors, "run_id": bad["run_id"]}).reset_index(drop=True)


# ------------------------------------------------------------------------- selection by VAL
SELECTION_SHOWN = ("test_f1", "test_accuracy", "test_balanced_accuracy", "test_dedup_f1",
                   "test21_accuracy", "test21_balanced_accuracy")


def select_by_val(finished: pd.DataFrame, metric: str,
                  groups: Sequence[str] = ("dataset", "split")) -> pd.DataFrame:
    """Per group (dataset, and split when several validations were run), the cell (config_id)
    with the best mean VAL `metric` over its seeds; its TEST metrics are shown beside it,
    never used to choose. Columns: the group keys, selector, model, config_id, n, the VAL
    metric, the shown TEST metrics (means over seeds) and `best_run_id` (the cell's run with
    the best VAL value, what `--register-best` registers)."""
    column = f"metrics.{metric}"
    if not metric.startswith("val_"):
        raise ConfigError(f"--select-by {metric}: the choice is made on VAL; use a val_* metric")
    if finished.empty or column not in finished:
        return pd.DataFrame()
    keys = [k for k in groups if k in finished]
    rows = []
    for group, part in finished.dropna(subset=[column]).groupby(keys, dropna=False):
        means = part.groupby("config_id")[column].mean()
        best = means.idxmax() if higher_is_better(metric) else means.idxmin()
        cell = part[part["config_id"] == best]
        pick = cell[column].idxmax() if higher_is_better(metric) else cell[column].idxmin()
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        row.update(selector=cell["selector"].iloc[0], model=cell["model"].iloc[0],
                   config_id=best, n=len(cell), candidates=len(means),
                   best_run_id=cell.loc[pick, "run_id"], **{metric: means[best]})
        for shown in SELECTION_SHOWN:
            if f"metrics.{shown}" in cell:
                row[shown] = cell[f"metrics.{shown}"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def literature(dataset: str) -> pd.DataFrame | None:
    """Published figures for `dataset` (bench/report/literature/<dataset>.csv, with citations),
    or None when none are kept."""
    path = Path(__file__).resolve().parent / "literature" / f"{dataset}.csv"
    return pd.read_csv(path) if path.exists() else None
