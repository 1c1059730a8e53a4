"""The novel-attack validation: whole attack groups are held out of TRAIN into VAL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.data.dataset import Dataset
from bench.data.split import GroupedSplit
from bench.data.synthetic import FAMILIES, generate, load
from bench.errors import ConfigError


def _held(splits, column="attack_cat") -> set[str]:
    attacks = splits.val[splits.val["label"] == 1]
    return set(attacks[column]) - set(splits.train.loc[splits.train["label"] == 1, column])


def test_held_out_groups_are_in_val_only_and_the_rest_is_stratified():
    data = load(n_rows=5000, seed=0)
    splits = GroupedSplit(holdout=0.5, val_size=0.2, test_size=0.2, seed=1)(data)
    held = _held(splits)
    assert len(held) == 2  # 0.5 of the 4 families
    kept = set(FAMILIES) - held
    assert set(splits.train.loc[splits.train["label"] == 1, "attack_cat"]) == kept
    attacks_val = set(splits.val.loc[splits.val["label"] == 1, "attack_cat"])
    assert attacks_val == set(FAMILIES)  # VAL: known and novel attacks
    # every row of a held-out group that is not in TEST is in VAL
    rest = data.train.drop(index=splits.test.index)
    assert (rest["attack_cat"].isin(held)).sum() == splits.val["attack_cat"].isin(held).sum()
    indices = [set(f.index) for f in (splits.train, splits.val, splits.test)]
    assert not (indices[0] & indices[1] or indices[0] & indices[2] or indices[1] & indices[2])
    assert sum(splits.sizes().values()) == 5000
    normal = [(f["label"] == 0).sum() for f in (splits.train, splits.val)]
    assert normal[1] / sum(normal) == pytest.approx(0.2, abs=0.01)
    assert set(splits.test["attack_cat"]) >= set(FAMILIES)  # TEST holds every group
    assert str(sorted(held)) in splits.description


def test_draws_are_seeded_and_differ_between_seeds():
    data = load(n_rows=3000, seed=0)
    draws = [frozenset(_held(GroupedSplit(seed=s)(data))) for s in range(8)]
    assert draws[0] == frozenset(_held(GroupedSplit(seed=0)(data)))
    assert len(set(draws)) > 1


def test_official_test_partition_is_kept_and_a_finer_group_column_works():
    data = load(n_rows=3000, seed=0)
    frame = data.train.assign(attack=data.train["attack_cat"] + "_" +
                              (data.train.index % 3).astype(str))
    official = generate(n_rows=500, seed=5)
    data = replace(data, train=frame, test=official)
    splits = GroupedSplit(group="attack", holdout=0.25, seed=0)(data)
    assert splits.test is official
    assert len(_held(splits, "attack")) == 3  # 0.25 of 12 attack names
    assert "official TEST" in splits.description


def test_refusals_name_the_key():
    data = load(n_rows=2000, seed=0)
    no_family = Dataset("t", replace(data.schema, family=None), data.train)
    with pytest.raises(ConfigError, match=r"split\.group"):
        GroupedSplit()(no_family)
    with pytest.raises(ConfigError, match=r"split\.group='nope'"):
        GroupedSplit(group="nope")(data)
    with pytest.raises(ConfigError, match=r"split\.holdout"):
        GroupedSplit(holdout=0.9)(data)  # 4 of 4 families: TRAIN without attacks
    one_family = data.train[data.train["attack_cat"].isin(["normal", "flood"])]
    with pytest.raises(ConfigError, match="without attacks"):
        GroupedSplit()(replace(data, train=one_family))


def test_grouped_split_composes_and_runs(compose_cfg):
    from bench.experiment import run_experiment

    cfg, choices = compose_cfg("split=grouped", "split.holdout=0.25", "model=logreg")
    assert cfg.split.seed == cfg.seed
    result = run_experiment(cfg, choices)
    assert 0.0 < result.metrics["val_recall"] <= 1.0 and "test_accuracy" in result.metrics
