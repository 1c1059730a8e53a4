"""After the split, before any fitting: every partition holds the classes the run needs.

A tiny or one-class file otherwise fails far downstream, inside a model or a threshold, with a
message about the consequence ("VAL has no attack rows"); here the message names the cause: the
partition, its class counts, and what to change (split sizes, split kind, `fit_on`, threshold).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig

from bench.data.dataset import Dataset
from bench.data.split import Splits
from bench.errors import DataError
from bench.instantiate import build, build_for_validation

_NAMES = {0: "normal", 1: "attack"}


def split_dataset(cfg: DictConfig, dataset: Dataset) -> Splits:
    """`cfg.split` applied to `dataset`; sklearn's "too few rows per class" as a DataError."""
    label = dataset.schema.label
    try:
        splits = build(cfg.split, "split")(dataset)
    except ValueError as error:  # sklearn's stratified split of too few rows per class
        raise DataError(f"{dataset.name}: {_counts(dataset.train[label])} cannot be split "
                        f"by split={cfg.split._target_.rsplit('.', 1)[-1]} "
                        f"(val_size={cfg.split.get('val_size')}, test_size="
                        f"{cfg.split.get('test_size')}): {error}. Use more rows, smaller "
                        "split sizes or split=blocked") from None
    return splits


def check_classes(cfg: DictConfig, splits: Splits, label: str) -> None:
    """Refuse (DataError) a partition that is empty or lacks a class that the model (TRAIN)
    or the threshold (VAL) needs."""
    needs = {"TRAIN": _train_needs(cfg), "VAL": _val_needs(cfg), "TEST": ((), "")}
    for name, frame in (("TRAIN", splits.train), ("VAL", splits.val), ("TEST", splits.test)):
        classes, why = needs[name]
        y = np.asarray(frame[label]).astype(int)
        missing = [c for c in classes if not (y == c).any()]
        if len(y) == 0 or missing:
            lacking = ("no rows" if len(y) == 0 else
                       " and ".join(f"no {_NAMES[c]} rows" for c in missing))
            raise DataError(
                f"{name} has {lacking} ({_counts(y)}, split: {splits.description}){why}. "
                "Change the split sizes (split.val_size, split.test_size), the split kind "
                "(split=stratified keeps the class shares in every partition) or use more "
                "rows")
    share = cfg.threshold.get("share")
    if isinstance(share, float) and int(share * len(splits.val) + 1e-9) == 0:
        raise DataError(f"VAL has {len(splits.val)} rows: threshold.share={share} of them "
                        f"flags none; use a share of at least 1/{len(splits.val)}, a larger "
                        "split.val_size or more rows")


def _counts(y: Any) -> str:
    y = np.asarray(y).astype(int)
    return f"{int((y == 0).sum())} normal, {int((y == 1).sum())} attack rows"


def _train_needs(cfg: DictConfig) -> tuple[tuple[int, ...], str]:
    from sklearn.base import is_classifier

    model = build_for_validation(cfg.model, "model")
    fit_on = getattr(model, "fit_on", None)
    if fit_on == "normal":
        return (0,), (": model.fit_on=normal fits the detector on TRAIN's normal rows (or use "
                      "model.fit_on=all)")
    if is_classifier(model):
        return (0, 1), (f": the classifier {type(model).__name__} needs both classes in TRAIN "
                        "(a detector with model.fit_on=all needs none)")
    return (), ""


def _val_needs(cfg: DictConfig) -> tuple[tuple[int, ...], str]:
    threshold = build_for_validation(cfg.threshold, "threshold")
    classes = tuple(getattr(threshold, "val_classes_needed", ()))
    kind = type(threshold).__name__
    return classes, (f": threshold {kind} is chosen on VAL and needs "
                     f"{' and '.join(_NAMES[c] for c in classes)} rows there (threshold=quantile "
                     "or threshold=fixed need no VAL labels)" if classes else "")
