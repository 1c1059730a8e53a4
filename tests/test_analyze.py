"""bench.analyze: the statistics on small frames, one MLflow run with its artifacts on
synthetic data, the per-dataset column choices, and the NSL-KDD chi-square figures (real data).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict
from scipy import stats as scipy_stats

from bench.analyze import stats
from bench.analyze.__main__ import ANALYZE_CONFIG_DIR, resolve_columns, run_analysis
from bench.app import CONFIG_DIR
from bench.data.dataset import Schema
from bench.errors import ConfigError


def compose_analyze(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=ANALYZE_CONFIG_DIR):
        cfg = compose("analyze", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


# -- statistics on hand-made frames ---------------------------------------------------------
def test_cohen_d_and_welch() -> None:
    attack, normal = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    pooled = np.sqrt((2 * attack.var(ddof=1) + 2 * normal.var(ddof=1)) / 4)
    assert stats.cohen_d(attack, normal) == pytest.approx((4.0 - 2.0) / pooled)
    frame = pd.DataFrame({"b": [1.0, 2.0, 3.0, 2.0, 4.0, 6.0], "label": [0, 0, 0, 1, 1, 1]})
    table = stats.welch_tests(frame, "label", ["b"])
    raw = table[table["scale"] == "raw"].iloc[0]
    expected = scipy_stats.ttest_ind(attack, normal, equal_var=False)
    assert raw["t"] == pytest.approx(expected.statistic)
    assert raw["p"] == pytest.approx(expected.pvalue)
    assert set(table["scale"]) == {"raw", "log1p"}


def test_chi_square_and_cramers_v() -> None:
    frame = pd.DataFrame({"proto": ["tcp"] * 30 + ["udp"] * 20 + ["icmp"] * 10,
                          "label": [0] * 25 + [1] * 5 + [0] * 5 + [1] * 15 + [1] * 10})
    result = stats.chi_square(frame, "label", "proto")
    observed = np.array([[0, 10], [25, 5], [5, 15]])  # icmp, tcp, udp x normal, attack
    assert result.table.to_numpy().tolist() == observed.tolist()
    expected = scipy_stats.chi2_contingency(observed)
    assert result.chi2 == pytest.approx(expected.statistic) and result.dof == 2
    n = observed.sum()
    assert result.cramers_v == pytest.approx(np.sqrt(expected.statistic / n))


def test_correlation_drop_list_is_greedy() -> None:
    """a ~ b and b ~ c above 0.9, a !~ c: dropping b keeps c (c is compared with kept a)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    b = a + rng.normal(scale=0.36, size=5000)
    c = b + rng.normal(scale=0.36, size=5000)
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "const": 1.0,
                          "e": rng.normal(size=5000)})
    corr = stats.correlation(frame, ["a", "b", "c", "const", "e"], 0.9)
    assert corr.constant == ["const"]
    assert {tuple(p) for p in corr.pairs[["a", "b"]].to_numpy()} == {("a", "b"), ("b", "c")}
    assert abs(corr.matrix.at["a", "c"]) < 0.9
    assert corr.drop == ["b"]


def test_single_logit_categorical_and_numeric() -> None:
    rng = np.random.default_rng(1)
    flag = rng.choice(["SF", "S0", "REJ"], size=2000, p=[0.6, 0.25, 0.15])
    p = np.where(flag == "SF", 0.2, np.where(flag == "S0", 0.8, 0.6))
    frame = pd.DataFrame({"flag": flag, "urgent": rng.poisson(0.1, 2000),
                          "label": (rng.random(2000) < p).astype(int)})
    result = stats.single_logit(frame, "label", "flag", categorical=True)
    assert list(result.coefficients["term"]) == ["const", "flag=REJ", "flag=S0"]
    assert result.summary["coding"] == "reference level 'SF'"
    s0 = result.coefficients.set_index("term").loc["flag=S0", "coef"]
    assert s0 == pytest.approx(np.log(4) - np.log(0.25), abs=0.35)  # log odds ratio 0.8 vs 0.2
    numeric = stats.single_logit(frame, "label", "urgent", categorical=False)
    assert numeric.summary["llr_p"] > 0.01 and "p" in numeric.coefficients


