"""The leak guard: every form of a row counter is caught, honest features are not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench.data.audit import AuditSettings, audit, order_correlation, order_leaks
from bench.data.dataset import Dataset
from bench.data.split import Splits, StratifiedSplit
from bench.data.synthetic import load
from bench.errors import ConfigError, DataError

N = 6000
DISGUISE = "dur"  # an innocent UNSW feature name (flow duration) that the counter replaces


def _counters(n: int) -> dict[str, np.ndarray]:
    """Each counter form the old guard (distinct integers in order) let through."""
    rng = np.random.default_rng(7)
    half = n // 2
    return {
        "float counter": np.arange(n, dtype=float) * 1.0,
        "float epoch timestamp": 1.42e9 + np.cumsum(rng.exponential(0.05, n)),
        "integer timestamp with ties": (1_421_927_414 + np.arange(n) // 7).astype("int64"),
        "counter with +-3 jitter": np.arange(n) + rng.integers(-3, 4, n),
        "descending counter": np.arange(n)[::-1].astype(float),
        "two concatenated counters": np.concatenate([np.arange(half), np.arange(n - half)]),
        "two concatenated counters, unequal": np.concatenate(
            [np.arange(n // 4), np.arange(n - n // 4)]).astype(float),
    }


def _planted(values: np.ndarray) -> Dataset:
    """The UNSW-shaped synthetic dataset with `values` (in row order) as its DISGUISE column."""
    data = load(n_rows=len(values), seed=3)
    frame = data.train.copy()
    frame[DISGUISE] = values
    return replace(data, train=frame)


@pytest.mark.parametrize("form", list(_counters(N)))
def test_every_counter_form_is_flagged_and_dropped(form):
    data = _planted(_counters(N)[form])
    splits = StratifiedSplit(seed=0)(data)  # shuffled: only the kept row index knows the order
    schema, _, report = audit(data.schema, splits)
    assert DISGUISE in report.order_leaks, form
    assert DISGUISE in report.dropped_order_leaks and DISGUISE not in schema.features
    assert any(DISGUISE in w and "row order" in w for w in report.warnings)


def test_a_counter_restarting_in_each_source_file_is_flagged_within_the_file():
    data = _planted(_counters(N)["two concatenated counters"])
    frame = data.train.assign(source_file=np.where(np.arange(N) < N // 2, "a.csv", "b.csv"))
    features = [DISGUISE, "sbytes"]
    # blocks=1: neither the whole frame nor blocks would see it; the per-file check does
    whole = order_leaks(frame.drop(columns="source_file"), features, cut=0.9, blocks=1)
    found = order_leaks(frame, features, cut=0.9, blocks=1)
    assert DISGUISE not in whole
    assert found[DISGUISE]["where"].startswith("within file")
    assert "sbytes" not in found


def test_a_random_permutation_and_the_real_features_are_not_flagged():
    data = _planted(np.random.default_rng(0).permutation(N).astype(float))
    _, _, report = audit(data.schema, StratifiedSplit(seed=0)(data))
    assert report.order_leaks == {} and report.dropped_order_leaks == []
    default = load(seed=0)  # the default run's dataset: no false alarm
    _, _, report = audit(default.schema, StratifiedSplit(seed=0)(default))
    assert report.order_leaks == {} and report.single_feature_auc == {}
    assert not report.warnings


def test_warn_mode_keeps_the_feature_and_says_so():
    data = _planted(_counters(N)["float counter"])
    schema, _, report = audit(data.schema, StratifiedSplit(seed=0)(data),
                              AuditSettings(on_order_leak="warn"))
    assert DISGUISE in report.order_leaks and DISGUISE in schema.features
    assert report.dropped_order_leaks == []
    assert report.to_dict()["settings"]["on_order_leak"] == "warn"


def test_a_single_feature_separating_the_classes_is_a_warning_not_a_drop():
    """Strong but imperfect (VAL ROC-AUC ~0.997, below audit.label_copy_auc): kept, warned."""
    data = load(n_rows=N, seed=3)
    rng = np.random.default_rng(1)
    frame = data.train.assign(sinpkt=data.train["label"] * 4 + rng.normal(0, 1, N))
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)  # no row order
    schema = replace(data.schema, numeric=(*data.schema.numeric, "sinpkt"))
    data = Dataset("t", schema, frame)
    cleaned, _, report = audit(schema, StratifiedSplit(seed=0)(data))
    assert "sinpkt" in cleaned.features  # kept
    assert report.single_feature_auc["sinpkt"] > 0.99
    assert list(report.single_feature_auc) == ["sinpkt"]
    assert any("'sinpkt'" in w and "ROC-AUC" in w for w in report.warnings)
    assert report.metrics()["audit_single_feature_separators"] == 1.0
    assert report.label_copies == {} and report.dropped_label_copies == []


def test_test_rows_duplicating_train_are_counted_per_test_set_and_masked():
    data = load(n_rows=4000, seed=0)
    splits = StratifiedSplit(seed=0)(data)
    copied = splits.train.head(50)
    test = pd.concat([splits.test, copied], ignore_index=True)
    extra = load(n_rows=1000, seed=9).train
    splits = Splits(splits.train, splits.val, test, "t", extra_tests={"test2": extra})
    _, out, report = audit(data.schema, splits, AuditSettings(test_duplicate_share=0.01))
    shared = report.test_duplicate_rows["test"]
    assert shared[-50:].all()  # the planted copies are found
    assert report.test_duplicate_share["test"] == pytest.approx(shared.mean(), abs=1e-6)
    assert report.test_duplicate_share["test"] > 0.01
    assert any("of TEST rows" in w and "%" in w for w in report.warnings)
    assert set(report.test_duplicate_share) == {"test", "test2"}
    assert "test_duplicate_rows" not in report.to_dict()
    assert len(out.test) == len(test)  # reported, not dropped
    _, dropped, report = audit(data.schema, splits, AuditSettings(drop_test_duplicates=True))
    assert len(dropped.test) == len(test) - int(shared.sum())
    assert set(dropped.extra_tests) == {"test2"}


def test_order_correlation_agrees_with_scipy_spearman_per_column():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({
        "counter": np.arange(n) + rng.normal(0, 40, n),   # follows row order, with noise
        "noise": rng.normal(size=n),
        "ties": rng.integers(0, 3, n),                    # many ties: average ranks
        "falling": -np.arange(n, dtype=float),            # rho = -1, reported as |rho| = 1
        "constant": np.ones(n),                            # undefined rho, reported as 0
        "label": rng.choice(["tcp", "udp", "icmp"], n),    # non-numeric, ranked as text
    })
    expected = [abs(spearmanr(np.arange(n), frame[c].rank()).statistic) for c in frame]
    expected[4] = 0.0
    assert order_correlation(frame) == pytest.approx(expected, abs=1e-12)
    assert order_correlation(frame)[0] > 0.9 and order_correlation(frame)[3] == pytest.approx(1)


def test_a_counter_with_missing_values_is_still_flagged():
    """A gap in a counter (NaN every 50th row) must not hide it: missing values are left out
    of the correlation rather than making it undefined (the guard used to report 0)."""
    counter = np.arange(N, dtype=float)
    counter[::50] = np.nan
    data = _planted(counter)
    _, _, report = audit(data.schema, StratifiedSplit(seed=0)(data))
    assert report.order_leaks[DISGUISE]["where"] == "whole frame"
    assert report.order_leaks[DISGUISE]["rho"] == pytest.approx(1.0)


def test_order_is_read_from_the_index_and_mixed_types_do_not_break_the_guard():
    rng = np.random.default_rng(5)
    n = 2000
    frame = pd.DataFrame({
        "counter": np.arange(n, dtype=float),
        "noise": rng.normal(size=n),
        "mixed": pd.Series([str(i) if i % 2 else i for i in range(n)], dtype=object),
    })
    in_order = order_leaks(frame, list(frame.columns), cut=0.9)
    shuffled = frame.sample(frac=1.0, random_state=1)  # rows out of order, index kept
    assert order_leaks(shuffled, list(frame.columns), cut=0.9) == in_order
    assert set(in_order) == {"counter"}
    reset = shuffled.reset_index(drop=True)  # the order is lost with the index
    assert "counter" not in order_leaks(reset, list(frame.columns), cut=0.9)


def test_single_feature_auc_is_roc_auc_score_per_feature():
    from sklearn.metrics import roc_auc_score

    from bench.data.audit import single_feature_auc

    data = load(n_rows=4000, seed=2)
    splits = StratifiedSplit(seed=0)(data)
    aucs = single_feature_auc(splits.train, splits.val, data.schema)
    y_val = splits.val[data.schema.label]
    for column in data.schema.numeric:
        auc = roc_auc_score(y_val, splits.val[column].astype(float))
        assert aucs[column] == pytest.approx(max(auc, 1 - auc), abs=1e-12), column
    for column in data.schema.categorical:
        rate = splits.train.groupby(column, observed=True)[data.schema.label].mean()
        score = splits.val[column].map(rate).astype(float).fillna(
            splits.train[data.schema.label].mean())
        auc = roc_auc_score(y_val, score)
        assert aucs[column] == pytest.approx(max(auc, 1 - auc), abs=1e-12), column


def test_a_feature_whose_missingness_gives_the_label_away_is_a_separator():
    data = load(n_rows=N, seed=3)
    frame = data.train.assign(sinpkt=np.where(data.train["label"] == 1, np.nan, 1.0))
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    schema = replace(data.schema, numeric=(*data.schema.numeric, "sinpkt"))
    _, _, report = audit(schema, StratifiedSplit(seed=0)(Dataset("t", schema, frame)))
    assert report.single_feature_auc == {"sinpkt": 1.0}


@pytest.mark.parametrize("key, value", [("on_order_leak", "delete"),
                                        ("order_correlation_cut", 1.5),
                                        ("order_blocks", 0)])
def test_bad_audit_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"audit\.{key}"):
        AuditSettings.from_config({key: value})


@pytest.fixture(scope="module")
def unsw_data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """UNSW-NB15's testing partition (82,332 rows in file order), loaded once."""
    import os

    from bench.data import unsw
    from bench.data.files import find

    folder = os.environ.get("BENCH_DATA_DIR")
    if not folder or find(folder, "UNSW_NB15_testing-set.csv") is None:
        pytest.skip("set BENCH_DATA_DIR to a folder with UNSW_NB15_testing-set.csv")
    return unsw.load(folder, tmp_path_factory.mktemp("unsw-cache"))


