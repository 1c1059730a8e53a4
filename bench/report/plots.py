"""Figures of the report (matplotlib, Agg); each function returns a Figure."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def leaderboard_figure(board: pd.DataFrame, metric: str, title: str) -> Figure:
    """Mean of `metric` per configuration with its confidence interval as an error bar
    (none for n = 1); configurations with no finished run are marked 'all failed'."""
    labels = (board["selector"].astype(str) + "/" + board["model"].astype(str)).tolist()
    if labels and len(set(labels)) < len(labels):
        tells = [v if v else cid for v, cid in zip(board.get("variant", board["config_id"]),
                                                   board["config_id"], strict=True)]
        labels = [f"{label} [{tell}]" for label, tell in zip(labels, tells, strict=True)]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(board) + 1.4))
    for y, (_, row) in enumerate(board.iterrows()):
        mean, low, high = row[metric], row[f"{metric}_low"], row[f"{metric}_high"]
        if row["n"] == 0 or math.isnan(mean):
            ax.text(0.0, y, "  all runs failed", va="center", color="tab:red",
                    transform=ax.get_yaxis_transform())
            continue
        err = None if math.isnan(low) else [[mean - low], [high - mean]]
        ax.errorbar(mean, y, xerr=err, fmt="o", color="tab:blue", capsize=4)
        ax.annotate(f"n={int(row['n'])}", (mean, y), textcoords="offset points",
                    xytext=(0, 7), ha="center", fontsize=7)
    ax.set_yticks(range(len(board)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (mean, confidence interval over seeds)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
