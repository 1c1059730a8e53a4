"""Several TEST sets per fit: NSL-KDD's extra test files (KDDTest-21 as `test21`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.data import nslkdd
from bench.data.files import find
from bench.errors import ConfigError


def _nsl_file(path: Path, attacks: list[str]) -> None:
    """A headerless NSL-KDD-style file: 41 features, attack name, difficulty."""
    lines = []
    for i, attack in enumerate(attacks):
        values = {"protocol_type": "tcp", "service": "http", "flag": "SF"}
        row = [values.get(c, str((i + k) % 3)) for k, c in enumerate(nslkdd.FEATURES)]
        lines.append(",".join([*row, attack, "20"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_extra_test_files_are_loaded_named_and_missing_ones_skipped(tmp_path: Path):
    data = tmp_path / "data"
    _nsl_file(data / "train.txt", ["normal", "neptune", "satan", "normal"])
    _nsl_file(data / "test.txt", ["normal", "smurf"])
    _nsl_file(data / "hard.txt", ["normal", "mscan", "apache2"])
    ds = nslkdd.load(data, tmp_path / "cache", train_file="train.txt", test_file="test.txt",
                     extra_test_files={"test21": "hard.txt", "testgone": "missing.txt"})
    assert list(ds.extra_tests) == ["test21"]
    assert len(ds.extra_tests["test21"]) == 3
    assert ds.extra_tests["test21"]["attack_family"].tolist() == ["normal", "Probe", "DoS"]
    assert "not scored" in ds.notes["data.testgone"]
    assert "hard.txt -> TEST21" in ds.notes["data.partition"]
    assert ds.notes["data.file.test21"] == "hard.txt"


@pytest.mark.parametrize("name", ["test", "hard", "test-21", "Test21"])
def test_extra_test_names_must_be_metric_prefixes(tmp_path: Path, name: str):
    data = tmp_path / "data"
    _nsl_file(data / "train.txt", ["normal", "neptune"])
    with pytest.raises(ConfigError, match=r"dataset\.extra_test_files"):
        nslkdd.load(data, tmp_path / "cache", train_file="train.txt", test_file=None,
                    extra_test_files={name: "train.txt"})


def test_nslkdd_configs_score_kddtest21_in_the_same_fit(compose_cfg):
    cfg, _ = compose_cfg("dataset=nslkdd", small=False)
    assert dict(cfg.dataset.extra_test_files) == {"test21": "KDDTest-21.txt"}
    cfg, _ = compose_cfg("dataset=nslkdd_test21", small=False)
    assert cfg.dataset.test_file == "KDDTest-21.txt" and cfg.dataset.extra_test_files is None


@pytest.mark.real_data
def test_real_nslkdd_has_test21_beside_kddtest_plus():
    value = os.environ.get("BENCH_DATA_DIR")
    if not value or find(value, "KDDTest-21.txt") is None:
        pytest.skip("set BENCH_DATA_DIR to a folder with the NSL-KDD files")
    from hydra import compose, initialize_config_dir

    from bench.app import CONFIG_DIR
    from bench.instantiate import build

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("config", overrides=["dataset=nslkdd"])
    ds = build(cfg.dataset)
    assert (len(ds.test), len(ds.extra_tests["test21"])) == (22_544, 11_850)
    assert ds.extra_tests["test21"]["label"].mean() == pytest.approx(0.818, abs=0.001)
