"""Threshold strategies: exact choices on VAL, budgets kept, bad input refused."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import f1_score

from bench.errors import ConfigError
from bench.evaluation import plots
from bench.evaluation.thresholds import BestF1, Fixed, FprBudget, Quantile
from bench.instantiate import build
from bench.models.detectors import GaussianDensity


def _random_val(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random VAL labels and overlapping scores, with ties (rounded) in half of the seeds."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
    y[:2] = [0, 1]  # both classes always present
    scores = rng.normal(size=n) + rng.uniform(0, 2) * y
    if seed % 2:
        scores = np.round(scores, 1)
    return y, scores


# --- epsilon on the Gaussian density ------------------------------------------------------

def _unit_gaussian() -> GaussianDensity:
    """Fitted on x = -1, +1: mean 0, variance 1 exactly (reg_covar=0)."""
    return GaussianDensity(covariance_type="full", reg_covar=0.0).fit(np.array([[-1.0], [1.0]]))


def test_fixed_epsilon_on_a_hand_computed_gaussian():
    density = _unit_gaussian()
    x = np.array([[0.0], [2.0], [3.0]])
    # p(x) = exp(-x^2 / 2) / sqrt(2 pi): 0.39894, 0.05399, 0.00443
    p = np.exp(-x[:, 0] ** 2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(np.exp(density.score_samples(x)), p, rtol=1e-9)
    scores = -density.score_samples(x)  # the anomaly score anomaly_score() gives: -log p
    choice = Fixed(epsilon=0.01).choose(np.array([0, 0, 1]), scores)
    assert choice.threshold == pytest.approx(-math.log(0.01))  # 4.60517
    assert list(scores >= choice.threshold) == [False, False, True]  # only p(3) < 0.01
    assert choice.details["epsilon"] == 0.01
    assert choice.details["val_recall"] == 1.0 and choice.details["val_fpr"] == 0.0


def test_best_epsilon_on_a_hand_computed_example():
    """x = 0, 0.5, 1, 2.5, 3 with labels 0, 0, 1, 0, 1. Flagging p(x) <= p(1) flags x = 1, 2.5,
    3: precision 2/3, recall 1, F1 0.8, the best (p(3): 0.667, p(2.5): 0.5, p(0.5): 0.667,
    p(0): 0.571). So the chosen epsilon is p(1) = exp(-1/2) / sqrt(2 pi) = 0.241971."""
    density = _unit_gaussian()
    x = np.array([[0.0], [0.5], [1.0], [2.5], [3.0]])
    scores = -density.score_samples(x)
    choice = BestF1().choose(np.array([0, 0, 1, 0, 1]), scores)
    assert math.exp(-choice.threshold) == pytest.approx(0.241971, abs=1e-6)
    assert choice.details["val_f1_at_threshold"] == pytest.approx(0.8)


# --- fpr_budget -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("budget", [0.001, 0.01, 0.05, 0.2, 0.5])
def test_fpr_budget_never_exceeds_its_budget_and_is_the_best_within_it(seed, budget):
    y, scores = _random_val(seed)
    choice = FprBudget(budget).choose(y, scores)
    flagged = scores >= choice.threshold
    fpr = flagged[y == 0].mean()
    assert fpr <= budget
    assert choice.details["val_fpr"] == pytest.approx(fpr)
    # brute force: no candidate threshold within the budget has a higher recall
    best = max(((scores >= t)[y == 1].mean() for t in np.unique(scores)
                if (scores >= t)[y == 0].mean() <= budget), default=0.0)
    assert flagged[y == 1].mean() == pytest.approx(best)


def test_fpr_budget_flags_nothing_when_the_top_score_is_normal():
    y, scores = np.array([0, 1, 0, 1]), np.array([0.9, 0.5, 0.1, 0.2])
    with pytest.warns(UserWarning, match="flags nothing"):
        choice = FprBudget(0.1).choose(y, scores)
    assert math.isfinite(choice.threshold)
    assert not (scores >= choice.threshold).any()
    assert choice.details["flags_nothing_on_val"] is True


@pytest.mark.parametrize("budget", [0, 1, -0.1, 1.5])
def test_fpr_budget_outside_unit_interval_is_a_config_error(budget):
    with pytest.raises(ConfigError, match="budget"):
        FprBudget(budget)


def test_fpr_budget_from_the_config_refuses_a_bad_budget(compose_cfg):
    cfg, _ = compose_cfg("threshold=fpr_budget", "threshold.budget=1.5")
    with pytest.raises(ConfigError, match="budget"):
        build(cfg.threshold)


def test_fpr_budget_needs_both_classes_in_val():
    with pytest.raises(ConfigError, match="normal and attack"):
        FprBudget(0.1).choose(np.zeros(10, dtype=int), np.arange(10.0))


# --- quantile --------------------------------------------------------------------------

def test_quantile_flags_the_top_share():
    scores = np.random.default_rng(0).permutation(np.arange(200.0))
    choice = Quantile(0.05).choose(np.zeros(200, dtype=int), scores)
    assert (scores >= choice.threshold).sum() == 10
    assert choice.threshold == 190.0
    assert choice.details["val_flagged_share"] == 0.05
    assert "val_recall" not in choice.details  # undefined without attack rows: left out


@pytest.mark.parametrize("seed", range(6))
def test_quantile_flags_at_least_its_share_with_ties(seed):
    y, scores = _random_val(seed)
    choice = Quantile(0.1).choose(y, scores)
    assert (scores >= choice.threshold).sum() >= math.floor(0.1 * len(scores))
    assert (scores > choice.threshold).sum() < math.floor(0.1 * len(scores))


def test_quantile_that_flags_nothing_is_a_config_error():
    with pytest.raises(ConfigError, match="flags nothing"):
        Quantile(0.001).choose(np.zeros(100, dtype=int), np.arange(100.0))
    for share in (0, 1, 1.5):
        with pytest.raises(ConfigError, match="share"):
            Quantile(share)


# --- fixed -----------------------------------------------------------------------------

def test_fixed_value_is_taken_as_given():
    choice = Fixed(value=2).choose(np.array([0, 1, 1]), np.array([1.0, 2.0, 3.0]))
    assert choice.threshold == 2.0 and choice.strategy == "fixed"
    assert choice.details["val_recall"] == 1.0


@pytest.mark.parametrize("kwargs", [{}, {"value": 1.0, "epsilon": 0.1}, {"epsilon": 0.0},
                                    {"epsilon": -1.0}, {"value": math.inf}])
def test_fixed_needs_exactly_one_valid_cut_off(kwargs):
    with pytest.raises(ConfigError):
        Fixed(**kwargs)


def test_fixed_from_the_config_without_a_value_is_a_config_error(compose_cfg):
    cfg, _ = compose_cfg("threshold=fixed")
    with pytest.raises(ConfigError, match="exactly one"):
        build(cfg.threshold)
    cfg, _ = compose_cfg("threshold=fixed", "threshold.epsilon=1e-5")
    assert build(cfg.threshold).threshold == pytest.approx(-math.log(1e-5))


# --- best_f1 ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_best_f1_agrees_with_a_brute_force_search(seed):
    y, scores = _random_val(seed)
    choice = BestF1().choose(y, scores)
    brute = max(f1_score(y, scores >= t) for t in np.unique(scores))
    assert f1_score(y, scores >= choice.threshold) == pytest.approx(brute)
    assert choice.details["val_f1_at_threshold"] == pytest.approx(brute)


def test_non_finite_scores_are_refused():
    for strategy in (BestF1(), FprBudget(0.1), Quantile(0.5), Fixed(value=1.0)):
        with pytest.raises(ValueError, match="NaN or infinite"):
            strategy.choose(np.array([0, 1]), np.array([0.0, np.nan]))


# --- plots -----------------------------------------------------------------------------

def test_detector_plots_pick_a_readable_axis_and_draw():
    y, scores = _random_val(3)
    positive = np.exp(scores * 3)  # reconstruction-error-like: spans several decades
    heavy = np.where(y == 1, 10.0 ** (scores * 4), -scores)  # -log p on near-singular data
    assert plots.score_axis_scale(scores)[0] == "linear"
    assert plots.score_axis_scale(positive)[0] == "log"
    assert plots.score_axis_scale(heavy)[0] == "symlog"
    for values in (scores, positive, heavy):
        chosen = float(np.median(values))
        for figure in (plots.threshold_curve_figure(y, values, chosen, "t"),
                       plots.score_histogram_figure(y, values, chosen, "t"),
                       plots.epsilon_curve_figure(y, values, chosen, "t")):
            assert isinstance(figure, Figure)
            plt.close(figure)


def test_a_fixed_cut_off_that_flags_no_or_every_val_row_is_warned(caplog):
    """A fixed value beyond every VAL score (or at or below all of them) ran silently."""
    import logging

    y, scores = np.array([0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0])
    for value, word in ((500.0, "no"), (0.5, "every")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bench.evaluation.thresholds"):
            Fixed(value=value).choose(y, scores)
        assert any(f"threshold.value={value:g}" in r.getMessage()
                   and f"flags {word} VAL row" in r.getMessage() and "[1, 4]" in r.getMessage()
                   for r in caplog.records), caplog.records
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bench.evaluation.thresholds"):
        Fixed(value=2.5).choose(y, scores)
    assert not caplog.records
