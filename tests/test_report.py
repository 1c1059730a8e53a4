"""bench.report: run grouping, leaderboard, significance, HTML output, MLflow logging.

The fast tests build a small MLflow store by logging fake runs (tags and metrics shaped like
bench.experiment's) instead of training models.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from bench import tracking
from bench.errors import ConfigError
from bench.report import stats as report_stats
from bench.report import tables
from bench.report.__main__ import main as report_main
from bench.report.build import ReportOptions, build_report
from bench.report.runs import RunSelection, finished_runs, load_runs
from bench.report.tables import leaderboard, mean_ci

MODELS = ("xgboost", "random_forest", "logreg")
FAMILIES = ("dos", "probe")


def _config_id(compose_cfg, *overrides: str, small: bool = True) -> str:
    """The config_id exactly as bench.experiment.run_experiment computes it."""
    cfg, choices = compose_cfg(*overrides, small=small)
    return tracking.config_id(OmegaConf.to_container(cfg, resolve=False), choices)


# -- 1. repetitions share the configuration id ---------------------------------------------
def test_config_id_groups_seeds_and_separates_cells(compose_cfg) -> None:
    by_seed = {_config_id(compose_cfg, f"seed={s}", "model=logreg") for s in range(5)}
    assert len(by_seed) == 1, "seed repetitions of one cell must share config_id"
    cell = by_seed.pop()
    others = {
        "model": _config_id(compose_cfg, "model=xgboost"),
        "selector": _config_id(compose_cfg, "model=logreg", "selector=pca"),
        "dataset": _config_id(compose_cfg, "model=logreg", "dataset=nslkdd", small=False),
        "hyperparameter": _config_id(compose_cfg, "model=logreg", "model.C=0.5"),
    }
    assert cell not in others.values()
    assert len(set(others.values())) == len(others)
    # tracking location is not part of what a run computes
    assert _config_id(compose_cfg, "model=logreg", "tracking.experiment=elsewhere") == cell


def test_run_experiment_tags_repetitions(compose_cfg, tracking_uri) -> None:
    """Two seeds of one cell, really run: same config_id tag, seed tags 0 and 1, and the
    per-family recall and latency metrics the report reads are logged."""
    from bench.experiment import run_experiment

    for seed in (0, 1):
        cfg, choices = compose_cfg(f"seed={seed}", "model=logreg", "dataset.n_rows=600")
        run_experiment(cfg, choices)
    runs = load_runs(tracking_uri).runs
    assert len(runs) == 2 and runs["config_id"].nunique() == 1
    assert sorted(runs["seed"]) == [0, 1]
    for metric in ("test_recall_family_flood", "test_fpr_family_normal", "fit_seconds",
                   "score_rows_per_second", "latency_per_row_median_seconds",
                   "latency_per_row_p99_seconds"):
        assert runs[f"metrics.{metric}"].notna().all(), metric


# -- a small fake store ----------------------------------------------------------------------
def _log_fake_runs(uri: str, datasets=("alpha", "beta"), models=MODELS, seeds=range(5),
                   fail=(("alpha", "logreg", 4),), all_failed_model: str | None = "svm"
                   ) -> pd.DataFrame:
    """Log FINISHED runs (dataset x model x seed) with deterministic metrics; (dataset, model,
    seed) in `fail` end FAILED with an error tag; `all_failed_model` has only FAILED runs on
    the first dataset. Returns the logged values (one row per run)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    rng = np.random.default_rng(0)
    logged = []
    for d_index, dataset in enumerate(datasets):
        experiment_id = client.create_experiment(dataset)
        plan = [(m, s) for m in models for s in seeds]
        if all_failed_model and d_index == 0:
            plan += [(all_failed_model, 0), (all_failed_model, 1)]
        for model, seed in plan:
            config_id = f"{dataset}-{model}"
            tags = {"dataset": dataset, "selector": "none", "model": model,
                    "threshold": "best_f1", "split": "stratified", "preprocess": "standard",
                    "seed": str(seed), "config_id": config_id, "git_commit": "abc"}
            run = client.create_run(experiment_id, tags=tags,
                                    run_name=f"{dataset}/none/{model}")
            run_id = run.info.run_id
            failed = (dataset, model, seed) in fail or model == all_failed_model
            if failed:
                client.set_tag(run_id, "error", "ValueError: boom\nmore lines")
                client.set_terminated(run_id, "FAILED")
                logged.append({"dataset": dataset, "model": model, "seed": seed,
                               "status": "FAILED"})
                continue
            quality = {"xgboost": 0.9, "random_forest": 0.85, "logreg": 0.8}[model]
            f1 = quality - 0.05 * d_index + 0.01 * rng.standard_normal()
            metrics = {"test_f1": f1, "test_roc_auc": f1 + 0.05, "test_pr_auc": f1 + 0.02,
                       "test_fpr": 1 - f1, "fit_seconds": 1.0 + seed,
                       "score_rows_per_second": 1000.0 * (seed + 1),
                       "latency_per_row_median_seconds": 1e-5,
                       "latency_per_row_p99_seconds": 2e-5, "threshold": 0.5,
                       "test_fpr_family_normal": 0.1 * (1 - f1),
                       **{f"test_recall_family_{f}": f1 - 0.1 * i
                          for i, f in enumerate(FAMILIES)}}
            client.log_batch(run_id, metrics=[Metric(k, float(v), 0, 0)
                                              for k, v in metrics.items()])
            client.set_terminated(run_id, "FINISHED")
            logged.append({"dataset": dataset, "model": model, "seed": seed,
                           "status": "FINISHED", **metrics})
    return pd.DataFrame(logged)


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame]:
    """Read-only for the tests that share it (the CLI test, which logs, has its own)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('fake_store') / 'mlflow.db'}"
    tracking.preflight(uri)
    return uri, _log_fake_runs(uri)


# -- 2. the leaderboard ----------------------------------------------------------------------
def test_mean_ci_matches_scipy_and_handles_small_n() -> None:
    values = [0.8, 0.82, 0.79, 0.85]
    ci = mean_ci(values)
    low, high = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    assert ci.n == 4 and ci.mean == pytest.approx(np.mean(values))
    assert (ci.low, ci.high) == pytest.approx((low, high))
    single = mean_ci([0.7])
    assert single.n == 1 and math.isnan(single.low) and single.text() == "0.7000 (n=1)"
    assert mean_ci([]).text() == "—"
    assert mean_ci([0.5, 0.5]).low == 0.5


def test_leaderboard_means_intervals_and_failures(fake_store) -> None:
    uri, logged = fake_store
    selection = load_runs(uri)
    finished, repeats = finished_runs(selection.runs)
    board = leaderboard(selection.runs, finished)
    assert repeats == 0
    done = logged[logged["status"] == "FINISHED"]
    for (dataset, model), group in done.groupby(["dataset", "model"]):
        row = board[(board["dataset"] == dataset) & (board["model"] == model)].iloc[0]
        assert row["n"] == len(group)
        for metric in ("test_f1", "test_roc_auc", "test_pr_auc", "test_fpr", "fit_seconds",
                       "score_rows_per_second"):
            values = group[metric].to_numpy()
            assert row[metric] == pytest.approx(values.mean())
            low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                         scale=stats.sem(values))
            assert (row[f"{metric}_low"], row[f"{metric}_high"]) == pytest.approx((low, high))
    one_failure = board[(board["dataset"] == "alpha") & (board["model"] == "logreg")].iloc[0]
    assert (one_failure["n"], one_failure["failed"]) == (4, 1)
    all_failed = board[board["model"] == "svm"].iloc[0]
    assert (all_failed["n"], all_failed["failed"]) == (0, 2)
    assert math.isnan(all_failed["test_f1"])


def test_reruns_of_a_cell_seed_use_the_latest(tracking_uri) -> None:
    tracking.preflight(tracking_uri)
    _log_fake_runs(tracking_uri, datasets=("alpha",), models=("logreg",), seeds=(0, 0, 1),
                   fail=(), all_failed_model=None)
    finished, repeats = finished_runs(load_runs(tracking_uri).runs)
    assert repeats == 1 and len(finished) == 2


# -- 3. the report -----------------------------------------------------------------------------
def test_report_from_small_store(fake_store, tmp_path: Path) -> None:
    uri, logged = fake_store
    result = build_report(load_runs(uri), tmp_path / "out")
    md = result.paths["markdown"].read_text()
    page = result.paths["html"].read_text()
    # leaderboard cell = mean ± CI half-width of the logged values
    values = logged[(logged["dataset"] == "alpha") & (logged["model"] == "xgboost")]["test_f1"]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                 scale=stats.sem(values))
    assert f"{values.mean():.4f} ± {(high - low) / 2:.4f}" in md
    # the failed run and the all-failed cell are shown
    assert "## Failed runs" in md and "ValueError: boom" in md
    assert re.search(r"\| alpha \| none \| svm \| alpha-svm \| 0 \| 2 \|", md)
    assert re.search(r"\| alpha \| none \| logreg \| alpha-logreg \| 4 \| 1 \|", md)
    # significance: 3 pipelines over 10 dataset x seed blocks -> Friedman + CD diagram
    # (svm never finished, logreg lacks alpha/seed 4: that block is dropped, with a note)
    assert result.friedman is not None and result.friedman.ran
    assert (tmp_path / "out" / "images" / "critical_difference.png").exists()
    assert "images/critical_difference.png" in md
    assert "dropped: alpha/seed=4" in md
    assert result.friedman.pvalue < 0.05
    # paired comparison defaults to the top two of the ranking
    assert result.paired is not None and (result.paired.a, result.paired.b) == (
        "none/xgboost", "none/random_forest")
    both = logged[logged["status"] == "FINISHED"].pivot_table(
        index=["dataset", "seed"], columns="model", values="test_f1")
    expected = stats.wilcoxon(both["xgboost"], both["random_forest"])
    assert result.paired.wilcoxon_p == pytest.approx(expected.pvalue)
    assert result.paired.n == 10 and result.paired.ci_low <= result.paired.mean_diff
    # per-family recall: mean over seeds
    family = pd.read_csv(tmp_path / "out" / "family_recall_alpha.csv")
    xgb = family[family["pipeline"] == "none/xgboost"].iloc[0]
    assert xgb["dos"] == pytest.approx(values.mean())
    assert "FPR normal" in family.columns
    # one self-contained HTML: every image inline, nothing fetched
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(https?:|//)', page)


def test_too_few_pipelines_or_blocks_is_a_note(tracking_uri, tmp_path: Path) -> None:
    tracking.preflight(tracking_uri)
    _log_fake_runs(tracking_uri, datasets=("alpha",), models=("xgboost", "logreg"),
                   seeds=range(3), fail=(), all_failed_model=None)
    result = build_report(load_runs(tracking_uri), tmp_path / "two")
    assert result.friedman is not None and not result.friedman.ran
    assert "at least 3" in result.friedman.note
    assert not (tmp_path / "two" / "images" / "critical_difference.png").exists()
    assert result.paired is not None and result.paired.ran and result.paired.n == 3
    matrix = pd.DataFrame(np.random.default_rng(0).random((3, 4)), columns=list("abcd"))
    few_blocks = report_stats.friedman_nemenyi(matrix, "test_f1")
    assert not few_blocks.ran and "at least 5 blocks" in few_blocks.note


def test_empty_selection_writes_a_report_that_says_so(fake_store, tmp_path: Path) -> None:
    uri, _ = fake_store
    result = build_report(load_runs(uri, datasets=["nope"]), tmp_path / "empty")
    assert "no bench runs matched" in result.paths["markdown"].read_text()


def test_filters_narrow_the_selection(fake_store) -> None:
    uri, _ = fake_store
    assert set(load_runs(uri, experiments=["beta"]).runs["dataset"]) == {"beta"}
    assert set(load_runs(uri, datasets=["alpha"]).runs["dataset"]) == {"alpha"}
    assert set(load_runs(uri, tags={"model": "logreg"}).runs["model"]) == {"logreg"}
    runs = load_runs(uri, filter_string="tags.model = 'xgboost'").runs
    assert set(runs["model"]) == {"xgboost"} and len(runs) == 10


def test_cli_writes_and_logs_the_report(tracking_uri: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = tracking_uri
    tracking.preflight(uri)
    _log_fake_runs(uri)
    out = tmp_path / "cli"
    code = report_main(["--tracking-uri", uri, "--output", str(out), "--compare",
                        "none/logreg", "none/xgboost", "--metric", "test_roc_auc"])
    assert code == 0
    assert (out / "report.md").exists() and (out / "report.html").exists()
    assert "none/logreg minus none/xgboost" in (out / "report.md").read_text()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bench-reports")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "report" and run.info.status == "FINISHED"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "report.html", "images"} <= names
    images = {a.path for a in client.list_artifacts(run.info.run_id, "images")}
    assert "images/critical_difference.png" in images
    # a second report does not count the first report run as a bench run
    assert report_main(["--tracking-uri", uri, "--output", str(tmp_path / "again"),
                        "--no-log"]) == 0
    assert "without bench's dataset/model tags" not in (tmp_path / "again" / "report.md"
                                                        ).read_text()


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    code = report_main(["--tracking-uri", f"sqlite:///{tmp_path / 'missing.db'}", "--no-log"])
    assert code == 2
    assert "no MLflow store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        report_main(["--help"])
    assert done.value.code == 0
    assert "--tracking-uri" in capsys.readouterr().out
    uri = f"sqlite:///{tmp_path / 'missing.db'}"  # checked before the store is read
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "old_report").mkdir()
    (tmp_path / "old_report" / "other.csv").write_text("stale")
    for args, expected in ((["--output", str(tmp_path / "a_file")], "is a file"),
                           (["--output", str(tmp_path / "a_file" / "sub")], "is a file"),
                           (["--output", str(tmp_path / "old_report")], "not empty"),
                           (["--compare", "none/logreg", "none/logreg"], "two different")):
        assert report_main(["--tracking-uri", uri, "--no-log", *args]) == 2
        error = capsys.readouterr().err
        assert error.startswith("error: ") and expected in error, error
    assert [p.name for p in (tmp_path / "old_report").iterdir()] == ["other.csv"]


def test_options_naming_things_in_the_store_are_checked_before_anything_is_written(
        tracking_uri: str, tmp_path: Path, capsys) -> None:
    """--report-experiment naming a deleted experiment failed with MLflow's traceback after
    the report folder was written (MLflow starts no run in a deleted experiment); the other
    options checked only while the report was written or logged are checked up front too."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    uri = tracking_uri
    tracking.preflight(uri)
    _log_fake_runs(uri, datasets=("alpha",), models=("logreg", "xgboost"), seeds=(0, 1),
                   fail=(), all_failed_model=None)
    client = MlflowClient(tracking_uri=uri)
    client.delete_experiment(client.create_experiment("gone"))
    out = tmp_path / "report"
    for args, expected in (
            (["--report-experiment", "gone"],
             "--report-experiment 'gone': the experiment is deleted"),
            (["--report-experiment", ""], "--report-experiment ''"),
            (["--report-experiment", "x" * 600], "exceeds the maximum length"),
            (["--select-by", "test_f1"], "--select-by test_f1: the choice is made on VAL"),
            (["--register-best", "v2"], "--register-best 'v2': MLflow reserves"),
            (["--register-best", "a b"], "--register-best 'a b'"),
            (["--register-best"], "--register-best: no finished run has the VAL metric"),
            (["--compare", "none/logreg", "none/svm"], "--compare none/svm: no finished run")):
        assert report_main(["--tracking-uri", uri, "--output", str(out), *args]) == 2, args
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and expected in errors[0], err[-2000:]
        assert "Traceback" not in err and not out.exists(), args
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert client.get_experiment_by_name("bench-reports") is None  # no report run
    assert not client.search_registered_models()


