"""`python -m bench.analyze dataset=<name>`: exploratory statistics of a dataset, ONE MLflow run.

The whole labelled `Dataset.train` frame is analysed (no split). The run (experiment
`analyze-<dataset>`) holds analysis.md, a self-contained analysis.html, plots/*.png (inside
the HTML too) and tables/*.csv, with the headline numbers as metrics. Column roles come from
the Schema and bench/analyze/conf/analyze/columns/<dataset>.yaml (docs/report.md).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from bench.errors import BenchError, ConfigError

ROLES = ("protocol", "service", "flag")
_PATTERNS = {"protocol": r"proto", "service": r"service", "flag": r"flag|^state$"}
_BYTES = re.compile(r"bytes|octets", re.IGNORECASE)
# analyze.yaml and its columns/ group live apart from bench/conf, so `bench --help` does not
# list them; analyze.yaml adds bench/conf (pkg://bench.conf) to its search path.
ANALYZE_CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")


@dataclass
class AnalysisResult:
    run_id: str
    experiment: str
    out_dir: Path
    metrics: dict[str, float]


def resolve_columns(configured: Mapping[str, Any], schema: Any, columns: list[str]
                    ) -> dict[str, Any]:
    """Column roles: configured names (checked to exist), else inferred from the Schema:
    protocol/service/flag = first categorical whose name matches proto / service /
    flag|state; bytes = numeric columns named *bytes* or *octets*; logit = [flag]."""
    out: dict[str, Any] = {}
    for role in ROLES:
        name = configured.get(role)
        if name is None:
            name = next((c for c in schema.categorical
                         if re.search(_PATTERNS[role], c, re.IGNORECASE)), None)
        out[role] = name
    out["bytes"] = (list(configured["bytes"]) if configured.get("bytes") is not None
                    else [c for c in schema.numeric if _BYTES.search(c)])
    out["logit"] = (list(configured["logit"]) if configured.get("logit") is not None
                    else [c for c in (out["flag"],) if c])
    named = [*(out[r] for r in ROLES if out[r]), *out["bytes"], *out["logit"]]
    unknown = [c for c in named if c not in columns]
    if unknown:
        raise ConfigError(f"analyze.columns name(s) {unknown} that the dataset does not have; "
                          f"its columns: {columns}")
    return out


def run_analysis(cfg: DictConfig, out_dir: str | Path, echo: Callable[[str], Any] = print
                 ) -> AnalysisResult:
    """Load `cfg.dataset`, compute the statistics, write them to `out_dir` and log ONE run."""
    from bench import tracking
    from bench.instantiate import build

    tracking.preflight(cfg.tracking.uri)
    dataset = build(cfg.dataset)
    frame, schema = dataset.train, dataset.schema
    options = cfg.analyze
    columns = resolve_columns(OmegaConf.to_container(options.columns, resolve=True) or {},
                              schema, list(frame.columns))
    experiment = f"analyze-{dataset.name}"
    tags = {"dataset": dataset.name, "git_commit": tracking.git_commit(),
            "analysis": "exploratory", **{f"version.{k}": v for k, v in
                                          tracking.package_versions().items()},
            **{k: str(v) for k, v in dataset.notes.items()}}
    out_dir = Path(out_dir)
    echo(f"[analyze] {dataset.name}: {len(frame):,} rows x {frame.shape[1]} columns "
         f"(Dataset.train, no split)")
    with tracking.tracked_run(cfg.tracking.uri, experiment, f"analyze/{dataset.name}",
                              tags) as run:
        tracking.log_params({"rows": len(frame), "corr_threshold": options.corr_threshold,
                             "pca_rows": options.pca_rows, "tsne_rows": options.tsne_rows,
                             **{f"columns.{k}": v for k, v in columns.items()}})
        tracking.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/resolved.yaml")
        metrics = _analyse(frame, schema, dataset.name, columns, options, out_dir, echo)
        tracking.log_metrics(metrics)
        import mlflow

        mlflow.log_artifacts(str(out_dir))
        echo(f"[analyze] MLflow run {run.info.run_id} (experiment '{experiment}'); "
             f"files in {out_dir}")
        return AnalysisResult(run.info.run_id, experiment, out_dir, metrics)


def _analyse(frame: Any, schema: Any, name: str, columns: dict[str, Any], options: Any,
             out_dir: Path, echo: Callable[[str], Any]) -> dict[str, float]:
    import numpy as np

    from bench.analyze import stats
    from bench.evaluation.metrics import metric_safe
    from bench.report.render import Document

    tables_dir = out_dir / "tables"
    tables_dir.mkdir(parents=True, exist_ok=True)
    doc = Document(f"Exploratory analysis: {name}", out_dir, image_dir="plots")
    metrics: dict[str, float] = {}
    label = schema.label

    def save(table: Any, file: str) -> None:
        table.to_csv(tables_dir / file, index=False)

    doc.bullets([f"frame: Dataset.train of {name}, {len(frame):,} rows (whole labelled frame, "
                 "no split)",
                 f"label: {label} (1 = attack); family: {schema.family or 'none'}",
                 "column roles: " + ", ".join(f"{k} = {v}" for k, v in columns.items()),
                 "differences and effect sizes are attack minus normal"])

    # missing values and duplicates
    missing, counts = stats.missing_and_duplicates(frame, schema)
    doc.heading("Missing values and duplicates")
    doc.table(_frame_of(counts), caption="counts (feature rows = the model's input columns)")
    if missing.empty:
        doc.text("No missing values.")
    else:
        doc.table(missing, caption="missing values per column")
    save(missing, "missing.csv")
    (tables_dir / "counts.json").write_text(json.dumps(counts, indent=2))
    metrics.update({k: float(v) for k, v in counts.items()})

    # label and family balance
    doc.heading("Label and attack-family balance")
    label_balance = stats.balance(frame, label, stats.CLASS_NAMES)
    doc.table(label_balance, caption="label", float_format=".4f")
    save(label_balance, "label_balance.csv")
    shown = {"label": label_balance}
    metrics["attack_share"] = float(frame[label].mean())
    if schema.family:
        family_balance = stats.balance(frame, schema.family)
        doc.table(family_balance, caption=f"family ({schema.family})", float_format=".4f")
        save(family_balance, "family_balance.csv")
        shown[f"family ({schema.family})"] = family_balance
    doc.figure(stats.balance_figure(shown, f"{name}: balance"), "balance", "label and family "
               "counts")

    # skewness
    doc.heading("Skewness before and after log1p")
    skew = stats.skewness(frame, schema.numeric)
    save(skew, "skewness.csv")
    doc.text("Sample skewness of each numeric column (pandas, bias-corrected), sorted by |skew|; "
             "log1p is applied only to columns without negative values.")
    doc.table(skew, float_format=".3f")

    # correlation
    doc.heading("Correlation")
    corr = stats.correlation(frame, schema.numeric, float(options.corr_threshold))
    corr.matrix.reset_index(names="column").to_csv(tables_dir / "correlation.csv", index=False)
    save(corr.pairs, "high_correlation_pairs.csv")
    (tables_dir / "drop_list.txt").write_text("\n".join(corr.drop) + ("\n" if corr.drop else ""))
    doc.figure(stats.correlation_heatmap(corr, f"{name}: Pearson correlation"),
               "correlation_heatmap", "Pearson correlation of the numeric columns")
    if corr.constant:
        doc.note(f"constant columns (no correlation defined, left out): "
                 f"{', '.join(corr.constant)}")
    doc.text(f"{len(corr.pairs)} pair(s) with |r| > {corr.threshold}. Drop list (walking the "
             "columns in order, drop a column highly correlated with an earlier kept one): "
             f"{', '.join(corr.drop) or 'none'}.")
    if not corr.pairs.empty:
        doc.table(corr.pairs, caption=f"pairs with |r| > {corr.threshold}", float_format=".4f")
    metrics.update(high_correlation_pairs=float(len(corr.pairs)),
                   correlation_drop_count=float(len(corr.drop)),
                   constant_columns=float(len(corr.constant)))

    two_classes = frame[label].nunique() == 2
    if not two_classes:
        doc.note("only one class in the label: the normal-vs-attack tests are skipped")

    # Welch t-tests of byte counts
    doc.heading("Byte counts: normal vs attack (Welch's t-test)")
    if two_classes and columns["bytes"]:
        welch = stats.welch_tests(frame, label, columns["bytes"])
        save(welch, "welch_ttests.csv")
        doc.text("Welch's t-test (unequal variances, scipy) on raw values and on log1p; Cohen's "
                 "d = (mean attack - mean normal) / pooled SD (0.2 small, 0.5 medium, 0.8 "
                 "large). With this many rows tiny differences are 'significant': read d.")
        doc.table(welch)
        for row in welch.itertuples():
            key = metric_safe(f"{row.column}_{row.scale}")
            metrics[f"welch_t_{key}"] = row.t
            metrics[f"welch_p_{key}"] = row.p
            metrics[f"cohen_d_{key}"] = row.cohen_d
    else:
        doc.text("No byte-count columns (analyze.columns.bytes).")

    # chi-square tests
    doc.heading("Categorical columns vs normal/attack (chi-square)")
    chi_rows = []
    for role in ROLES:
        column = columns[role]
        if column is None or not two_classes:
            doc.text(f"{role}: no column for this dataset (analyze.columns.{role}).")
            continue
        result = stats.chi_square(frame, label, column)
        chi_rows.append({"role": role, "column": column, "levels": len(result.table),
                         "chi2": result.chi2, "dof": result.dof, "p": result.p,
                         "cramers_v": result.cramers_v,
                         "cells_expected_lt_5": result.low_expected_share})
        result.table.reset_index().to_csv(tables_dir / f"contingency_{column}.csv", index=False)
        doc.table(result.table.reset_index(), caption=f"{column} x normal/attack "
                  f"(chi-square {result.chi2:,.2f}, dof {result.dof}, p = {result.p:.3g}, "
                  f"Cramér's V {result.cramers_v:.3f})")
        key = metric_safe(column)
        metrics.update({f"chi2_{key}": result.chi2, f"chi2_dof_{key}": float(result.dof),
                        f"chi2_p_{key}": result.p, f"cramers_v_{key}": result.cramers_v})
    if chi_rows:
        chi = _frame(chi_rows)
        save(chi, "chi_square_tests.csv")
        doc.table(chi, caption="summary: Pearson chi-square test of independence; Cramér's V "
                  "(0 = independent, 1 = determined) is the effect size", float_format=".6g")
        if (chi["cells_expected_lt_5"] > 0.2).any():
            doc.note("some tables have more than 20 % of cells with expected count < 5: the "
                     "chi-square approximation is rough there (many rare levels).")

    # single-feature logistic regressions
    doc.heading("Single-feature logistic regressions (statsmodels Logit)")
    logit_rows = []
    for column in columns["logit"] if two_classes else []:
        categorical = column in schema.categorical or frame[column].dtype == object
        result = stats.single_logit(frame, label, column, categorical)
        logit_rows.append(result.summary)
        doc.text(f"label ~ 1 + {column} ({result.summary['coding']}): "
                 + (f"failed: {result.summary['error']}" if "error" in result.summary else
                    f"McFadden pseudo-R² {result.summary['pseudo_r2']:.4f}, likelihood-ratio "
                    f"p = {result.summary['llr_p']:.3g}"))
        if "warnings" in result.summary:
            doc.note(f"{column}: {result.summary['warnings']}")
        if not result.coefficients.empty:
            doc.table(result.coefficients, caption=f"Logit coefficients, {column}")
            save(result.coefficients, f"logit_{metric_safe(column)}.csv")
            metrics[f"logit_pseudo_r2_{metric_safe(column)}"] = result.summary["pseudo_r2"]
    if logit_rows:
        save(_frame(logit_rows), "logit_summary.csv")
    else:
        doc.text("No columns configured (analyze.columns.logit).")

    # projections
    doc.heading("PCA and t-SNE")
    seed = int(options.random_state)
    X = stats.design_matrix(frame, schema)
    y = frame[label].to_numpy()
    sample = stats.stratified_sample(frame.reset_index(drop=True), label, int(options.pca_rows),
                                     seed).index.to_numpy()
    figure, ratio = stats.pca_scatter(X, y, sample, f"{name}: PCA ({len(sample):,} of "
                                      f"{len(frame):,} rows drawn)")
    doc.text(f"Design matrix: one-hot categoricals + standardised log1p(numeric), "
             f"{X.shape[1]} columns. PCA is fitted on all rows; explained variance "
             f"{ratio[0]:.1%} + {ratio[1]:.1%}.")
    doc.figure(figure, "pca_scatter", "PCA, coloured by label")
    metrics.update(pca_explained_variance_1=ratio[0], pca_explained_variance_2=ratio[1])
    tsne_rows = stats.stratified_sample(frame.reset_index(drop=True), label,
                                        int(options.tsne_rows), seed).index.to_numpy()
    echo(f"[analyze] t-SNE on {len(tsne_rows):,} rows ...")
    doc.figure(stats.tsne_scatter(X[tsne_rows], y[tsne_rows], float(options.tsne_perplexity),
                                  seed, f"{name}: t-SNE ({len(tsne_rows):,} rows, stratified)"),
               "tsne_scatter", "t-SNE of a stratified sample, coloured by label")
    doc.write("analysis")
    (out_dir / "summary.json").write_text(json.dumps(
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in metrics.items()},
        indent=2))
    return {k: float(v) for k, v in metrics.items() if v == v}  # NaN metrics left out


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)


def _frame_of(mapping: Mapping[str, Any]) -> Any:
    import pandas as pd

    return pd.DataFrame({"count": list(mapping.keys()), "value": list(mapping.values())})


def task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run_analysis(cfg, Path(HydraConfig.get().runtime.output_dir) / "analysis")
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


@hydra.main(config_path=ANALYZE_CONFIG_DIR, config_name="analyze")
def hydra_main(cfg: DictConfig) -> None:
    task(cfg)


def main() -> None:
    from bench.errors import run_reporting_user_errors

    run_reporting_user_errors(hydra_main)


if __name__ == "__main__":
    main()
