"""Pre-flight check of command-line key overrides, before Hydra composes and runs anything.

Hydra already rejects an unknown group option with the list of available options, and an
unknown key with a "did you mean" hint. This check adds the full list of valid keys of the
node, which is what a user needs when the guess is not close: `model.n_estimatrs=5` ->
"valid keys under 'model' (model=xgboost): colsample_bytree, learning_rate, ...".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override


def unknown_key_errors(argv: Sequence[str], config_dir: str) -> list[str]:
    """Messages for `key=value` overrides whose key does not exist in the composed config.

    Keys added with `+`, deleted with `~`, and `hydra.*` keys are left to Hydra. Each option
    of a swept group (`model=xgboost,dfnn`) is checked on its own.
    """
    try:
        overrides = _parse(argv)
    except Exception:
        return []  # Hydra reports syntax errors itself
    keys = [o.key_or_group for o in overrides if _sets_existing_key(o)]
    if not keys:
        return []
    errors: list[str] = []
    for choice in _group_variants(overrides):
        cfg = _compose(config_dir, choice)
        if cfg is None:
            return []  # Hydra reports composition errors (unknown options) itself
        errors += [message for key in keys if (message := _missing(cfg, key, choice))]
    return list(dict.fromkeys(errors))


def _parse(argv: Sequence[str]) -> list[Override]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-") and "=" in a]
    return OverridesParser.create().parse_overrides(args)


def _sets_existing_key(override: Override) -> bool:
    """`a.b=value`: a plain assignment to a nested key (not +, ++, ~, nor hydra's own)."""
    return ("." in override.key_or_group and not override.key_or_group.startswith("hydra")
            and not (override.is_add() or override.is_force_add() or override.is_delete()))


def _chooses_option(override: Override) -> bool:
    """`group=option` (or a sweep over options) of a top-level group; seed is no group."""
    key = override.key_or_group
    return ("." not in key and "/" not in key and not key.startswith("hydra")
            and key != "seed" and not override.is_delete())


def _group_variants(overrides: list[Override]) -> list[dict[str, str]]:
    """The group choices to compose: the first option of every group, then each further
    option of a swept group on its own (not the full product: a key is checked per option)."""
    groups = {o.key_or_group: [str(v) for v in o.sweep_iterator()] if o.is_sweep_override()
              else [str(o.value())] for o in overrides if _chooses_option(o)}
    base = {g: values[0] for g, values in groups.items()}
    return [base] + [{**base, g: v} for g, values in groups.items() for v in values[1:]]


def _compose(config_dir: str, choice: dict[str, str]) -> DictConfig | None:
    """The config composed with these group choices; None if Hydra cannot compose it."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=config_dir):
            return compose("config", overrides=[f"{g}={v}" for g, v in choice.items()])
    except Exception:
        return None


def _missing(cfg: DictConfig, key: str, choice: dict[str, str]) -> str | None:
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None)
    if not isinstance(parent, DictConfig):
        return None  # missing parent: Hydra's own message names it
    if leaf in parent:
        return None
    group = parent_key.split(".")[0]
    selected = f" ({group}={choice[group]})" if group in choice else ""
    valid = ", ".join(sorted(str(k) for k in parent if not str(k).startswith("_")))
    return (f"unknown key '{key}'{selected}. Valid keys under '{parent_key}': {valid}. "
            f"To add a new key on purpose use +{key}=...")