def test_an_empty_mlflow_tracking_uri_is_unset_and_a_set_one_is_named_in_errors(
        tracking_uri: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """report and register read MLFLOW_TRACKING_URI= as a folder store named --tracking-uri;
    empty (or blank) now means unset, the default store, as for bench and bench score; a
    store from the environment is named MLFLOW_TRACKING_URI in their errors."""
    from bench import secrets
    from bench.register import main as register_main

    monkeypatch.setattr(secrets, "_env_tracking_uri", None)
    monkeypatch.chdir(tmp_path)  # the default store, sqlite:///mlruns/mlflow.db, is this one
    tracking.preflight(tracking_uri)
    _log_fake_runs(tracking_uri, datasets=("alpha",), models=("logreg",), seeds=(0,), fail=(),
                   all_failed_model=None)

    def errors(code: int) -> str:
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
        return lines[0]

    for empty in ("", "  "):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)
        assert report_main(["--no-log", "--dataset", "alpha", "--output",
                            str(tmp_path / f"report{len(empty)}")]) == 0
        monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)
        line = errors(register_main(["--dataset", "alpha"]))  # read the default store
        assert "no finished run of dataset=alpha" in line and "mlruns/mlflow.db" in line
    for value, expected in (("/nowhere/store", "a folder store"),
                            (f"sqlite:///{tmp_path / 'missing.db'}", "no MLflow store there")):
        for command in (report_main, register_main):
            monkeypatch.setenv("MLFLOW_TRACKING_URI", value)
            args = ["--no-log", "--output", str(tmp_path / "never")] if command is report_main \
                else ["--dataset", "alpha"]
            line = errors(command(args))
            assert line.startswith(f"error: MLFLOW_TRACKING_URI={value}: {expected}"), line
            assert "--tracking-uri" not in line
    assert not (tmp_path / "never").exists()
    for command in (report_main, register_main):
        line = errors(command(["--tracking-uri", "", "--dataset", "alpha"]))
        assert "--tracking-uri is empty" in line


