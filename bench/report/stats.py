"""Significance across pipelines: Friedman + Nemenyi with a critical-difference diagram
(autorank, pairwise p-values from scikit-posthocs), and a paired comparison of two pipelines
(Wilcoxon signed-rank test and a paired bootstrap interval, both from scipy).

A *pipeline* is what is compared across datasets: by default selector/model (the keys are an
option). A *block* is one measurement occasion all pipelines share: a dataset x seed pair
(default) or a dataset (mean over seeds).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.report.tables import higher_is_better

MIN_PIPELINES = 3  # Friedman/Nemenyi (autorank and scipy need three or more)
MIN_BLOCKS = 5  # autorank's minimum number of paired measurements
MIN_BOOTSTRAP_PAIRS = 5  # fewer pairs give a bootstrap distribution of a handful of values


def pipeline_labels(runs: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    return runs[list(keys)].fillna("?").astype(str).agg("/".join, axis=1)


@dataclass
class BlockMatrix:
    """Blocks (rows) x pipelines (columns) of one metric, complete (no NaN)."""

    matrix: pd.DataFrame
    # pipeline x block values before completeness filtering (for paired comparisons)
    full: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def block_matrix(finished: pd.DataFrame, metric: str, pipeline_keys: Sequence[str],
                 blocks: str = "dataset-seed") -> BlockMatrix:
    """Pivot FINISHED runs into blocks x pipelines for `metrics.<metric>`.

    Several runs of one pipeline in one block (configurations that differ only in keys outside
    `pipeline_keys`) are averaged, with a note. Pipelines missing from a dataset are dropped,
    then blocks with any missing value, each with a note.
    """
    notes: list[str] = []
    column = f"metrics.{metric}"
    if column not in finished or finished.empty:
        empty = pd.DataFrame()
        return BlockMatrix(empty, empty, [f"no finished run has the metric {metric!r}"])
    runs = finished[finished[column].notna()].copy()
    runs["pipeline"] = pipeline_labels(runs, pipeline_keys)
    runs["block_dataset"] = runs["dataset"].astype(str)
    index = ["block_dataset", "seed"] if blocks == "dataset-seed" else ["block_dataset"]
    if blocks not in ("dataset-seed", "dataset"):
        raise ValueError(f"blocks must be 'dataset-seed' or 'dataset', got {blocks!r}")
    counts = runs.groupby([*index, "pipeline"]).size()
    if blocks == "dataset-seed" and (counts > 1).any():
        notes.append(f"{int((counts > 1).sum())} block/pipeline pair(s) had several "
                     "configurations (they differ outside the pipeline keys "
                     f"{list(pipeline_keys)}); their values were averaged — add the differing "
                     "key to --pipeline-keys to compare them separately")
    full = runs.groupby([*index, "pipeline"])[column].mean().unstack("pipeline")
    if blocks == "dataset":
        full.index = full.index.astype(str)
    else:
        full.index = [f"{d}/seed={int(s) if not math.isnan(s) else '?'}" for d, s in full.index]
    full.index.name = "block"
    datasets = runs.groupby("pipeline")["block_dataset"].nunique()
    all_datasets = runs["block_dataset"].nunique()
    partial = sorted(datasets[datasets < all_datasets].index)
    if partial:
        notes.append(f"left out of the multi-pipeline test (not run on all {all_datasets} "
                     f"datasets): {', '.join(partial)}")
    matrix = full.drop(columns=partial)
    incomplete = matrix.isna().any(axis=1)
    if incomplete.any():
        notes.append(f"{int(incomplete.sum())} block(s) where some pipeline has no finished run "
                     f"were dropped: {', '.join(map(str, matrix.index[incomplete]))}")
        matrix = matrix[~incomplete]
    return BlockMatrix(matrix, full, notes)


def mean_ranks(matrix: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per pipeline: mean rank over blocks (1 = best; ties share the average rank), mean metric
    and number of blocks; sorted best first."""
    if matrix.empty:
        return pd.DataFrame(columns=["pipeline", "mean rank", "mean", "blocks"])
    ranks = matrix.rank(axis=1, ascending=not higher_is_better(metric), method="average")
    table = pd.DataFrame({"pipeline": matrix.columns, "mean rank": ranks.mean().to_numpy(),
                          "mean": matrix.mean().to_numpy(), "blocks": matrix.count().to_numpy()})
    order = ["mean rank", "mean"]
    return table.sort_values(order, ascending=[True, not higher_is_better(metric)]
                             ).reset_index(drop=True)


@dataclass
class FriedmanResult:
    ran: bool
    note: str = ""
    pvalue: float = math.nan
    statistic: float = math.nan
    critical_difference: float = math.nan
    alpha: float = 0.05
    ranks: pd.DataFrame | None = None
    nemenyi_pvalues: pd.DataFrame | None = None
    figure: Any = None

    @property
    def significant(self) -> bool:
        return self.ran and self.pvalue < self.alpha


