"""Shared fixtures: composing the real conf/ tree and a throw-away MLflow store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from bench.app import CONFIG_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_inherited_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MLFLOW_TRACKING_URI from outside or from an earlier test: tracking.uri defaults to
    it, and mlflow.set_tracking_uri (called by every in-process run) exports it, so a bench
    subprocess started later in the same worker would log to that earlier test's store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # set by this test's runs; monkeypatch then
    # restores a value from outside, if there was one


@pytest.fixture(autouse=True)
def _fresh_kept_data() -> None:
    """Each test loads its own data: a test that patches a loader must not be handed the
    split kept from an earlier test in the same worker (bench.data.kept)."""
    from bench.data import kept

    kept.reuse_across_cells(False)


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


@pytest.fixture
def compose_cfg(tracking_uri: str) -> Callable[..., tuple[DictConfig, dict[str, str]]]:
    """compose(overrides) -> (cfg, choices) from conf/, tracking into the temporary store.

    Small, fast defaults (2,000 synthetic rows) unless the overrides say otherwise.
    """

    def _compose(*overrides: str, small: bool = True) -> tuple[DictConfig, dict[str, str]]:
        base = [f"tracking.uri={tracking_uri}"]
        if small:
            base.append("dataset.n_rows=2000")
        with initialize_config_dir(config_dir=CONFIG_DIR):
            cfg = compose("config", overrides=[*base, *overrides], return_hydra_config=True)
        choices = dict(cfg.hydra.runtime.choices)
        with open_dict(cfg):
            del cfg["hydra"]  # as in the app, where the task's cfg has no hydra node
        return cfg, choices

    return _compose