@pytest.mark.real_data
@pytest.mark.parametrize("form", list(_counters(N)))
def test_every_counter_form_is_flagged_in_the_real_unsw_file(form, unsw_data):
    """The same forms planted in the real UNSW file, under the name of one of its features."""
    frame = unsw_data.train.copy()
    frame[DISGUISE] = _counters(len(frame))[form]
    splits = StratifiedSplit(seed=0)(replace(unsw_data, train=frame))
    schema, _, report = audit(unsw_data.schema, splits)
    assert list(report.order_leaks) == [DISGUISE], form  # and nothing else of UNSW
    assert DISGUISE not in schema.features


# ------------------------------------------------------------------------------------------
# The label in other words: a feature that alone separates the classes on TRAIN and on VAL.


def _label_forms(label: np.ndarray, attack_cat: np.ndarray) -> dict[str, tuple[object, bool]]:
    """Each way a column can be the label in other words: (values, categorical?)."""
    order = np.argsort(np.argsort(label, kind="stable"))  # numbered normal rows first
    return {
        "0/1 copy": (label.astype("int64"), False),
        "affine copy -3 * label + 7": (-3.0 * label + 7, False),
        "the label as text": (np.where(label == 1, "attack", "normal"), True),
        "attack category under another name": (np.where(label == 1, attack_cat, "none"), True),
        "attack type with '-' for normal rows": (np.where(label == 1, attack_cat, "-"), True),
        "connection number of a class-ordered capture, shuffled": (order, False),
        "missing exactly on attack rows": (np.where(label == 1, np.nan, 1.0), False),
        # sklearn's LabelEncoder on the category: 'Normal' gets a code between the attacks', so
        # the raw value does not order the classes; scored per code it is pure
        "attack category label-encoded": (
            pd.factorize(np.where(label == 1, attack_cat, "Normal"), sort=True)[0], False),
    }