def friedman_nemenyi(matrix: pd.DataFrame, metric: str, alpha: float = 0.05
                     ) -> FriedmanResult:
    """Friedman test over blocks with the Nemenyi post-hoc test and a CD diagram (autorank,
    forced to the non-parametric path); pairwise Nemenyi p-values from scikit-posthocs.

    Too few pipelines or blocks, or identical values everywhere, give `ran=False` and a note.
    """
    refusal = _cannot_rank(matrix)
    if refusal:
        return FriedmanResult(False, refusal, alpha=alpha)
    import scikit_posthocs as sp
    from autorank import autorank

    order = "descending" if higher_is_better(metric) else "ascending"
    data = matrix.reset_index(drop=True)
    data.columns = [str(c) for c in data.columns]
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = autorank(data, alpha=alpha, order=order, force_mode="nonparametric")
    except Exception as error:  # autorank refuses degenerate data with an exception
        return FriedmanResult(False, f"autorank could not run the test: {error}", alpha=alpha)
    statistic = float(stats.friedmanchisquare(*data.T.to_numpy()).statistic)
    pvalues = sp.posthoc_nemenyi_friedman(data)
    return FriedmanResult(True, "", float(result.pvalue), statistic,
                          float(result.cd) if result.cd is not None else math.nan, alpha,
                          _rank_table(result),
                          pvalues.reset_index().rename(columns={"index": "pipeline"}),
                          _cd_diagram(result, matrix.shape[1]))


def _cannot_rank(matrix: pd.DataFrame) -> str:
    """Why the Friedman test cannot run on blocks x pipelines; "" when it can."""
    n, k = matrix.shape
    if k < MIN_PIPELINES:
        return (f"Friedman/Nemenyi needs at least {MIN_PIPELINES} pipelines measured on the "
                f"same blocks; found {k}. With two, read the paired comparison below.")
    if n < MIN_BLOCKS:
        return (f"Friedman/Nemenyi needs at least {MIN_BLOCKS} blocks where every pipeline "
                f"finished; found {n}. Run more seeds or datasets.")
    if np.allclose(matrix.to_numpy(), matrix.to_numpy()[:, :1]):
        return "every pipeline has the same value in every block: nothing to rank"
    return ""


def _rank_table(result: Any) -> pd.DataFrame:
    """autorank's rank frame: pipeline, mean rank, median, MAD, CI, effect size (numeric
    columns converted where every value converts)."""
    ranks = result.rankdf.reset_index().rename(columns={"index": "pipeline"})
    keep = [c for c in ("pipeline", "meanrank", "median", "mad", "ci_lower", "ci_upper",
                        "effect_size", "magnitude") if c in ranks.columns]
    ranks = ranks[keep]
    for column in keep[1:]:
        converted = pd.to_numeric(ranks[column], errors="coerce")
        if converted.notna().all():
            ranks[column] = converted
    return ranks


def _cd_diagram(result: Any, pipelines: int) -> Any:
    """autorank's critical-difference diagram, or None when plotting fails."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from autorank import plot_stats

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ax = plot_stats(result, allow_insignificant=True, width=max(6.0, 1.1 * pipelines))
            return ax.get_figure() if ax is not None else None
        except Exception:  # a plot failure must not lose the test results
            plt.close("all")
            return None


@dataclass
class PairedResult:
    a: str
    b: str
    ran: bool
    note: str = ""
    n: int = 0
    mean_diff: float = math.nan
    median_diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    wins: int = 0
    ties: int = 0
    losses: int = 0
    wilcoxon_statistic: float = math.nan
    wilcoxon_p: float = math.nan
    pairs: pd.DataFrame | None = None


def paired_comparison(full: pd.DataFrame, a: str, b: str, metric: str,
                      confidence: float = 0.95, seed: int = 0) -> PairedResult:
    """Pipeline `a` against `b` on the blocks where both finished: the differences a - b,
    their mean with a paired bootstrap interval (scipy.stats.bootstrap, BCa) and the Wilcoxon
    signed-rank test (scipy.stats.wilcoxon, two-sided, zero differences dropped).
    "wins" counts blocks where `a` is better in the metric's direction.
    """
    for name in (a, b):
        if name not in full.columns:
            return PairedResult(a, b, False, f"no finished runs of pipeline {name!r}; "
                                f"known: {', '.join(map(str, full.columns))}")
    pairs = full[[a, b]].dropna()
    n = len(pairs)
    if n == 0:
        return PairedResult(a, b, False, "the two pipelines share no block (dataset and seed)")
    diff = (pairs[a] - pairs[b]).to_numpy()
    sign = 1 if higher_is_better(metric) else -1
    out = PairedResult(a, b, True, "", n, float(diff.mean()), float(np.median(diff)),
                       wins=int((sign * diff > 0).sum()), ties=int((diff == 0).sum()),
                       losses=int((sign * diff < 0).sum()),
                       pairs=pairs.assign(difference=diff).reset_index())
    notes = []
    if n < MIN_BOOTSTRAP_PAIRS:
        notes.append(f"{n} shared block(s): too few for a bootstrap interval (needs "
                     f"{MIN_BOOTSTRAP_PAIRS})")
    elif np.ptp(diff) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot = stats.bootstrap((diff,), np.mean, confidence_level=confidence,
                                   n_resamples=9999, method="BCa",
                                   random_state=np.random.default_rng(seed))
        out.ci_low, out.ci_high = (float(boot.confidence_interval.low),
                                   float(boot.confidence_interval.high))
    else:
        out.ci_low = out.ci_high = out.mean_diff
    if np.count_nonzero(diff) == 0:
        notes.append("all differences are zero: the Wilcoxon test is undefined")
    else:
        result = stats.wilcoxon(pairs[a], pairs[b], zero_method="wilcox",
                                alternative="two-sided")
        out.wilcoxon_statistic, out.wilcoxon_p = float(result.statistic), float(result.pvalue)
        if np.count_nonzero(diff) < 6:
            notes.append(f"only {np.count_nonzero(diff)} non-zero differences: the exact "
                         "two-sided Wilcoxon p-value cannot fall below 0.05 with fewer than 6")
    out.note = "; ".join(notes)
    return out
