"""Hydra instantiation restricted to trusted packages.

Hydra 1.4 warns (and 1.5 will refuse) when a config-controlled `_target_` may import anything.
Targets must live in one of TRUSTED_TARGETS; add a package here to allow its classes in conf/.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

TRUSTED_TARGETS = ["bench.*", "sklearn.*", "xgboost.*"]


def build(node: Any, **kwargs: Any) -> Any:
    """Instantiate a `_target_` config node into plain Python objects (lists, dicts)."""
    return instantiate(node, _convert_="all", _execution_whitelist_=TRUSTED_TARGETS, **kwargs)