def test_columns_are_inferred_or_checked() -> None:
    schema = Schema(label="label", categorical=("protocol_type", "service", "flag"),
                    numeric=("src_bytes", "dst_bytes", "urgent"))
    columns = [*schema.features, "label"]
    inferred = resolve_columns({}, schema, columns)
    assert inferred == {"protocol": "protocol_type", "service": "service", "flag": "flag",
                        "bytes": ["src_bytes", "dst_bytes"], "logit": ["flag"]}
    with pytest.raises(ConfigError, match="proto_typo"):
        resolve_columns({"protocol": "proto_typo"}, schema, columns)
    with pytest.raises(ConfigError, match=r"\['label'\]: the label"):  # a logit of itself
        resolve_columns({"logit": ["label"]}, schema, columns)


@pytest.mark.parametrize("dataset, module", [
    ("nslkdd", "bench.data.nslkdd"), ("nslkdd_20pct", "bench.data.nslkdd"),
    ("nslkdd_test21", "bench.data.nslkdd"), ("kaggle_nid", "bench.data.nslkdd"),
    ("unsw", "bench.data.unsw"), ("snmp_mib", "bench.data.snmp_mib"),
    ("synthetic", "bench.data.synthetic"),
])
def test_per_dataset_columns_exist(dataset: str, module: str) -> None:
    """conf/analyze/columns/<dataset>.yaml names only columns that the loader produces."""
    import importlib

    if not (Path(CONFIG_DIR) / "dataset" / f"{dataset}.yaml").exists():
        pytest.skip(f"no conf/dataset/{dataset}.yaml yet")
    cfg = compose_analyze(f"dataset={dataset}")
    configured = OmegaConf.to_container(cfg.analyze.columns)
    source = importlib.import_module(module)
    known = set(getattr(source, "FEATURES", ())) | set(getattr(source, "COLUMNS", ())) | set(
        getattr(source, "COUNTERS", ())) | set(getattr(source, "NUMERIC", ())) | set(
        getattr(source, "CATEGORICAL", ()))
    named = [v for k, v in configured.items() if k in ("protocol", "service", "flag") and v]
    named += list(configured["bytes"] or []) + list(configured["logit"] or [])
    assert named and set(named) <= known, set(named) - known


# -- one MLflow run on synthetic data -------------------------------------------------------
def test_analyze_synthetic_logs_one_run_with_artifacts(tracking_uri: str, tmp_path: Path
                                                       ) -> None:
    from mlflow.tracking import MlflowClient

    cfg = compose_analyze(f"tracking.uri={tracking_uri}", "dataset.n_rows=1500",
                          "analyze.tsne_rows=300", "analyze.pca_rows=800")
    printed: list[str] = []
    result = run_analysis(cfg, tmp_path / "analysis", echo=printed.append)
    assert result.experiment == "analyze-synthetic"
    # the key statistics reach the console too, with the values that were logged
    chi = next(line for line in printed if line.startswith("[analyze] chi-square state"))
    assert f"{result.metrics['chi2_state']:,.4f}" in chi and "Cramer's V" in chi
    assert any(line.startswith("[analyze] Welch t ") for line in printed)
    out = tmp_path / "analysis"
    expected = ["analysis.md", "analysis.html", "summary.json", "plots/correlation_heatmap.png",
                "plots/pca_scatter.png", "plots/tsne_scatter.png", "plots/balance.png",
                "tables/missing.csv", "tables/skewness.csv", "tables/correlation.csv",
                "tables/high_correlation_pairs.csv", "tables/drop_list.txt",
                "tables/label_balance.csv", "tables/family_balance.csv",
                "tables/welch_ttests.csv", "tables/chi_square_tests.csv",
                "tables/contingency_proto.csv", "tables/contingency_service.csv",
                "tables/contingency_state.csv", "tables/logit_state.csv",
                "tables/logit_summary.csv"]
    for name in expected:
        assert (out / name).exists(), name
    html = (out / "analysis.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and 'src="plots/' not in html
    welch = pd.read_csv(out / "tables" / "welch_ttests.csv")
    assert {"t", "p", "cohen_d"} <= set(welch.columns)
    chi = pd.read_csv(out / "tables" / "chi_square_tests.csv")
    assert list(chi["column"]) == ["proto", "service", "state"] and chi["cramers_v"].between(
        0, 1).all()

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("analyze-synthetic")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == result.run_id and run.info.status == "FINISHED"
    assert run.data.tags["dataset"] == "synthetic"
    assert run.data.metrics["rows"] == 1200  # TRAIN+VAL: the 300 TEST rows are not read
    assert any("the 300 TEST rows it draws are left out" in line for line in printed)
    assert run.data.metrics["chi2_proto"] == pytest.approx(chi["chi2"][0])
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"analysis.md", "analysis.html", "plots", "tables", "summary.json"} <= logged


