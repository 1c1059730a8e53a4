"""Thresholds chosen on VAL, metrics, and figures.

PLOTS names the figures a run can log (`evaluation.plots`); kept here, free of matplotlib, so
the config validation can check the setting without importing the plotting stack.
"""

from typing import Any

PLOTS = ("confusion_matrix", "roc", "precision_recall", "threshold_curve", "score_histogram",
         "epsilon_curve")


def chosen_plots(setting: Any) -> tuple[str, ...]:
    """`evaluation.plots`: "all", "none", or a list of names from PLOTS."""
    if setting in ("all", None):
        return PLOTS
    if setting == "none":
        return ()
    return tuple(str(name) for name in setting)
