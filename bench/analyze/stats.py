"""Exploratory statistics of one labelled frame (scipy, statsmodels, scikit-learn); each
function returns tables (DataFrames), numbers and/or matplotlib figures, and writes nothing.

Conventions: `label` is 1 = attack, 0 = normal; "attack minus normal" is the sign of every
difference and effect size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from bench.data.dataset import Schema

CLASS_NAMES = {0: "normal", 1: "attack"}


# -- data quality -------------------------------------------------------------------------
def missing_and_duplicates(frame: pd.DataFrame, schema: Schema
                           ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per-column missing counts (only columns with any, else an empty table) and counts of
    duplicate rows: whole rows, feature rows, and feature rows that occur with both labels."""
    missing = frame.isna().sum()
    table = pd.DataFrame({"column": missing.index, "missing": missing.to_numpy(),
                          "share": (missing / max(len(frame), 1)).to_numpy()})
    table = table[table["missing"] > 0].reset_index(drop=True)
    features = frame[schema.features]
    dup_features = features.duplicated(keep="first")
    labels_per_row = frame.groupby(schema.features, dropna=False, sort=False)[
        schema.label].transform("nunique")
    counts = {
        "rows": len(frame),
        "columns": frame.shape[1],
        "features": len(schema.features),
        "missing_cells": int(missing.sum()),
        "rows_with_missing": int(frame.isna().any(axis=1).sum()),
        "duplicate_rows": int(frame.duplicated(keep="first").sum()),
        "duplicate_feature_rows": int(dup_features.sum()),
        "rows_in_label_conflicts": int((labels_per_row > 1).sum()),
    }
    return table, counts


# -- distributions ------------------------------------------------------------------------
def skewness(frame: pd.DataFrame, numeric: Sequence[str]) -> pd.DataFrame:
    """Sample skewness (pandas, bias-corrected) of each numeric column before and after
    log1p; log1p only where the column has no value below 0 (else NaN with a note)."""
    rows = []
    for column in numeric:
        x = pd.to_numeric(frame[column], errors="coerce").dropna()
        note = ""
        if x.nunique() <= 1:
            rows.append({"column": column, "skew": math.nan, "skew_log1p": math.nan,
                         "min": x.min() if len(x) else math.nan, "note": "constant"})
            continue
        before = float(x.skew())
        if x.min() < 0:
            after, note = math.nan, "negative values: log1p not applied"
        else:
            after = float(np.log1p(x).skew())
        rows.append({"column": column, "skew": before, "skew_log1p": after, "min": float(x.min()),
                     "note": note})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("skew", key=lambda s: -s.abs(), na_position="last"
                             ).reset_index(drop=True)


# -- correlation --------------------------------------------------------------------------
@dataclass
class Correlation:
    matrix: pd.DataFrame
    pairs: pd.DataFrame  # a, b, r with |r| > threshold, strongest first
    drop: list[str]
    constant: list[str]
    threshold: float


def correlation(frame: pd.DataFrame, numeric: Sequence[str], threshold: float = 0.9
                ) -> Correlation:
    """Pearson correlation of the numeric columns (constant columns left out: r undefined),
    the pairs with |r| > threshold, and a drop list: walking the columns in order, a column
    is dropped when it correlates above the threshold with an earlier column that is kept."""
    data = frame[list(numeric)].apply(pd.to_numeric, errors="coerce")
    constant = [c for c in data.columns if data[c].nunique(dropna=True) <= 1]
    data = data.drop(columns=constant)
    matrix = data.corr(method="pearson")
    columns = list(matrix.columns)
    pairs = []
    for i, a in enumerate(columns):
        for b in columns[i + 1:]:
            r = matrix.at[a, b]
            if abs(r) > threshold:
                pairs.append({"a": a, "b": b, "r": float(r)})
    pair_table = pd.DataFrame(pairs, columns=["a", "b", "r"])
    if not pair_table.empty:
        pair_table = pair_table.sort_values("r", key=lambda s: -s.abs()).reset_index(drop=True)
    drop: list[str] = []
    for j, b in enumerate(columns):
        kept_before = [a for a in columns[:j] if a not in drop]
        if any(abs(matrix.at[a, b]) > threshold for a in kept_before):
            drop.append(b)
    return Correlation(matrix, pair_table, drop, constant, threshold)


