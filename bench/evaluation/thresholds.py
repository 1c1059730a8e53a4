"""Decision thresholds, always chosen on VAL scores: predict attack iff score >= threshold.

Strategies (conf/threshold/): `BestF1` (maximise VAL F1), `FprBudget` (most VAL recall within a
false-positive-rate budget), `Quantile` (flag the top share of VAL scores: the contamination
rule, labels unused), `Fixed` (a given cut-off, or a density cut-off epsilon: -log(epsilon)).
Each returns a ThresholdChoice whose details (VAL precision, recall, FPR at the choice) the
experiment logs to reports/threshold.json.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from bench.errors import ConfigError

log = logging.getLogger(__name__)


def _number(key: str, value: Any, allowed: str) -> float:
    """`value` as a float, or ConfigError `key=value: allowed` (bools and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={value!r}: must be a number, {allowed}")
    if not math.isfinite(value):
        raise ConfigError(f"{key}={value!r}: must be a finite number, {allowed}")
    return float(value)


@dataclass
class ThresholdChoice:
    """The chosen cut-off and what the strategy saw on VAL when it chose it."""

    threshold: float
    strategy: str
    details: dict[str, Any] = field(default_factory=dict)


def _check_val(y_val: np.ndarray, scores_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_val = np.asarray(y_val).astype(int)
    scores_val = np.asarray(scores_val, dtype=float)
    if y_val.shape != scores_val.shape:
        raise ValueError(f"labels {y_val.shape} and scores {scores_val.shape} differ in shape")
    if not np.isfinite(scores_val).all():
        raise ValueError(f"{int((~np.isfinite(scores_val)).sum())} VAL scores are NaN or "
                         "infinite; a threshold cannot be chosen")
    return y_val, scores_val


def f1_curve(y_val: Any, scores_val: Any) -> tuple[np.ndarray, ...]:
    """Precision, recall, F1 and the threshold at every distinct score (attack iff >= it).

    Four arrays of equal length, from sklearn's precision_recall_curve; F1 is 0 where
    precision and recall are both 0.
    """
    precision, recall, thresholds = precision_recall_curve(y_val, scores_val)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1, thresholds


@dataclass
class BestF1:
    """The threshold maximising F1 on VAL, exact over every distinct score.

    sklearn's precision_recall_curve enumerates every distinct score as a candidate, so this is
    the exact optimum, not a grid. Ties go to the highest threshold (fewest alarms).
    """

    # labels (0 normal, 1 attack) VAL must hold for `choose` (bench.data.class_check)
    val_classes_needed: ClassVar[tuple[int, ...]] = (1,)

    def choose(self, y_val: Any, scores_val: Any) -> ThresholdChoice:
        y_val, scores_val = _check_val(y_val, scores_val)
        if y_val.sum() == 0:
            raise ConfigError("VAL has no attack rows: best_f1 cannot choose a threshold")
        _, _, f1, thresholds = f1_curve(y_val, scores_val)
        best = np.flatnonzero(f1 == f1.max()).max()
        return ThresholdChoice(float(thresholds[best]), "best_f1",
                               {"val_f1_at_threshold": float(f1[best]),
                                "candidates": len(thresholds),
                                **val_rates(y_val, scores_val, float(thresholds[best]))})


def val_rates(y_val: np.ndarray, scores_val: np.ndarray, threshold: float) -> dict[str, Any]:
    """What a threshold does on VAL: flagged share, and (where defined) precision, recall, FPR.

    A rate whose denominator is empty (no attack / no normal / nothing flagged) is left out,
    never NaN.
    """
    flagged = scores_val >= threshold
    attack, normal = y_val == 1, y_val == 0
    out: dict[str, Any] = {"val_flagged_share": float(flagged.mean()) if len(y_val) else 0.0}
    if attack.any():
        out["val_recall"] = float(flagged[attack].mean())
    if normal.any():
        out["val_fpr"] = float(flagged[normal].mean())
    if flagged.any():
        out["val_precision"] = float(attack[flagged].mean())
    return out


def _just_above(scores_val: np.ndarray) -> float:
    """The smallest float above every VAL score: a threshold that flags no VAL row."""
    return float(np.nextafter(scores_val.max(), np.inf)) if len(scores_val) else math.inf


@dataclass
class FprBudget:
    """The threshold with the highest VAL recall whose VAL false-positive rate <= `budget`.

    Exact over every distinct VAL score (sklearn's roc_curve, attack iff score >= threshold);
    among equal recalls the highest threshold (lowest FPR) wins. The FPR resolution is
    1 / (normal VAL rows): a budget below it allows no false positive at all. When even the
    highest VAL score is a normal row, no threshold keeps the budget while flagging anything:
    the choice then flags no VAL row (recall 0), with a warning.
    """

    budget: float = 0.01
    val_classes_needed: ClassVar[tuple[int, ...]] = (0, 1)

    def __post_init__(self) -> None:
        allowed = "a false-positive-rate budget in (0, 1), e.g. 0.01"
        if not 0.0 < _number("threshold.budget", self.budget, allowed) < 1.0:
            raise ConfigError(f"threshold.budget={self.budget!r}: must be {allowed}")

    def choose(self, y_val: Any, scores_val: Any) -> ThresholdChoice:
        y_val, scores_val = _check_val(y_val, scores_val)
        n_attack = int(y_val.sum())
        if n_attack == 0 or n_attack == len(y_val):
            raise ConfigError("fpr_budget needs normal and attack rows in VAL, got "
                              f"{len(y_val) - n_attack} normal and {n_attack} attack rows")
        fpr, tpr, thresholds = roc_curve(y_val, scores_val, drop_intermediate=False)
        feasible = np.flatnonzero(fpr <= self.budget)[1:]  # index 0 is +inf: flags nothing
        details: dict[str, Any] = {"budget": float(self.budget),
                                   "val_normal_rows": len(y_val) - n_attack}
        if len(feasible) == 0:
            threshold = _just_above(scores_val)
            warnings.warn(f"fpr_budget {self.budget}: the highest VAL score is a normal row, "
                          "so only a threshold that flags nothing keeps the budget",
                          stacklevel=2)
            details["flags_nothing_on_val"] = True
        else:
            best_recall = tpr[feasible].max()
            threshold = float(thresholds[feasible[tpr[feasible] == best_recall][0]])
        return ThresholdChoice(threshold, "fpr_budget",
                               {**details, **val_rates(y_val, scores_val, threshold)})


@dataclass
class Quantile:
    """Flag the top `share` of VAL scores (the contamination rule; labels are not used).

    threshold = the k-th highest VAL score, k = floor(share * n_val), so at least k VAL rows
    are flagged (more where scores tie at the threshold). A share in which k = 0 (it would
    flag nothing) or outside (0, 1) raises ConfigError.
    """

    share: float = 0.05
    val_classes_needed: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        allowed = "the share of VAL rows to flag, in (0, 1), e.g. 0.05"
        if not 0.0 < _number("threshold.share", self.share, allowed) < 1.0:
            raise ConfigError(f"threshold.share={self.share!r}: must be {allowed}")

    def choose(self, y_val: Any, scores_val: Any) -> ThresholdChoice:
        y_val, scores_val = _check_val(y_val, scores_val)
        k = math.floor(self.share * len(scores_val) + 1e-9)
        if k == 0:
            raise ConfigError(
                f"threshold.share={self.share} of {len(scores_val)} VAL rows flags nothing: "
                f"use a share of at least 1/{len(scores_val)}")
        threshold = float(np.sort(scores_val)[::-1][k - 1])
        return ThresholdChoice(threshold, "quantile",
                               {"share": float(self.share), "k": k,
                                **val_rates(y_val, scores_val, threshold)})


@dataclass
class Fixed:
    """A cut-off given in the config, not chosen: exactly one of `value` and `epsilon`.

    value : the threshold on the anomaly score itself (e.g. 2 for model=mean_2sigma: "beyond
        2 standard deviations").
    epsilon : a cut-off on the density p(x) of model=gaussian, whose anomaly score is
        -log p(x): p(x) < epsilon <=> score > -log(epsilon), so threshold = -log(epsilon)
        (a row with p(x) exactly epsilon counts as attack, as score >= threshold does).

    bench.validate refuses epsilon with any other model, and a value outside (0, 1] with a
    classifier (its score is a probability); `choose` warns when the cut-off flags no VAL
    row or every VAL row.
    """

    value: float | None = None
    epsilon: float | None = None
    val_classes_needed: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        if (self.value is None) == (self.epsilon is None):
            raise ConfigError(f"threshold.value={self.value}, threshold.epsilon={self.epsilon}: "
                              "threshold=fixed needs exactly one of them: threshold.value (a "
                              "cut-off on the score) or threshold.epsilon (a cut-off on the "
                              "density p(x))")
        if self.value is not None:
            _number("threshold.value", self.value, "the cut-off on the anomaly score")
        if self.epsilon is not None and not 0.0 < _number(
                "threshold.epsilon", self.epsilon, "a density cut-off > 0") < math.inf:
            raise ConfigError(f"threshold.epsilon={self.epsilon!r}: must be a density cut-off "
                              "> 0 (threshold = -log(epsilon))")

    @property
    def threshold(self) -> float:
        if self.value is not None:
            return float(self.value)
        return -math.log(float(self.epsilon))  # type: ignore[arg-type]

    def choose(self, y_val: Any, scores_val: Any) -> ThresholdChoice:
        y_val, scores_val = _check_val(y_val, scores_val)
        given = ({"value": float(self.value)} if self.value is not None
                 else {"epsilon": float(self.epsilon)})  # type: ignore[arg-type]
        flagged = int((scores_val >= self.threshold).sum())
        if len(scores_val) and flagged in (0, len(scores_val)):
            setting = ", ".join(f"threshold.{k}={v:g}" for k, v in given.items())
            log.warning(f"[threshold] {setting} (threshold {self.threshold:g}) flags "
                        f"{'no' if flagged == 0 else 'every'} VAL row: VAL scores lie in "
                        f"[{scores_val.min():g}, {scores_val.max():g}]")
        return ThresholdChoice(self.threshold, "fixed",
                               {**given, **val_rates(y_val, scores_val, self.threshold)})