def _with_column(name: str, values: object, categorical: bool, n: int = 3000,
                 seed: int = 3) -> Dataset:
    """The synthetic dataset, rows shuffled (no row order), plus `name` = `values`."""
    data = load(n_rows=n, seed=seed)
    frame = data.train.assign(**{name: values})
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    key = "categorical" if categorical else "numeric"
    schema = replace(data.schema, **{key: (*getattr(data.schema, key), name)})
    return Dataset("t", schema, frame)


@pytest.mark.parametrize("form", list(_label_forms(np.zeros(1), np.zeros(1))))
def test_the_label_in_other_words_is_dropped_and_named(form):
    base = load(n_rows=3000, seed=3).train
    values, categorical = _label_forms(base["label"].to_numpy(),
                                       base["attack_cat"].astype(str).to_numpy())[form]
    data = _with_column("kind", values, categorical)
    schema, _, report = audit(data.schema, StratifiedSplit(seed=0)(data))
    assert "kind" not in schema.features, form
    assert list(report.label_copies) == ["kind"] and report.dropped_label_copies == ["kind"]
    assert report.label_copies["kind"]["train_auc"] >= 0.999
    assert report.label_copies["kind"]["val_auc"] >= 0.999
    (warning,) = [w for w in report.warnings if "'kind'" in w]
    assert "is the label in other words" in warning and ": dropped." in warning
    assert "audit.label_copy_auc=0.999" in warning
    assert report.metrics()["audit_dropped_label_copies"] == 1.0
    assert report.to_dict()["dropped_label_copies"] == ["kind"]
    assert "the label in other words: ['kind'] (dropped: ['kind'])" in report.summary_lines()
    assert len(schema.features) == len(data.schema.features) - 1  # nothing else went


