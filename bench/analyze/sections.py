"""The sections of the analysis document, one function each, in the order they appear.

Each section computes with `bench.analyze.stats`, writes its tables to `tables/`, adds its
part of the document and its headline numbers to `Analysis.metrics`. Text lives in `prose`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.analyze import prose, stats
from bench.analyze.columns import ROLES
from bench.evaluation.metrics import metric_safe
from bench.outputs import write_csv, write_whole
from bench.report.render import Document


@dataclass
class Analysis:
    """What the sections write into: the document, the tables folder, the metrics."""

    doc: Document
    tables: Path
    metrics: dict[str, float] = field(default_factory=dict)

    def save(self, table: pd.DataFrame, file: str) -> None:
        write_csv(table, self.tables / file)


def analyse(frame: pd.DataFrame, schema: Any, name: str, columns: Mapping[str, Any],
            options: Any, out_dir: Path, echo: Callable[[str], Any]) -> dict[str, float]:
    """Write analysis.md/.html, plots/, tables/ and summary.json into `out_dir`; returns the
    headline numbers (NaN ones left out) as metrics."""
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    out = Analysis(Document(f"Exploratory analysis: {name}", out_dir, image_dir="plots"), tables)
    out.doc.bullets(prose.overview(name, len(frame), schema.label, schema.family, columns))
    missing_and_duplicates(out, frame, schema)
    balance(out, frame, schema, name)
    skewness(out, frame, schema)
    correlation(out, frame, schema, name, float(options.corr_threshold))
    two_classes = frame[schema.label].nunique() == 2
    if not two_classes:
        out.doc.note(prose.ONE_CLASS)
    welch(out, frame, schema.label, columns["bytes"] if two_classes else [])
    chi_square(out, frame, schema.label, {r: columns[r] if two_classes else None for r in ROLES})
    logits(out, frame, schema, columns["logit"] if two_classes else [])
    projections(out, frame, schema, name, options, echo)
    out.doc.write("analysis")
    metrics = out.metrics
    write_whole(out_dir / "summary.json", json.dumps(
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in metrics.items()},
        indent=2))
    return {k: float(v) for k, v in metrics.items() if v == v}  # NaN metrics left out


def missing_and_duplicates(out: Analysis, frame: pd.DataFrame, schema: Any) -> None:
    missing, counts = stats.missing_and_duplicates(frame, schema)
    out.doc.heading("Missing values and duplicates")
    out.doc.table(pd.DataFrame({"count": list(counts), "value": list(counts.values())}),
                  caption=prose.COUNTS_CAPTION)
    if missing.empty:
        out.doc.text(prose.NO_MISSING)
    else:
        out.doc.table(missing, caption="missing values per column")
    out.save(missing, "missing.csv")
    write_whole(out.tables / "counts.json", json.dumps(counts, indent=2))
    out.metrics.update({k: float(v) for k, v in counts.items()})


def balance(out: Analysis, frame: pd.DataFrame, schema: Any, name: str) -> None:
    out.doc.heading("Label and attack-family balance")
    label_balance = stats.balance(frame, schema.label, stats.CLASS_NAMES)
    out.doc.table(label_balance, caption="label", float_format=".4f")
    out.save(label_balance, "label_balance.csv")
    shown = {"label": label_balance}
    out.metrics["attack_share"] = float(frame[schema.label].mean())
    if schema.family:
        family_balance = stats.balance(frame, schema.family)
        out.doc.table(family_balance, caption=f"family ({schema.family})", float_format=".4f")
        out.save(family_balance, "family_balance.csv")
        shown[f"family ({schema.family})"] = family_balance
    out.doc.figure(stats.balance_figure(shown, f"{name}: balance"), "balance",
                   "label and family counts")


def skewness(out: Analysis, frame: pd.DataFrame, schema: Any) -> None:
    out.doc.heading("Skewness before and after log1p")
    skew = stats.skewness(frame, schema.numeric)
    out.save(skew, "skewness.csv")
    out.doc.text(prose.SKEWNESS)
    out.doc.table(skew, float_format=".3f")


def correlation(out: Analysis, frame: pd.DataFrame, schema: Any, name: str,
                threshold: float) -> None:
    """Pearson heatmap, the pairs above `threshold` and the greedy drop list."""
    out.doc.heading("Correlation")
    corr = stats.correlation(frame, schema.numeric, threshold)
    write_csv(corr.matrix.reset_index(names="column"), out.tables / "correlation.csv")
    out.save(corr.pairs, "high_correlation_pairs.csv")
    write_whole(out.tables / "drop_list.txt", "\n".join(corr.drop) + ("\n" if corr.drop else ""))
    out.doc.figure(stats.correlation_heatmap(corr, f"{name}: Pearson correlation"),
                   "correlation_heatmap", "Pearson correlation of the numeric columns")
    if corr.constant:
        out.doc.note(prose.constant_columns(corr.constant))
    out.doc.text(prose.drop_list(len(corr.pairs), corr.threshold, corr.drop))
    if not corr.pairs.empty:
        out.doc.table(corr.pairs, caption=f"pairs with |r| > {corr.threshold}",
                      float_format=".4f")
    out.metrics.update(high_correlation_pairs=float(len(corr.pairs)),
                       correlation_drop_count=float(len(corr.drop)),
                       constant_columns=float(len(corr.constant)))


def welch(out: Analysis, frame: pd.DataFrame, label: str, byte_columns: list[str]) -> None:
    """Welch's t-tests of the byte counts, normal vs attack (none: a line says so)."""
    out.doc.heading("Byte counts: normal vs attack (Welch's t-test)")
    if not byte_columns:
        out.doc.text(prose.NO_BYTES)
        return
    table = stats.welch_tests(frame, label, byte_columns)
    out.save(table, "welch_ttests.csv")
    out.doc.text(prose.WELCH)
    out.doc.table(table)
    for row in table.itertuples():
        key = metric_safe(f"{row.column}_{row.scale}")
        out.metrics[f"welch_t_{key}"] = row.t
        out.metrics[f"welch_p_{key}"] = row.p
        out.metrics[f"cohen_d_{key}"] = row.cohen_d