# -- 5. the HTML in a real headless browser ------------------------------------------------
_PROBE = """<script>window.addEventListener('load', function () {
  var imgs = [].slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var d = document.createElement('div'); d.id = 'img-probe';
  d.setAttribute('data-total', imgs.length); d.setAttribute('data-broken', broken.length);
  document.body.appendChild(d);
});</script>"""


def _browser() -> str | None:
    for name in (os.environ.get("CHROME_BIN"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable", "chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _images_in_browser(browser: str, page: Path, tmp_path: Path) -> tuple[int, int]:
    """(images, broken images) once the page has loaded in headless Chromium."""
    probe = tmp_path / f"probe_{page.name}"
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chrome-profile'}",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'id="img-probe" data-total="(\d+)" data-broken="(\d+)"', result.stdout)
    assert found, f"browser produced no probe result: {result.stderr[-2000:]}"
    return int(found.group(1)), int(found.group(2))


@pytest.mark.skipif(_browser() is None, reason="no headless browser found (chromium, "
                    "google-chrome, or $CHROME_BIN); on Debian: apt-get install chromium")
def test_report_html_renders_its_images_in_a_browser(fake_store, tmp_path: Path) -> None:
    uri, _ = fake_store
    browser = _browser()
    assert browser is not None
    result = build_report(load_runs(uri), tmp_path / "out", ReportOptions())
    total, broken = _images_in_browser(browser, result.paths["html"], tmp_path)
    assert total == 3 and broken == 0
    # the probe does see a broken image
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="data:image/png;base64,AAAA"></body></html>')
    assert _images_in_browser(browser, bad, tmp_path) == (1, 1)


# -- selection by VAL ------------------------------------------------------------------------
def _selection_frame() -> pd.DataFrame:
    """Two validations x three pipelines x two seeds; under `stratified` VAL prefers xgboost,
    under `grouped` the detector, while TEST favours the detector everywhere."""
    rows = []
    val = {("stratified", "xgboost"): 0.99, ("stratified", "gaussian"): 0.90,
           ("stratified", "logreg"): 0.95, ("grouped", "xgboost"): 0.70,
           ("grouped", "gaussian"): 0.85, ("grouped", "logreg"): 0.60}
    test = {"xgboost": 0.78, "gaussian": 0.91, "logreg": 0.75}
    for (split, model), value in val.items():
        for seed in (0, 1):
            rows.append({"dataset": "nslkdd", "split": split, "selector": "none",
                         "model": model, "config_id": f"{split}-{model}", "seed": seed,
                         "run_id": f"{split}-{model}-{seed}", "status": "FINISHED",
                         "metrics.val_f1": value + 0.01 * seed,
                         "metrics.test_f1": test[model] + 0.01 * seed,
                         "metrics.test_accuracy": test[model]})
    return pd.DataFrame(rows)


def test_selection_uses_val_only_and_shows_test_beside_it() -> None:
    frame = _selection_frame()
    picks = tables.select_by_val(frame, "val_f1").set_index("split")
    assert picks.loc["stratified", "model"] == "xgboost"
    assert picks.loc["grouped", "model"] == "gaussian"
    assert picks.loc["grouped", "val_f1"] == pytest.approx(0.855)
    assert picks.loc["grouped", "test_f1"] == pytest.approx(0.915)
    assert picks.loc["stratified", "best_run_id"] == "stratified-xgboost-1"
    # TEST never takes part: scrambling every TEST value leaves the choice as it was
    scrambled = frame.assign(**{"metrics.test_f1": np.random.default_rng(0).random(len(frame))})
    again = tables.select_by_val(scrambled, "val_f1").set_index("split")
    assert (again["model"] == picks["model"]).all()
    with pytest.raises(ConfigError, match="VAL"):
        tables.select_by_val(frame, "test_f1")


def test_report_shows_the_selection_and_the_literature(tmp_path: Path) -> None:
    frame = _selection_frame()
    selection = RunSelection(frame.assign(git_commit="abc", threshold="best_f1",
                                          preprocess="standard", start_time=0,
                                          experiment="nslkdd", error=None), ["nslkdd"])
    result = build_report(selection, tmp_path, ReportOptions(select_by="val_f1"))
    text = result.paths["markdown"].read_text()
    assert "Selection by VAL (val_f1)" in text
    assert "Tavallaee" in text and "Yin et al. 2017" in text  # the kept literature table
    assert set(result.selection["model"]) == {"xgboost", "gaussian"}