def test_warn_mode_keeps_a_label_copy_and_says_so():
    data = _with_column("kind", np.where(load(n_rows=3000, seed=3).train["label"] == 1,
                                         "attack", "normal"), categorical=True)
    schema, _, report = audit(data.schema, StratifiedSplit(seed=0)(data),
                              AuditSettings(on_label_copy="warn"))
    assert "kind" in schema.features and "kind" in report.label_copies
    assert report.dropped_label_copies == []
    assert any("'kind' is the label in other words" in w and "on_label_copy=warn" in w
               for w in report.warnings)


def test_a_separator_on_one_partition_or_in_opposite_directions_is_not_a_label_copy():
    """VAL alone is the warn-only band; TRAIN and VAL must agree in direction."""
    data = load(n_rows=3000, seed=3)
    splits = StratifiedSplit(seed=0)(data)
    rng = np.random.default_rng(0)
    train, val = splits.train.copy(), splits.val.copy()
    train["only_val"] = rng.normal(size=len(train))  # no signal on TRAIN ...
    val["only_val"] = val["label"].to_numpy() * 5.0  # ... perfect on VAL
    train["flipped"] = train["label"].to_numpy() * 1.0  # attacks high on TRAIN ...
    val["flipped"] = 1.0 - val["label"].to_numpy()  # ... low on VAL
    test = splits.test.assign(only_val=0.0, flipped=0.0)
    schema = replace(data.schema, numeric=(*data.schema.numeric, "only_val", "flipped"))
    cleaned, _, report = audit(schema, replace(splits, train=train, val=val, test=test))
    assert report.label_copies == {}
    assert {"only_val", "flipped"} <= set(cleaned.features)
    assert report.single_feature_auc == {"only_val": 1.0, "flipped": 1.0}  # warned
    assert sum("alone separates the classes on VAL" in w for w in report.warnings) == 2


def test_only_label_copies_left_is_one_error_naming_the_option():
    data = load(n_rows=2000, seed=3)
    frame = data.train.assign(kind=data.train["label"] * 2)
    schema = replace(data.schema, categorical=(), numeric=("kind",))
    with pytest.raises(DataError, match=r"as the label in other words \(kind\).*"
                                        r"audit\.on_label_copy=warn"):
        audit(schema, StratifiedSplit(seed=0)(Dataset("t", schema, frame)))


@pytest.mark.parametrize("key, value", [("on_label_copy", "delete"), ("label_copy_auc", 0.5),
                                        ("label_copy_auc", 1.01)])
def test_bad_label_copy_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"audit\.{key}"):
        AuditSettings.from_config({key: value})