def correlation_heatmap(corr: Correlation, title: str) -> plt.Figure:
    k = len(corr.matrix)
    size = min(16.0, max(5.0, 0.32 * k + 2))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(corr.matrix.to_numpy(), cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(k), corr.matrix.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(k), corr.matrix.index, fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Pearson r")
    ax.set_title(title)
    fig.tight_layout()
    return fig


# -- balance ------------------------------------------------------------------------------
def balance(frame: pd.DataFrame, column: str, names: dict[Any, str] | None = None
            ) -> pd.DataFrame:
    counts = frame[column].value_counts(dropna=False)
    index = [names.get(v, v) if names else v for v in counts.index]
    return pd.DataFrame({column: [str(v) for v in index], "rows": counts.to_numpy(),
                         "share": (counts / counts.sum()).to_numpy()})


def balance_figure(tables: dict[str, pd.DataFrame], title: str) -> plt.Figure:
    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items(), strict=True):
        table = table.head(25)
        ax.barh(table.iloc[:, 0][::-1], table["rows"][::-1], color="tab:blue")
        ax.set_xlabel("rows")
        ax.set_title(name)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# -- normal vs attack: numeric ------------------------------------------------------------
def cohen_d(attack: np.ndarray, normal: np.ndarray) -> float:
    """(mean attack - mean normal) / pooled standard deviation (ddof = 1)."""
    n1, n0 = len(attack), len(normal)
    if n1 < 2 or n0 < 2:
        return math.nan
    pooled = math.sqrt(((n1 - 1) * attack.var(ddof=1) + (n0 - 1) * normal.var(ddof=1))
                       / (n1 + n0 - 2))
    return float((attack.mean() - normal.mean()) / pooled) if pooled > 0 else math.nan