def chi_square(out: Analysis, frame: pd.DataFrame, label: str,
               role_columns: Mapping[str, str | None]) -> None:
    """Per role (protocol, service, flag) with a column: contingency table and chi-square test
    against the label; then a summary table of the tests."""
    out.doc.heading("Categorical columns vs normal/attack (chi-square)")
    rows = []
    for role, column in role_columns.items():
        if column is None:
            out.doc.text(prose.no_role_column(role))
            continue
        result = stats.chi_square(frame, label, column)
        rows.append({"role": role, "column": column, "levels": len(result.table),
                     "chi2": result.chi2, "dof": result.dof, "p": result.p,
                     "cramers_v": result.cramers_v,
                     "cells_expected_lt_5": result.low_expected_share})
        write_csv(result.table.reset_index(), out.tables / f"contingency_{column}.csv")
        out.doc.table(result.table.reset_index(), caption=prose.contingency_caption(column,
                                                                                    result))
        key = metric_safe(column)
        out.metrics.update({f"chi2_{key}": result.chi2, f"chi2_dof_{key}": float(result.dof),
                            f"chi2_p_{key}": result.p, f"cramers_v_{key}": result.cramers_v})
    if rows:
        chi = pd.DataFrame(rows)
        out.save(chi, "chi_square_tests.csv")
        out.doc.table(chi, caption=prose.CHI_SQUARE_CAPTION, float_format=".6g")
        if (chi["cells_expected_lt_5"] > 0.2).any():
            out.doc.note(prose.CHI_SQUARE_ROUGH)


def logits(out: Analysis, frame: pd.DataFrame, schema: Any, columns: list[str]) -> None:
    """One statsmodels Logit of the label on each column (categoricals one-hot coded)."""
    out.doc.heading("Single-feature logistic regressions (statsmodels Logit)")
    rows = []
    for column in columns:
        categorical = column in schema.categorical or frame[column].dtype == object
        result = stats.single_logit(frame, schema.label, column, categorical)
        rows.append(result.summary)
        out.doc.text(prose.logit(column, result.summary))
        if "warnings" in result.summary:
            out.doc.note(f"{column}: {result.summary['warnings']}")
        if not result.coefficients.empty:
            out.doc.table(result.coefficients, caption=f"Logit coefficients, {column}")
            out.save(result.coefficients, f"logit_{metric_safe(column)}.csv")
            out.metrics[f"logit_pseudo_r2_{metric_safe(column)}"] = result.summary["pseudo_r2"]
    if rows:
        out.save(pd.DataFrame(rows), "logit_summary.csv")
    else:
        out.doc.text(prose.NO_LOGIT)


def projections(out: Analysis, frame: pd.DataFrame, schema: Any, name: str, options: Any,
                echo: Callable[[str], Any]) -> None:
    """PCA (fitted on all rows, a stratified sample drawn) and t-SNE of a stratified sample."""
    out.doc.heading("PCA and t-SNE")
    seed = int(options.random_state)
    label = schema.label
    X = stats.design_matrix(frame, schema)
    y = frame[label].to_numpy()
    rows = frame.reset_index(drop=True)
    sample = stats.stratified_sample(rows, label, int(options.pca_rows), seed).index.to_numpy()
    figure, ratio = stats.pca_scatter(X, y, sample, f"{name}: PCA ({len(sample):,} of "
                                      f"{len(frame):,} rows drawn)")
    out.doc.text(prose.design_matrix(X.shape[1], ratio))
    out.doc.figure(figure, "pca_scatter", "PCA, coloured by label")
    out.metrics.update(pca_explained_variance_1=ratio[0], pca_explained_variance_2=ratio[1])
    tsne_rows = stats.stratified_sample(rows, label, int(options.tsne_rows),
                                        seed).index.to_numpy()
    echo(f"[analyze] t-SNE on {len(tsne_rows):,} rows ...")
    out.doc.figure(stats.tsne_scatter(X[tsne_rows], y[tsne_rows], float(options.tsne_perplexity),
                                      seed, f"{name}: t-SNE ({len(tsne_rows):,} rows, "
                                      "stratified)"),
                   "tsne_scatter", "t-SNE of a stratified sample, coloured by label")
