"""The loaders on the real files in $BENCH_DATA_DIR (counts from ../shared/datasets/PROVENANCE.md).

Skipped unless BENCH_DATA_DIR points at a folder holding the files (plain or .gz), e.g.
`BENCH_DATA_DIR=../shared/datasets pytest -m real_data`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data import kaggle_nid, nslkdd, snmp_mib, unsw
from bench.data.cache import TableCache, load_table
from bench.data.dataset import Dataset
from bench.data.files import DataWarning, find, read_table

pytestmark = pytest.mark.real_data

SKIP_REASON = ("set BENCH_DATA_DIR=/path/to/datasets (e.g. ../shared/datasets) to run "
               "real-data tests")


def data_dir(*names: str) -> Path:
    """$BENCH_DATA_DIR, or skip the test when it is unset or lacks one of `names`."""
    value = os.environ.get("BENCH_DATA_DIR")
    if not value:
        pytest.skip(f"BENCH_DATA_DIR is not set: {SKIP_REASON}")
    missing = [n for n in names if find(value, n) is None]
    if missing:
        pytest.skip(f"{missing} not in BENCH_DATA_DIR={value}: {SKIP_REASON}")
    return Path(value)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-cache")


def _strict(load, *args, **kwargs) -> Dataset:
    """Load with verify="strict", failing on any DataWarning (checksum or swapped name)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return load(*args, verify="strict", **kwargs)


def test_nslkdd_official_files(cache_dir: Path) -> None:
    data = data_dir("KDDTrain+.txt", "KDDTest+.txt")
    ds = _strict(nslkdd.load, data, cache_dir)
    assert (len(ds.train), len(ds.test)) == (125_973, 22_544)
    assert ds.train["attack"].value_counts()[["normal", "neptune"]].tolist() == [67_343, 41_214]
    assert ds.test["attack"].value_counts()[["normal", "neptune"]].tolist() == [9_711, 4_657]
    assert ds.train["label"].value_counts().to_dict() == {0: 67_343, 1: 58_630}
    assert ds.test["label"].value_counts().to_dict() == {0: 9_711, 1: 12_833}
    for frame in (ds.train, ds.test):
        assert frame["attack_family"].notna().all()
        assert set(frame["attack_family"]) == {"normal", "DoS", "Probe", "R2L", "U2R"}
        assert frame["difficulty"].between(0, 21).all()
    for column in ("difficulty", "attack", "attack_family"):
        assert column not in ds.schema.features
    assert ds.notes["data.verify"].startswith("ok")


@pytest.mark.parametrize("name", ["KDDTrain+.txt", "KDDTest+.txt", "KDDTest-21.txt",
                                  "KDDTrain+_20Percent.txt"])
def test_nslkdd_every_attack_name_is_mapped(name: str) -> None:
    path = find(data_dir(name), name)
    frame = read_table(path, nslkdd.SPEC)  # raises DataError on an unmapped name
    unmapped = set(frame["attack"]) - set(nslkdd.ATTACK_FAMILY)
    assert not unmapped


def test_nslkdd_variants(cache_dir: Path) -> None:
    data = data_dir("KDDTrain+.txt", "KDDTest-21.txt", "KDDTrain+_20Percent.txt",
                    "KDDTest+.txt")
    test21 = _strict(nslkdd.load, data, cache_dir, test_file="KDDTest-21.txt")
    assert len(test21.test) == 11_850
    pct = _strict(nslkdd.load, data, cache_dir, train_file="KDDTrain+_20Percent.txt")
    assert len(pct.train) == 25_192
    assert pct.train["label"].value_counts().to_dict() == {0: 13_449, 1: 11_743}