def welch_tests(frame: pd.DataFrame, label: str, columns: Sequence[str]) -> pd.DataFrame:
    """Welch's t-test (scipy.stats.ttest_ind, equal_var=False) of each column, attack vs
    normal, on the raw values and on log1p (heavy-tailed counts), with Cohen's d beside."""
    rows = []
    y = frame[label].to_numpy()
    for column in columns:
        x = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        for scale in ("raw", "log1p"):
            if scale == "log1p" and np.nanmin(x) < 0:
                continue
            v = np.log1p(x) if scale == "log1p" else x
            attack, normal = v[(y == 1) & ~np.isnan(v)], v[(y == 0) & ~np.isnan(v)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                test = stats.ttest_ind(attack, normal, equal_var=False)
            rows.append({
                "column": column, "scale": scale, "n_normal": len(normal),
                "n_attack": len(attack), "mean_normal": float(normal.mean()),
                "mean_attack": float(attack.mean()), "median_normal": float(np.median(normal)),
                "median_attack": float(np.median(attack)), "t": float(test.statistic),
                "df": float(getattr(test, "df", math.nan)), "p": float(test.pvalue),
                "cohen_d": cohen_d(attack, normal),
            })
    return pd.DataFrame(rows)


# -- normal vs attack: categorical --------------------------------------------------------
@dataclass
class ChiSquare:
    column: str
    table: pd.DataFrame  # levels x (normal, attack)
    chi2: float
    dof: int
    p: float
    cramers_v: float
    low_expected_share: float  # share of cells with expected count < 5


def chi_square(frame: pd.DataFrame, label: str, column: str) -> ChiSquare:
    """Pearson chi-square test of independence (scipy.stats.chi2_contingency; Yates'
    correction only for a 2 x 2 table, scipy's default) of `column` vs normal/attack, with
    Cramér's V (scipy.stats.contingency.association)."""
    table = pd.crosstab(frame[column].astype(str), frame[label].map(CLASS_NAMES))
    table = table.reindex(columns=["normal", "attack"], fill_value=0)
    table.index.name = column
    table.columns.name = None
    result = stats.chi2_contingency(table.to_numpy())
    observed = table.to_numpy()
    v = (float(stats.contingency.association(observed, method="cramer"))
         if min(observed.shape) > 1 else math.nan)
    return ChiSquare(column, table, float(result.statistic), int(result.dof),
                     float(result.pvalue), v, float((result.expected_freq < 5).mean()))


# -- single-feature logistic regression ---------------------------------------------------
@dataclass
class LogitResult:
    column: str
    coefficients: pd.DataFrame  # term, coef, std_err, z, p, odds_ratio, ci_low, ci_high
    summary: dict[str, Any] = field(default_factory=dict)


def single_logit(frame: pd.DataFrame, label: str, column: str, categorical: bool
                 ) -> LogitResult:
    """Logit(label ~ 1 + column) with statsmodels; a categorical column is dummy-coded with
    its most frequent level as the reference. Failures (perfect separation, a singular
    matrix) are reported in `summary["error"]`, warnings in `summary["warnings"]`."""
    import statsmodels.api as sm

    y = frame[label].astype(float)
    if categorical:
        values = frame[column].astype(str)
        reference = values.value_counts().index[0]
        X = pd.get_dummies(values, prefix=column, prefix_sep="=", dtype=float)
        X = X.drop(columns=f"{column}={reference}")
        ref_text = f"reference level {reference!r}"
        classes = pd.crosstab(values, frame[label])
        separated = sorted(str(v) for v in classes.index[(classes == 0).any(axis=1)])
    else:
        X = pd.to_numeric(frame[column], errors="coerce").astype(float).to_frame(column)
        ref_text = "per unit"
        separated = []
    X = sm.add_constant(X, has_constant="add")
    summary: dict[str, Any] = {"column": column, "kind": "categorical" if categorical
                               else "numeric", "coding": ref_text, "n": len(y)}
    empty = pd.DataFrame(columns=["term", "coef", "std_err", "z", "p", "odds_ratio",
                                  "ci_low", "ci_high"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.Logit(y, X).fit(disp=0, maxiter=200)
        except Exception as error:  # perfect separation or singular Hessian
            summary["error"] = f"{type(error).__name__}: {error}"
            return LogitResult(column, empty, summary)
    messages = sorted({str(w.message).splitlines()[0][:160] for w in caught})
    if separated:
        messages.append(f"level(s) {', '.join(separated)} occur with one class only "
                        "(quasi-separation): their coefficients and standard errors are not "
                        "meaningful")
    if messages:
        summary["warnings"] = "; ".join(messages)
    ci = fit.conf_int()
    with np.errstate(over="ignore"):
        coefficients = pd.DataFrame({
            "term": fit.params.index, "coef": fit.params.to_numpy(),
            "std_err": fit.bse.to_numpy(), "z": fit.tvalues.to_numpy(),
            "p": fit.pvalues.to_numpy(), "odds_ratio": np.exp(fit.params.to_numpy()),
            "ci_low": ci[0].to_numpy(), "ci_high": ci[1].to_numpy()})
    summary.update(pseudo_r2=float(fit.prsquared), llr=float(fit.llr),
                   llr_p=float(fit.llr_pvalue), converged=bool(fit.mle_retvals.get("converged")),
                   log_likelihood=float(fit.llf))
    return LogitResult(column, coefficients, summary)


# -- projections --------------------------------------------------------------------------
def stratified_sample(frame: pd.DataFrame, label: str, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows, the label shares kept (pandas groupby sample)."""
    if len(frame) <= rows:
        return frame
    share = rows / len(frame)
    return (frame.groupby(label, group_keys=False)
            .sample(frac=share, random_state=seed)
            .sort_index())


def design_matrix(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """One-hot categoricals (at most 30 levels each, rarer ones pooled) + standardised
    log1p(numeric) (plain numeric where a column has negative values)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in schema.numeric if frame[c].nunique() > 1]
    data = frame[[*schema.categorical, *numeric]].copy()
    for column in numeric:
        values = pd.to_numeric(data[column], errors="coerce").fillna(0.0).astype(float)
        data[column] = np.log1p(values) if values.min() >= 0 else values
    for column in schema.categorical:
        data[column] = data[column].astype(str)
    transformer = ColumnTransformer([
        ("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=30,
                                      sparse_output=False), list(schema.categorical)),
        ("numeric", StandardScaler(), numeric),
    ])
    return transformer.fit_transform(data)


def _scatter(ax: Any, points: np.ndarray, y: np.ndarray) -> None:
    for value, color in ((0, "tab:blue"), (1, "tab:red")):
        rows = y == value
        ax.scatter(points[rows, 0], points[rows, 1], s=3, alpha=0.35, c=color,
                   label=f"{CLASS_NAMES[value]} ({int(rows.sum()):,})", rasterized=True)
    ax.legend(loc="best", markerscale=4, fontsize=8)


def pca_scatter(X: np.ndarray, y: np.ndarray, sample: np.ndarray, title: str
                ) -> tuple[plt.Figure, list[float]]:
    """PCA (2 components) fitted on all rows of X; the `sample` rows are drawn."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0).fit(X)
    points = pca.transform(X[sample])
    ratio = [float(r) for r in pca.explained_variance_ratio_]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    _scatter(ax, points, y[sample])
    ax.set_xlabel(f"PC1 ({ratio[0]:.1%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.1%} of variance)")
    ax.set_title(title)
    fig.tight_layout()
    return fig, ratio


def tsne_scatter(X: np.ndarray, y: np.ndarray, perplexity: float, seed: int, title: str
                 ) -> plt.Figure:
    """t-SNE (scikit-learn, PCA initialisation) of the rows of X (already sampled)."""
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, max(2.0, (len(X) - 1) / 3))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                  ).fit_transform(X)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    _scatter(ax, points, y)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    fig.tight_layout()
    return fig
