"""The report's explanatory text, apart from the code that computes what it explains.

Constants are fixed paragraphs; functions fill numbers into a paragraph and decide nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.tracking import CONFIG_ID_EXCLUDED

if TYPE_CHECKING:
    from bench.report import stats

NO_RUNS = ("no bench runs matched the selection: nothing to report. Check --tracking-uri, "
           "--experiment, --dataset, --tag and --filter.")
LATENCY = ("Per-row scoring latency on TEST, scored in batches: median and 99th percentile over "
           "batches of (batch time / batch rows), in microseconds per row, mean ± CI over seeds. "
           "Timings depend on the machine and its load.")
NO_FAILURES = "None."
FAILURES = ("Every run that did not finish, with the first line of its `error` tag (the full "
            "traceback is the run's error/traceback.txt artifact).")
FRIEDMAN_NOT_SIGNIFICANT = ("the Friedman test is not significant: the post-hoc results below "
                            "do not license claims that any pipeline is better.")
AUTORANK_CAPTION = ("autorank: mean rank, median, MAD, CI of the median, effect size against "
                    "the best (Cliff's delta / Akinshin's gamma)")
NEMENYI_CAPTION = "pairwise Nemenyi p-values (scikit-posthocs)"
NO_PAIR = "fewer than two pipelines: no paired comparison"
NO_FAMILIES = "No run logged per-family metrics (datasets without an attack family)."
METHOD_NOTES = [
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
]


def selection_counts(runs: int, finished: int, failed: int, repeats: int) -> str:
    return (f"{runs} runs selected: {finished} finished (used), {failed} failed"
            + (f", {repeats} older repeat(s) of the same configuration and seed set aside "
               "(the latest run of each is used)" if repeats else ""))


def several_commits(n: int) -> str:
    return (f"the runs come from {n} different git commits; differences may come from code "
            "changes as well as from configurations")


def leaderboard(confidence: float, metric: str) -> str:
    excluded = ", ".join(CONFIG_ID_EXCLUDED[:-1]) + f" and {CONFIG_ID_EXCLUDED[-1]}"
    return (f"One row per configuration (config_id = hash of the configuration without "
            f"{excluded}) of dataset x selector x model. Cells read mean ± half-width "
            f"of the {round(confidence * 100)} % Student-t confidence interval of the mean over "
            f"seeds (n = number of finished seeds); \"(n=1)\" means a single run, so no "
            f"interval. 'failed' counts FAILED/KILLED runs of the configuration; a row with "
            f"n = 0 had no finished run. Sorted by {metric} within each dataset. Raw numbers: "
            f"leaderboard.csv.")


def significance(keys: Sequence[str], blocks: str) -> str:
    blocks_text = ("dataset x seed pairs" if blocks == "dataset-seed"
                   else "datasets (mean over seeds)")
    return (f"Pipelines = {'/'.join(keys)}; blocks = {blocks_text}. Only finished runs count; "
            "a pipeline must be measured on every block to enter the multi-pipeline test.")


def friedman(result: stats.FriedmanResult, blocks: int, pipelines: int, alpha: float) -> str:
    verdict = "significant" if result.significant else "not significant"
    return (f"Friedman chi-square = {result.statistic:.4g} over {blocks} blocks and {pipelines} "
            f"pipelines, p = {result.pvalue:.4g}: {verdict} at alpha = {alpha}. Nemenyi "
            f"critical difference CD = {result.critical_difference:.4g} mean ranks: two "
            "pipelines whose mean ranks differ by more than CD differ significantly; in the "
            "diagram, pipelines joined by a bar do not.")


def default_pair(a: str, b: str) -> str:
    return (f"Default pair: the two best pipelines by mean rank: {a} vs {b} (choose with "
            "--compare A B).")


def paired(result: stats.PairedResult, metric: str, confidence: float,
           higher_is_better: bool) -> str:
    direction = "higher" if higher_is_better else "lower"
    interval = ("no interval" if math.isnan(result.ci_low) else
                f"{round(confidence * 100)} % paired bootstrap CI "
                f"[{result.ci_low:+.4g}, {result.ci_high:+.4g}]")
    return (f"{result.a} minus {result.b} on {result.n} shared blocks: mean difference "
            f"{result.mean_diff:+.4g} ({interval}), median {result.median_diff:+.4g}; "
            f"{result.a} better ({direction} {metric}) in {result.wins}, tied in {result.ties}, "
            f"worse in {result.losses}. Wilcoxon signed-rank: statistic "
            f"{result.wilcoxon_statistic:.4g}, p = {result.wilcoxon_p:.4g}.")


def family_recall(dataset: str) -> str:
    return (f"dataset {dataset}: share of each family's TEST rows flagged as attack, mean over "
            "seeds (n = finished runs); 'FPR <family>' is the false-positive rate of the normal "
            "family.")


def selection_by_val(metric: str) -> str:
    return (f"Per dataset (and per validation, when runs used several `split` options), the "
            f"pipeline with the best mean VAL {metric} over its seeds is chosen. Only VAL "
            "metrics make the choice; the chosen pipeline's TEST figures are shown beside it. "
            "Under `split=grouped` VAL holds attack groups TRAIN never saw, so the choice "
            "favours pipelines that generalise to novel attacks (docs/validation.md).")