def test_the_config_declares_the_label_copy_settings():
    from omegaconf import OmegaConf

    from bench.app import CONFIG_DIR

    node = OmegaConf.load(f"{CONFIG_DIR}/config.yaml").audit
    assert AuditSettings.from_config(node) == AuditSettings()  # defaults agree with the YAML
    assert (node.label_copy_auc, node.on_label_copy) == (0.999, "drop")


@pytest.mark.real_data
def test_no_real_unsw_feature_is_a_label_copy(unsw_data):
    """Honest features are kept: UNSW's best single feature reaches VAL ROC-AUC ~0.80."""
    schema, _, report = audit(unsw_data.schema, StratifiedSplit(seed=0)(unsw_data))
    assert report.label_copies == {} and report.single_feature_auc == {}
    assert len(schema.features) == len(unsw_data.schema.features) - len(report.order_leaks)


def test_a_counter_restarting_in_many_small_files_is_flagged_pooled():
    """60 files of 100 rows (~80 TRAIN+VAL rows each, under MIN_ROWS): no file is judged alone
    and the blocks span many files, so only the pooled within-file ranks see the counter."""
    files, per_file = 60, 100
    data = _planted(np.tile(np.arange(per_file), files).astype(float))
    frame = data.train.assign(source_file=np.repeat([f"f{i}.csv" for i in range(files)],
                                                    per_file))
    schema = replace(data.schema, metadata=(*data.schema.metadata, "source_file"))
    cleaned, _, report = audit(schema, StratifiedSplit(seed=0)(Dataset("t", schema, frame)))
    assert report.order_leaks[DISGUISE]["where"] == "within each of 60 files under 100 rows, pooled"
    assert DISGUISE not in cleaned.features
    assert list(report.order_leaks) == [DISGUISE]  # the honest features are not flagged


def test_a_label_copy_with_a_few_values_flipped_is_a_warning():
    """2 % flipped: VAL ROC-AUC ~0.98, under the drop cut and above the default warning cut."""
    base = load(n_rows=N, seed=3).train["label"].to_numpy()
    flipped = np.random.default_rng(0).random(N) < 0.02
    data = _with_column("verdict_copy", np.where(flipped, 1 - base, base).astype(float),
                        categorical=False, n=N)
    cleaned, _, report = audit(data.schema, StratifiedSplit(seed=0)(data))
    assert "verdict_copy" in cleaned.features and report.label_copies == {}
    assert 0.975 < report.single_feature_auc["verdict_copy"] < 0.999
    assert any("'verdict_copy' alone separates the classes" in w for w in report.warnings)


def test_val_rows_duplicating_train_are_warned_and_dropped_on_request():
    data = load(n_rows=4000, seed=0)
    splits = StratifiedSplit(seed=0)(data)
    copied = splits.train.head(100)  # 100 of ~900 VAL rows: memorised TRAIN rows
    splits = replace(splits, val=pd.concat([splits.val, copied]))
    _, kept, report = audit(data.schema, splits)
    assert report.val_duplicate_share == pytest.approx(100 / len(splits.val), abs=1e-3)
    assert report.metrics()["audit_val_duplicate_share"] == report.val_duplicate_share
    assert any("of VAL rows" in w and "audit.drop_val_duplicates=true" in w
               for w in report.warnings)
    assert len(kept.val) == len(splits.val)  # reported, not dropped
    _, dropped, report = audit(data.schema, splits, AuditSettings(drop_val_duplicates=True))
    assert report.dropped_val_duplicates >= 100
    assert len(dropped.val) == len(splits.val) - report.dropped_val_duplicates
    features = list(dropped.val.columns.drop("label"))
    assert not dropped.val[features].merge(splits.train[features]).shape[0]
    assert not any("of VAL rows" in w for w in report.warnings)


def test_a_val_left_with_one_class_by_dropping_duplicates_is_an_error():
    data = load(n_rows=2000, seed=0)
    splits = StratifiedSplit(seed=0)(data)
    normal_copies = splits.train[splits.train["label"] == 0].head(50)
    # every normal VAL row copies TRAIN
    val = pd.concat([splits.val[splits.val["label"] == 1], normal_copies])
    with pytest.raises(DataError, match=r"audit\.drop_val_duplicates=true left VAL with one class"):
        audit(data.schema, replace(splits, val=val), AuditSettings(drop_val_duplicates=True))
