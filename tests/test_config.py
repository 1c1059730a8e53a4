"""Every option of every config group composes, and its node instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench.app import CONFIG_DIR
from bench.errors import ConfigError
from bench.instantiate import build
from bench.validate import validate_config

GROUPS = ("dataset", "split", "preprocess", "selector", "model", "threshold", "tracking",
          "paths", "experiment", "hparams_search")
OPTIONS = [(group, path.stem) for group in GROUPS
           for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))]
# thresholds that need a value to be given on the command line
NEEDS_VALUE = {("threshold", "fixed"): ["threshold.value=0.5"],
               ("dataset", "table"): ["dataset.path=flows.csv", "dataset.label=Label",
                                      "dataset.normal=[BENIGN]"],
               # the search sets epsilon per trial; a sample value stands in for it here
               ("hparams_search", "epsilon_optuna"): ["threshold.epsilon=1e-10"]}


def test_every_group_has_options():
    found = {group for group, _ in OPTIONS}
    assert set(GROUPS) <= found


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(compose_cfg, group, option, tmp_path):
    extra = NEEDS_VALUE.get((group, option), [])
    cfg, choices = compose_cfg(f"{group}={option}", *extra, small=False)
    assert choices[group] == option
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if not cfg.dataset._target_.endswith(("synthetic.load", "graph_traffic.load")):
        _stand_in_files(cfg, tmp_path / "data")  # the files it names must exist
    validate_config(cfg)  # every shipped option passes the up-front validation
    if group in ("split", "selector", "model", "threshold"):
        assert build(cfg[group]) is not None
    if group == "preprocess":
        assert build(cfg.preprocess)(categorical=["a"], numeric=["b"]) is not None
    if group == "dataset" and option in ("synthetic", "graph_traffic"):
        dataset = build(cfg.dataset)
        assert dataset.schema.label in dataset.train.columns


def _stand_in_files(cfg, folder: Path) -> None:
    """Empty files where a dataset's files point (validation checks that they exist, and
    reads none), and paths.data_dir set to their folder."""
    for key in ("path", "test_path", "train_file", "test_file", "unlabelled_file"):
        names = cfg.dataset.get(key) or []
        for name in [names] if isinstance(names, str) else names:
            file = folder / str(name).replace("*", "stand-in")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch()
    cfg.paths.data_dir = str(folder)


def test_overrides_reach_the_built_objects(compose_cfg):
    cfg, _ = compose_cfg("selector=pca", "selector.n_components=7", "model=dfnn",
                         "model.epochs=3", "seed=11")
    assert build(cfg.selector).n_components == 7
    model = build(cfg.model)
    assert model.epochs == 3 and model.random_state == 11
    assert build(cfg.split).seed == 11


def _grid_sweeper():
    """bench's `hydra/sweeper=basic` over a real config loader of conf/, with a list of the
    overrides of every cell it composes."""
    from hydra._internal.callbacks import Callbacks
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import HydraContext, RunMode

    from bench.launchers.grid_sweeper import BasicSweeper

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(CONFIG_DIR))
    composed: list[list[str]] = []
    compose = loader.load_sweep_config

    def recording(master_config, sweep_overrides):
        composed.append(list(sweep_overrides))
        return compose(master_config, sweep_overrides)

    loader.load_sweep_config = recording  # the real compose, recorded
    sweeper = BasicSweeper(max_batch_size=None, params=None)
    sweeper.config = loader.load_configuration("config", overrides=[],
                                               run_mode=RunMode.MULTIRUN)
    sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=Callbacks())
    return sweeper, composed


def test_the_grid_sweeper_is_hydras_default_and_composes_one_cell_per_group_choice():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("config", return_hydra_config=True)
    assert cfg.hydra.sweeper._target_ == "bench.launchers.grid_sweeper.BasicSweeper"
    sweeper, composed = _grid_sweeper()
    sweeper.validate_batch_is_legal([
        ["model=logreg", "model.C=1"], ["model=logreg", "model.C=2"],
        ["model=xgboost", "seed=1"], ["model=xgboost", "seed=2"], ["+model@extra=logreg"]])
    assert composed == [["model=logreg", "model.C=1"], ["model=xgboost", "seed=1"],
                        ["+model@extra=logreg"]]


def test_the_grid_sweeper_still_refuses_a_cell_whose_group_choice_does_not_compose():
    from hydra.errors import HydraException

    sweeper, _ = _grid_sweeper()
    with pytest.raises(HydraException, match="no_such_model"):
        sweeper.validate_batch_is_legal([["model=logreg", "seed=1"], ["model=logreg", "seed=2"],
                                         ["model=no_such_model", "seed=1"]])


def test_split_shares_leaving_train_empty_are_refused_unless_test_is_fixed(compose_cfg,
                                                                            tmp_path):
    """val_size + test_size >= 1 is refused when both are shares of all rows; a dataset with
    a fixed TEST file leaves test_size unused, so there the pair is valid."""
    cfg, _ = compose_cfg("split.val_size=0.5", "split.test_size=0.5")
    with pytest.raises(ConfigError, match=r"0\.5 \+ 0\.5"):
        validate_config(cfg)
    cfg, _ = compose_cfg("dataset=nslkdd", "split.val_size=0.5", "split.test_size=0.5",
                         small=False)
    _stand_in_files(cfg, tmp_path)
    validate_config(cfg)  # KDDTest+ is TEST; VAL is half of KDDTrain+
    cfg, _ = compose_cfg("dataset=nslkdd", "dataset.test_file=null", "split.val_size=0.5",
                         "split.test_size=0.5", small=False)
    _stand_in_files(cfg, tmp_path)
    with pytest.raises(ConfigError, match="TRAIN would get no rows"):
        validate_config(cfg)
