"""Every option of every config group composes, and its node instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench.app import CONFIG_DIR
from bench.instantiate import build
from bench.validate import validate_config

GROUPS = ("dataset", "split", "preprocess", "selector", "model", "threshold", "tracking",
          "paths", "experiment", "hparams_search")
OPTIONS = [(group, path.stem) for group in GROUPS
           for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))]
# thresholds that need a value to be given on the command line
NEEDS_VALUE = {("threshold", "fixed"): ["threshold.value=0.5"],
               # the search sets epsilon per trial; a sample value stands in for it here
               ("hparams_search", "epsilon_optuna"): ["threshold.epsilon=1e-10"]}


def test_every_group_has_options():
    found = {group for group, _ in OPTIONS}
    assert set(GROUPS) <= found


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(compose_cfg, group, option):
    extra = NEEDS_VALUE.get((group, option), [])
    cfg, choices = compose_cfg(f"{group}={option}", *extra, small=False)
    assert choices[group] == option
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    validate_config(cfg)  # every shipped option passes the up-front validation
    if group in ("split", "selector", "model", "threshold"):
        assert build(cfg[group]) is not None
    if group == "preprocess":
        assert build(cfg.preprocess)(categorical=["a"], numeric=["b"]) is not None
    if group == "dataset" and option in ("synthetic", "graph_traffic"):
        dataset = build(cfg.dataset)
        assert dataset.schema.label in dataset.train.columns


def test_overrides_reach_the_built_objects(compose_cfg):
    cfg, _ = compose_cfg("selector=pca", "selector.n_components=7", "model=dfnn",
                         "model.epochs=3", "seed=11")
    assert build(cfg.selector).n_components == 7
    model = build(cfg.model)
    assert model.epochs == 3 and model.random_state == 11
    assert build(cfg.split).seed == 11