def test_unsw_testing_partition(cache_dir: Path) -> None:
    data = data_dir("UNSW_NB15_testing-set.csv")
    ds = _strict(unsw.load, data, cache_dir)
    has_training = find(data, "UNSW_NB15_training-set.csv") is not None
    frame = ds.test if has_training else ds.train
    assert len(frame) == 82_332
    assert frame["label"].value_counts().to_dict() == {1: 45_332, 0: 37_000}
    assert frame["attack_cat"].value_counts().to_dict() == {
        "Normal": 37_000, "Generic": 18_871, "Exploits": 11_132, "Fuzzers": 6_062,
        "DoS": 4_089, "Reconnaissance": 3_496, "Analysis": 677, "Backdoor": 583,
        "Shellcode": 378, "Worms": 44}
    assert frame.columns[0] == "id"  # BOM stripped
    assert frame["id"].is_monotonic_increasing  # file order kept
    assert "id" not in ds.schema.features and "attack_cat" not in ds.schema.features
    assert len(ds.schema.features) == 42
    if has_training:
        assert len(ds.train) == 175_341
    else:
        assert ds.test is None and "only the testing partition" in ds.notes["data.resplit"]


def test_unsw_kaggle_name_is_recognised(tmp_path: Path) -> None:
    data = data_dir("UNSW_NB15_testing-set.csv")
    source = find(data, "UNSW_NB15_testing-set.csv")
    mirror = tmp_path / ("UNSW_NB15_training-set.csv" + source.name[len(
        "UNSW_NB15_testing-set.csv"):])
    mirror.symlink_to(source.resolve())
    with pytest.warns(DataWarning, match="testing partition.*swap"):
        ds = unsw.load(tmp_path, tmp_path / "cache", verify="strict", test_file=None)
    assert len(ds.train) == 82_332 and ds.test is None


def test_kaggle_nid_matches_nslkdd_20_percent(cache_dir: Path) -> None:
    data = data_dir("Train_data.csv", "Test_data.csv", "KDDTrain+_20Percent.txt",
                    "KDDTest+.txt")
    ds = _strict(kaggle_nid.load, data, cache_dir)
    assert len(ds.train) == 25_192 and len(ds.unlabelled) == 22_544 and ds.test is None
    assert ds.train["class"].value_counts().to_dict() == {"normal": 13_449, "anomaly": 11_743}
    assert "class" not in ds.schema.features
    pct = nslkdd.load(data, cache_dir, train_file="KDDTrain+_20Percent.txt")
    for ours, theirs in ((ds.train, pct.train), (ds.unlabelled, pct.test)):
        for column in nslkdd.FEATURES:
            if column in nslkdd.NUMERIC:
                assert np.allclose(ours[column], theirs[column]), column
            else:
                assert (ours[column] == theirs[column]).all(), column
    assert (ds.train["label"].to_numpy() == pct.train["label"].to_numpy()).all()


def test_snmp_mib(cache_dir: Path) -> None:
    data = data_dir("SNMP-MIB.csv")
    ds = _strict(snmp_mib.load, data, cache_dir)
    assert len(ds.train) == 4_998
    assert ds.train["class"].value_counts().to_dict() == {
        "tcp-syn": 960, "slowloris": 780, "udp-flood": 773, "icmp-echo": 632, "normal": 600,
        "httpFlood": 573, "slowpost": 480, "bruteForce": 200}
    assert ds.train["label"].value_counts().to_dict() == {1: 4_398, 0: 600}
    assert "tcp?ActiveOpens" in ds.schema.features and len(ds.schema.features) == 34


def test_cache_round_trip_on_real_file(tmp_path: Path) -> None:
    path = find(data_dir("KDDTest+.txt"), "KDDTest+.txt")
    cache = TableCache(tmp_path)
    cold = load_table(path, nslkdd.SPEC, cache, "real.v1")
    warm = load_table(path, nslkdd.SPEC, cache, "real.v1")
    assert not cold.cache_hit and warm.cache_hit
    pd.testing.assert_frame_equal(warm.frame, cold.frame)
    assert warm.digest == cold.digest
