"""The protocol: TRAIN fits, VAL chooses, TEST is read once; leaking columns never reach a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.experiment as experiment_module
from bench.data import kept
from bench.data.audit import AuditSettings, audit
from bench.data.dataset import Dataset, Schema
from bench.data.split import BlockedSplit, Splits, StratifiedSplit
from bench.data.synthetic import generate, load
from bench.experiment import run_experiment
from bench.features.preprocess import build_preprocessor


def _shuffle_test_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    original = StratifiedSplit.__call__

    def shuffled(self: StratifiedSplit, dataset: Dataset) -> Splits:
        splits = original(self, dataset)
        test = splits.test.copy()
        rng = np.random.default_rng(123)
        test["label"] = rng.permutation(test["label"].to_numpy())
        return Splits(splits.train, splits.val, test, splits.description)

    monkeypatch.setattr(StratifiedSplit, "__call__", shuffled)


def test_shuffling_test_labels_changes_nothing_chosen(compose_cfg, monkeypatch):
    cfg, choices = compose_cfg("model.n_estimators=50")
    honest = run_experiment(cfg, choices)
    _shuffle_test_labels(monkeypatch)
    shuffled = run_experiment(cfg, choices)

    assert shuffled.threshold == honest.threshold
    val_keys = [k for k in honest.metrics if k.startswith("val_")]
    assert val_keys
    for key in val_keys:
        assert shuffled.metrics[key] == honest.metrics[key], key
    # ... while TEST metrics do see the shuffled labels (so the check above can fail)
    assert shuffled.metrics["test_roc_auc"] < honest.metrics["test_roc_auc"] - 0.1


def test_cells_sharing_data_reuse_its_split_and_match_cells_run_alone(compose_cfg, monkeypatch):
    """A grid's second cell on the same data reuses the first cell's split and audit
    (bench.data.kept) and computes exactly what it computes alone in a fresh process."""
    splits_made = []
    original = StratifiedSplit.__call__
    monkeypatch.setattr(StratifiedSplit, "__call__",
                        lambda self, data: splits_made.append(1) or original(self, data))
    kept.reuse_across_cells(True)  # as bench.app does for a multirun
    first_cfg, first_choices = compose_cfg("model=logreg")
    second_cfg, second_choices = compose_cfg("model=xgboost", "model.n_estimators=30")
    run_experiment(first_cfg, first_choices)
    in_grid = run_experiment(second_cfg, second_choices)
    assert len(splits_made) == 1  # split (and audit) once for both cells
    kept.forget()
    alone = run_experiment(second_cfg, second_choices)
    assert len(splits_made) == 2
    assert alone.threshold == in_grid.threshold
    assert alone.metrics.keys() == in_grid.metrics.keys()
    for key, value in alone.metrics.items():
        if "seconds" not in key and "rows_per_second" not in key and "latency" not in key:
            assert in_grid.metrics[key] == value, key
    # another seed is another split: nothing kept is reused
    other_cfg, other_choices = compose_cfg("model=logreg", "seed=1")
    run_experiment(other_cfg, other_choices)
    assert len(splits_made) == 3


def test_test_rows_scored_once_after_the_threshold(compose_cfg, monkeypatch):
    cfg, choices = compose_cfg("model=logreg")
    events: list[tuple[str, object]] = []
    real_score, real_build = experiment_module.anomaly_score, experiment_module.build

    def spy_score(estimator, X):
        events.append(("score", X.index.copy()))
        return real_score(estimator, X)

    def spy_build(node, **kwargs):
        built = real_build(node, **kwargs)
        if hasattr(built, "choose"):
            choose = built.choose

            def spy_choose(y, s):
                events.append(("threshold", None))
                return choose(y, s)

            built.choose = spy_choose
        return built

    captured: dict[str, pd.DataFrame] = {}
    real_audit = experiment_module.audit

    def spy_audit(schema, splits, settings):
        result = real_audit(schema, splits, settings)
        captured["test"], captured["val"] = result[1].test, result[1].val
        return result

    monkeypatch.setattr(experiment_module, "anomaly_score", spy_score)
    monkeypatch.setattr(experiment_module, "build", spy_build)
    monkeypatch.setattr(experiment_module, "audit", spy_audit)
    run_experiment(cfg, choices)

    test_index = set(captured["test"].index)
    threshold_at = [i for i, (kind, _) in enumerate(events) if kind == "threshold"]
    assert len(threshold_at) == 1
    scored_test = [idx for kind, idx in events if kind == "score" and set(idx) & test_index]
    before = [idx for kind, idx in events[: threshold_at[0]] if kind == "score"]
    assert all(not (set(idx) & test_index) for idx in before)
    rows = np.concatenate([np.asarray(idx) for idx in scored_test])
    assert len(rows) == len(test_index) and set(rows) == test_index  # each TEST row once


def test_identifier_and_label_proxy_never_reach_the_model(compose_cfg, tmp_path):
    import mlflow

    cfg, choices = compose_cfg("model=logreg")
    result = run_experiment(cfg, choices)
    mlflow.set_tracking_uri(cfg.tracking.uri)
    from bench.models.decision import load_decision

    local = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model")
    pipeline = load_decision(Path(local) / "data" / "decision").pipeline
    seen = set(pipeline["preprocess"].feature_names_in_)
    assert "id" not in seen and "attack_cat" not in seen and "label" not in seen
    assert seen == set(load(n_rows=2000).schema.features)


def test_audit_drops_an_undeclared_row_counter_and_counts_duplicates():
    frame = generate(n_rows=2000, seed=1)
    frame["row_number"] = np.arange(len(frame))
    schema = Schema(label="label", categorical=("proto",),
                    numeric=("spkts", "dpkts", "row_number"), family="attack_cat",
                    identifiers=("id",), label_proxies=("attack_cat",))
    splits = StratifiedSplit(seed=0)(Dataset("t", schema, frame))
    cleaned, deduped, report = audit(schema, splits,
                                     AuditSettings(drop_test_duplicates=True))
    assert "row_number" not in cleaned.features
    assert report.dropped_order_leaks == ["row_number"]
    assert set(report.dropped_declared) == {"id", "attack_cat"}
    # coarse features (proto, packet counts) repeat a lot: duplicates exist and are dropped
    assert report.duplicates["train_test"] > 0
    assert len(deduped.test) == len(splits.test) - report.dropped_test_duplicates
    assert report.dropped_test_duplicates > 0


def test_stratified_split_sizes_and_disjointness():
    data = load(n_rows=5000, seed=0)
    splits = StratifiedSplit(val_size=0.2, test_size=0.25, seed=3)(data)
    assert sum(splits.sizes().values()) == 5000
    assert abs(len(splits.test) - 1250) <= 1 and abs(len(splits.val) - 1000) <= 1
    index_sets = [set(f.index) for f in (splits.train, splits.val, splits.test)]
    assert not (index_sets[0] & index_sets[1] or index_sets[0] & index_sets[2]
                or index_sets[1] & index_sets[2])
    shares = [f["label"].mean() for f in (splits.train, splits.val, splits.test)]
    assert max(shares) - min(shares) < 0.01


def test_blocked_split_keeps_collection_order_per_class():
    data = load(n_rows=3000, seed=0)
    splits = BlockedSplit(val_size=0.2, test_size=0.2)(data)
    for family, rows in data.train.groupby("attack_cat"):
        positions = {name: rows.index.isin(frame.index) for name, frame in
                     (("train", splits.train), ("val", splits.val), ("test", splits.test))}
        last_train = np.flatnonzero(positions["train"]).max()
        first_val = np.flatnonzero(positions["val"]).min()
        first_test = np.flatnonzero(positions["test"]).min()
        assert last_train < first_val < first_test, family


def test_preprocessing_fits_on_train_and_survives_unknown_categories():
    frame = generate(n_rows=1000, seed=0)
    pre = build_preprocessor(["proto", "service"], ["sbytes", "dur"])
    pre.fit(frame)
    new = frame.head(3).copy()
    new.loc[:, "proto"] = "sctp"  # never seen on TRAIN
    out = pre.transform(new)
    assert out.shape == (3, pre.transform(frame.head(3)).shape[1])
    assert np.isfinite(out).all()
    # TRAIN statistics only: scaled TRAIN numeric columns have mean 0
    numeric = pre.transform(frame)[:, -2:]
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-6)


def test_synthetic_data_is_seeded_and_not_trivially_separable(compose_cfg):
    assert generate(n_rows=500, seed=4).equals(generate(n_rows=500, seed=4))
    assert not generate(n_rows=500, seed=4).equals(generate(n_rows=500, seed=5))
    cfg, choices = compose_cfg(small=False)
    result = run_experiment(cfg, choices)
    assert 0.7 < result.metrics["test_roc_auc"] < 0.99
    assert result.metrics["test_f1"] < 0.95


def _with_fixed_tests(monkeypatch: pytest.MonkeyPatch, shuffle: bool = False,
                      copied_rows: int = 0) -> None:
    """Runs get the synthetic dataset with an official TEST and an extra TEST set `test2` (index
    ranges apart, so scored rows can be told apart); `copied_rows` TRAIN rows appended to TEST."""
    real_build = experiment_module.build

    def with_tests(data: Dataset) -> Dataset:
        n = len(data.train)
        test = generate(n_rows=n // 2, seed=11)
        test = pd.concat([test, data.train.head(copied_rows)], ignore_index=True)
        test.index = test.index + 1_000_000
        extra = generate(n_rows=n // 2, seed=12)
        extra.index = extra.index + 2_000_000
        if shuffle:
            rng = np.random.default_rng(5)
            for frame in (test, extra):
                frame["label"] = rng.permutation(frame["label"].to_numpy())
        return Dataset(data.name, data.schema, data.train, test=test,
                       extra_tests={"test2": extra}, notes=data.notes)

    def build(node, **kwargs):  # the dataset the experiment builds gets the TEST sets
        built = real_build(node, **kwargs)
        return with_tests(built) if isinstance(built, Dataset) else built

    monkeypatch.setattr(experiment_module, "build", build)


@pytest.mark.parametrize("split", ["stratified", "grouped"])
def test_shuffling_labels_of_every_test_set_changes_nothing_chosen(compose_cfg, monkeypatch,
                                                                   split):
    cfg, choices = compose_cfg("model=logreg", f"split={split}")
    _with_fixed_tests(monkeypatch)
    honest = run_experiment(cfg, choices)
    _with_fixed_tests(monkeypatch, shuffle=True)
    shuffled = run_experiment(cfg, choices)

    assert shuffled.threshold == honest.threshold
    for key in [k for k in honest.metrics if k.startswith("val_")]:
        assert shuffled.metrics[key] == honest.metrics[key], key
    for name in ("test", "test2"):  # both TEST sets are measured, with their own labels
        assert shuffled.metrics[f"{name}_roc_auc"] < honest.metrics[f"{name}_roc_auc"] - 0.1


def test_every_test_set_is_scored_once_after_the_threshold(compose_cfg, monkeypatch):
    cfg, choices = compose_cfg("model=logreg")
    _with_fixed_tests(monkeypatch)
    events: list[tuple[str, object]] = []
    real_score, real_build = experiment_module.anomaly_score, experiment_module.build

    def spy_score(estimator, X):
        events.append(("score", np.asarray(X.index)))
        return real_score(estimator, X)

    def spy_build(node, **kwargs):
        built = real_build(node, **kwargs)
        if hasattr(built, "choose"):
            choose = built.choose
            built.choose = lambda y, s: (events.append(("threshold", None)), choose(y, s))[1]
        return built

    monkeypatch.setattr(experiment_module, "anomaly_score", spy_score)
    monkeypatch.setattr(experiment_module, "build", spy_build)
    result = run_experiment(cfg, choices)

    at = [i for i, (kind, _) in enumerate(events) if kind == "threshold"]
    assert len(at) == 1
    before = np.concatenate([idx for kind, idx in events[: at[0]] if kind == "score"])
    after = np.concatenate([idx for kind, idx in events[at[0]:] if kind == "score"])
    assert (before < 1_000_000).all()  # nothing of either TEST set before the threshold
    for low in (1_000_000, 2_000_000):
        rows = after[(after >= low) & (after < low + 1_000_000)]
        assert len(rows) == len(set(rows)) == 1000  # each row of each TEST set once
    assert {"test_accuracy", "test2_accuracy", "test2_balanced_accuracy"} <= set(result.metrics)


def test_duplicated_test_rows_give_dedup_metrics_and_a_tag(compose_cfg, monkeypatch, caplog):
    import logging

    import mlflow

    cfg, choices = compose_cfg("model=logreg")
    _with_fixed_tests(monkeypatch, copied_rows=100)  # 100 of 1,100 TEST rows are TRAIN rows
    with caplog.at_level(logging.INFO, logger="bench"):
        result = run_experiment(cfg, choices)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    m = result.metrics
    dedup_rows = m["test_dedup_tp"] + m["test_dedup_fp"] + m["test_dedup_tn"] + m["test_dedup_fn"]
    assert dedup_rows <= 1100 - 100  # the generator's own coarse duplicates may come on top
    assert m["test_tp"] + m["test_fp"] + m["test_tn"] + m["test_fn"] == 1100
    assert "test2_dedup_f1" not in m  # test2 shares few rows: under the 1 % share
    warning = [line for line in lines if "[audit]" in line and "TEST rows" in line]
    assert warning and "%" in warning[0]
    run = mlflow.MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    share = float(run.data.tags["audit.test_duplicate_share"])
    assert share >= 100 / 1100 - 1e-4  # the tag has 4 decimals
    assert share == pytest.approx(1 - dedup_rows / 1100, abs=1e-4)


def test_cells_differing_only_in_the_threshold_fit_once_and_match_cells_run_alone(
        compose_cfg, monkeypatch):
    """A threshold grid's second cell reuses the first cell's fitted pipeline (bench.data.kept):
    one fit, the run tagged fit_reused, and the same VAL/TEST results as the cell run alone;
    a change to the model is another fit."""
    from mlflow import MlflowClient

    fits = []
    real_fit = experiment_module.fit_model
    monkeypatch.setattr(experiment_module, "fit_model",
                        lambda *args: fits.append(1) or real_fit(*args))
    kept.reuse_across_cells(True)  # as bench.app does for a multirun
    best_cfg, best_choices = compose_cfg("model=logreg")
    quantile_cfg, quantile_choices = compose_cfg("model=logreg", "threshold=quantile")
    first = run_experiment(best_cfg, best_choices)
    in_grid = run_experiment(quantile_cfg, quantile_choices)
    assert len(fits) == 1
    assert in_grid.metrics["fit_seconds"] == first.metrics["fit_seconds"]
    tags = MlflowClient(quantile_cfg.tracking.uri).get_run(in_grid.run_id).data.tags
    assert tags.get("fit_reused") == "true"
    kept.forget()
    alone = run_experiment(quantile_cfg, quantile_choices)
    assert len(fits) == 2
    assert alone.threshold == in_grid.threshold
    for key, value in alone.metrics.items():
        if "seconds" not in key and "rows_per_second" not in key and "latency" not in key:
            assert in_grid.metrics[key] == value, key
    other_cfg, other_choices = compose_cfg("model=logreg", "threshold=quantile", "model.C=0.5")
    run_experiment(other_cfg, other_choices)  # another model: fitted again
    assert len(fits) == 3


def test_cells_differing_only_in_the_model_share_the_fitted_selector_and_match_cells_run_alone(
        compose_cfg, monkeypatch):
    """A grid over models with one selector fits the preprocessing and the selector (here a
    random forest) once (bench.data.kept): the second cell's pipeline holds the first cell's
    fitted stages, its run is tagged fit_reused_stages, and its VAL/TEST results equal the
    cell run alone; another selector setting is fitted again."""
    from mlflow import MlflowClient

    stages = {"preprocess": 0, "select": 0}
    for name, stage in (("fit_preprocess", "preprocess"), ("fit_selector", "select")):
        real = getattr(experiment_module, name)
        monkeypatch.setattr(experiment_module, name, lambda *args, real=real, stage=stage:
                            stages.__setitem__(stage, stages[stage] + 1) or real(*args))
    pipelines = []
    real_assemble = experiment_module.assemble
    monkeypatch.setattr(experiment_module, "assemble",
                        lambda *args: pipelines.append(real_assemble(*args)) or pipelines[-1])
    selector = ("selector=rf_importance", "selector.k=5", "selector.n_estimators=10")
    kept.reuse_across_cells(True)  # as bench.app does for a multirun
    first_cfg, first_choices = compose_cfg("model=logreg", *selector)
    tree_cfg, tree_choices = compose_cfg("model=decision_tree", *selector)
    first = run_experiment(first_cfg, first_choices)
    in_grid = run_experiment(tree_cfg, tree_choices)
    assert stages == {"preprocess": 1, "select": 1}
    assert pipelines[1]["select"] is pipelines[0]["select"]
    assert pipelines[1]["preprocess"] is pipelines[0]["preprocess"]
    assert pipelines[1]["model"] is not pipelines[0]["model"]
    tags = MlflowClient(tree_cfg.tracking.uri).get_run(in_grid.run_id).data.tags
    assert tags.get("fit_reused_stages") == "preprocess,select"
    assert "fit_reused" not in tags and "fit_reused_stages" not in MlflowClient(
        first_cfg.tracking.uri).get_run(first.run_id).data.tags
    kept.forget()
    alone = run_experiment(tree_cfg, tree_choices)
    assert stages == {"preprocess": 2, "select": 2}
    assert pipelines[2]["select"] is not pipelines[0]["select"]
    assert alone.threshold == in_grid.threshold
    for key, value in alone.metrics.items():
        if "seconds" not in key and "rows_per_second" not in key and "latency" not in key:
            assert in_grid.metrics[key] == value, key
    other_cfg, other_choices = compose_cfg("model=logreg", *selector[:2],
                                           "selector.n_estimators=11")
    run_experiment(other_cfg, other_choices)  # another selector: preprocessing kept, RF refitted
    assert stages == {"preprocess": 2, "select": 3}


def test_a_selector_asked_for_more_than_train_has_says_what_it_kept(caplog):
    """PCA components and top-k features beyond TRAIN's columns are capped with a warning
    (they were capped silently, while the params said 10000)."""
    import logging

    from bench.features.selectors import CappedPCA, rf_importance

    X = np.random.default_rng(0).normal(size=(60, 4))
    y = np.arange(60) % 2
    with caplog.at_level(logging.WARNING, logger="bench"):
        assert CappedPCA(n_components=50).fit(X).transform(X).shape == (60, 4)
        assert rf_importance(k=9, n_estimators=5).fit(X, y).transform(X).shape == (60, 4)
    messages = [r.getMessage() for r in caplog.records]
    assert any("selector.n_components=50" in m and "4 kept" in m for m in messages), messages
    assert any("selector.k=9" in m and "4 kept" in m for m in messages), messages