def test_analyze_reads_exactly_the_rows_bench_puts_in_train_and_val() -> None:
    """The same split and seed as `python -m bench`: no row of its TEST reaches the statistics."""
    from bench.analyze.__main__ import _train_and_val
    from bench.instantiate import build

    cfg = compose_analyze("dataset.n_rows=2000", "seed=3")
    dataset = build(cfg.dataset)
    analysed = _train_and_val(dataset, build(cfg.split))
    splits = build(cfg.split)(dataset)
    assert set(analysed.index) == set(splits.train.index) | set(splits.val.index)
    assert not set(analysed.index) & set(splits.test.index)
    assert analysed.index.is_monotonic_increasing  # source order kept


# -- the NSL-KDD figures (real data) ----------------------------------------------------------
def _kdd_train_present() -> bool:
    data_dir = os.environ.get("BENCH_DATA_DIR")
    return bool(data_dir) and any((Path(data_dir) / name).exists()
                                  for name in ("KDDTrain+.txt", "KDDTrain+.txt.gz"))


@pytest.mark.real_data
@pytest.mark.skipif(not _kdd_train_present(), reason="needs KDDTrain+.txt(.gz): set "
                    "BENCH_DATA_DIR to the folder holding the NSL-KDD files, e.g. "
                    "BENCH_DATA_DIR=/work/shared/datasets")
def test_nslkdd_chi_square_figures(tracking_uri: str, tmp_path: Path) -> None:
    """`python -m bench.analyze dataset=nslkdd` on KDDTrain+ as a whole."""
    cfg = compose_analyze(f"tracking.uri={tracking_uri}", "dataset=nslkdd",
                          "analyze.tsne_rows=300", "analyze.pca_rows=2000",
                          f"paths.cache_dir={tmp_path / 'cache'}")
    result = run_analysis(cfg, tmp_path / "analysis")
    tables = tmp_path / "analysis" / "tables"
    protocol = pd.read_csv(tables / "contingency_protocol_type.csv").set_index("protocol_type")
    assert protocol.loc["icmp"].tolist() == [1309, 6982]
    assert protocol.loc["tcp"].tolist() == [53600, 49089]
    assert protocol.loc["udp"].tolist() == [12434, 2559]
    assert result.metrics["rows"] == 125_973
    assert result.metrics["chi2_protocol_type"] == pytest.approx(10029.25, abs=0.01)
    assert result.metrics["chi2_dof_protocol_type"] == 2
    assert result.metrics["chi2_service"] == pytest.approx(93240.03, abs=0.01)
    assert result.metrics["chi2_dof_service"] == 69


@pytest.mark.slow
def test_analyze_runs_a_grid_with_benchs_grid_sweeper(tmp_path: Path) -> None:
    """`-m` goes through bench's grid sweeper (hydra/sweeper=basic), which bench.analyze
    registers as bench does; one analysis run per cell."""
    import subprocess
    import sys

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "bench.analyze", "-m", "dataset.n_rows=1000,2000",
         f"tracking.uri={store}"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("[analyze] MLflow run ") == 2


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("tsne_rows", 0, "analyze.tsne_rows=0"), ("pca_rows", -5, "analyze.pca_rows=-5"),
    ("tsne_perplexity", 0, "analyze.tsne_perplexity=0"),
    ("corr_threshold", 2, "analyze.corr_threshold=2"),
    ("random_state", "abc", "analyze.random_state='abc'"),
    ("tsne_perplexity", 5000, "must be below analyze.tsne_rows")])
def test_analyze_options_are_checked_before_anything_runs(key, value, expected):
    """tsne_rows=0 or a perplexity of 0 were tracebacks after the run existed, and
    corr_threshold=2 was taken: check_options runs before the data is loaded."""
    from bench.analyze.__main__ import check_options

    options = OmegaConf.create({"corr_threshold": 0.9, "pca_rows": 20000, "tsne_rows": 2000,
                                "tsne_perplexity": 30, "random_state": 0, key: value})
    with pytest.raises(ConfigError, match=re.escape(expected)):
        check_options(options)
