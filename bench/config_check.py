"""Pre-flight check of command-line key overrides, before Hydra composes and runs anything.

Hydra already rejects an unknown group option with the list of available options, and an
unknown key with a "did you mean" hint. This check adds the full list of valid keys of the
node, which is what a user needs when the guess is not close: `model.n_estimatrs=5` ->
"valid keys under 'model' (model=xgboost): colsample_bytree, learning_rate, ...".
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf


def _parse(argv: Sequence[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if not a.startswith("-") and "=" in a]
    return OverridesParser.create().parse_overrides(args)


def unknown_key_errors(argv: Sequence[str], config_dir: str) -> list[str]:
    """Messages for `key=value` overrides whose key does not exist in the composed config.

    Keys added with `+`, deleted with `~`, and `hydra.*` keys are left to Hydra. Each option
    of a swept group (`model=xgboost,dfnn`) is checked on its own.
    """
    try:
        overrides = _parse(argv)
    except Exception:
        return []  # Hydra reports syntax errors itself
    keys = [o for o in overrides if "." in o.key_or_group and not o.is_add()
            and not o.is_delete() and not o.key_or_group.startswith("hydra")
            and not o.is_force_add()]
    if not keys:
        return []
    groups = {o.key_or_group: [str(v) for v in o.sweep_iterator()] if o.is_sweep_override()
              else [str(o.value())] for o in overrides if "." not in o.key_or_group
              and "/" not in o.key_or_group and not o.key_or_group.startswith("hydra")
              and o.key_or_group != "seed" and not o.is_delete()}
    base = {g: values[0] for g, values in groups.items()}
    variants = [base] + [{**base, g: v} for g, values in groups.items() for v in values[1:]]
    from hydra import compose, initialize_config_dir

    errors: list[str] = []
    for choice in variants:
        try:
            with initialize_config_dir(config_dir=config_dir):
                cfg = compose("config", overrides=[f"{g}={v}" for g, v in choice.items()])
        except Exception:
            return []  # Hydra reports composition errors (unknown options) itself
        for override in keys:
            message = _missing(cfg, override.key_or_group, choice)
            if message and message not in errors:
                errors.append(message)
    return errors


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
