"""The analysis' explanatory text, apart from the code that computes what it explains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COUNTS_CAPTION = "counts (feature rows = the model's input columns)"
NO_MISSING = "No missing values."
SKEWNESS = ("Sample skewness of each numeric column (pandas, bias-corrected), sorted by |skew|; "
            "log1p is applied only to columns without negative values.")
ONE_CLASS = "only one class in the label: the normal-vs-attack tests are skipped"
WELCH = ("Welch's t-test (unequal variances, scipy) on raw values and on log1p; Cohen's d = "
         "(mean attack - mean normal) / pooled SD (0.2 small, 0.5 medium, 0.8 large). With this "
         "many rows tiny differences are 'significant': read d.")
NO_BYTES = "No byte-count columns (analyze.columns.bytes)."
CHI_SQUARE_CAPTION = ("summary: Pearson chi-square test of independence; Cramér's V (0 = "
                      "independent, 1 = determined) is the effect size")
CHI_SQUARE_ROUGH = ("some tables have more than 20 % of cells with expected count < 5: the "
                    "chi-square approximation is rough there (many rare levels).")
NO_LOGIT = "No columns configured (analyze.columns.logit)."


def overview(name: str, rows: int, label: str, family: str | None,
             columns: Mapping[str, Any]) -> list[str]:
    return [f"frame: Dataset.train of {name}, {rows:,} rows (whole labelled frame, no split)",
            f"label: {label} (1 = attack); family: {family or 'none'}",
            "column roles: " + ", ".join(f"{k} = {v}" for k, v in columns.items()),
            "differences and effect sizes are attack minus normal"]


def constant_columns(columns: Sequence[str]) -> str:
    return f"constant columns (no correlation defined, left out): {', '.join(columns)}"


def drop_list(pairs: int, threshold: float, drop: Sequence[str]) -> str:
    return (f"{pairs} pair(s) with |r| > {threshold}. Drop list (walking the columns in order, "
            "drop a column highly correlated with an earlier kept one): "
            f"{', '.join(drop) or 'none'}.")


def no_role_column(role: str) -> str:
    return f"{role}: no column for this dataset (analyze.columns.{role})."


def contingency_caption(column: str, result: Any) -> str:
    return (f"{column} x normal/attack (chi-square {result.chi2:,.2f}, dof {result.dof}, "
            f"p = {result.p:.3g}, Cramér's V {result.cramers_v:.3f})")


def logit(column: str, summary: Mapping[str, Any]) -> str:
    return (f"label ~ 1 + {column} ({summary['coding']}): "
            + (f"failed: {summary['error']}" if "error" in summary else
               f"McFadden pseudo-R² {summary['pseudo_r2']:.4f}, likelihood-ratio "
               f"p = {summary['llr_p']:.3g}"))


def design_matrix(columns: int, ratio: Sequence[float]) -> str:
    return (f"Design matrix: one-hot categoricals + standardised log1p(numeric), {columns} "
            f"columns. PCA is fitted on all rows; explained variance {ratio[0]:.1%} + "
            f"{ratio[1]:.1%}.")
