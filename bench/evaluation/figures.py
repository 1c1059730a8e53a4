"""A run's figures, drawn in the helper process while the run goes on (`evaluation.plots`).

Drawing and saving a run's five PNGs is ~0.3 s of pure Python, as much as everything else a
cheap cell does. The run's helper process (bench.helper) draws them from the scores while the
main process logs the reports and the model; the run is finished only after its figures are
logged, and an error while drawing fails the run as it would inline. If the helper cannot
start or dies, the figures are drawn inline.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import helper, scratch


@dataclass(frozen=True)
class FigureData:
    """What the figures show: labels and scores (higher = attack) of VAL and TEST, the VAL
    threshold, a title, the figure names wanted (from bench.evaluation.PLOTS) and whether the
    score is -log p(x) (adds the epsilon curve)."""

    y_val: np.ndarray
    scores_val: np.ndarray
    y_test: np.ndarray
    scores_test: np.ndarray
    threshold: float
    title: str
    wanted: tuple[str, ...]
    negative_log_density: bool = False


FILE_NAMES = {"confusion_matrix": "confusion_matrix_test", "threshold_curve":
              "threshold_curve_val", "score_histogram": "score_histogram_test",
              "epsilon_curve": "epsilon_curve_val"}


def draw(data: FigureData, folder: str) -> list[str]:
    """Write the wanted figures of `data` as PNGs into `folder`; returns the file names."""
    import matplotlib.pyplot as plt

    from bench.evaluation import plots

    curves = {"VAL": (data.y_val, data.scores_val), "TEST": (data.y_test, data.scores_test)}
    title, threshold = data.title, data.threshold
    makers = {
        "confusion_matrix": lambda: plots.confusion_matrix_figure(
            data.y_test, (data.scores_test >= threshold).astype(int), f"{title} - TEST"),
        "roc": lambda: plots.roc_figure(curves, title),
        "precision_recall": lambda: plots.pr_figure(curves, title),
        "threshold_curve": lambda: plots.threshold_curve_figure(
            data.y_val, data.scores_val, threshold, f"{title} - VAL"),
        "score_histogram": lambda: plots.score_histogram_figure(
            data.y_test, data.scores_test, threshold, f"{title} - TEST"),
    }
    if data.negative_log_density:
        makers["epsilon_curve"] = lambda: plots.epsilon_curve_figure(
            data.y_val, data.scores_val, threshold, f"{title} - VAL")
    written = []
    for name in data.wanted:
        if name in makers:
            figure = makers[name]()
            file_name = f"{FILE_NAMES.get(name, name)}.png"
            figure.savefig(Path(folder) / file_name)
            plt.close(figure)
            written.append(file_name)
    return written


# --------------------------------------------------------------------- the parent's side
class PendingFigures:
    """Figures being drawn for one run; `folder()` waits and returns where they are."""

    def __init__(self, data: FigureData, folder: str, ticket: helper.Ticket | None) -> None:
        self._data, self._folder, self._ticket = data, folder, ticket

    def folder(self) -> str:
        """The folder holding the figures once drawn; raises what drawing raised
        (helper.JobFailed, with the helper's traceback)."""
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            try:
                ticket.wait()
            except helper.Gone:  # the helper died: draw here
                draw(self._data, self._folder)
        return self._folder

    def files(self) -> list[Path]:
        """The figure files, once drawn (waits like `folder`)."""
        return sorted(Path(self.folder()).glob("*.png"))

    def discard(self) -> None:
        """Forget the figures and remove the folder. The helper's reply is still read (it
        answers in order), but what drawing raised is not: a run failing for another reason
        keeps its own error."""
        ticket, self._ticket = self._ticket, None
        try:
            if ticket is not None:
                ticket.wait()
        except (helper.Gone, helper.JobFailed):
            pass
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


def start(data: FigureData) -> PendingFigures:
    """Begin drawing `data`'s figures: in the helper process (bench.helper), else here and
    now."""
    folder = str(scratch.make("figures"))
    ticket = helper.submit("figures", (data, folder)) if data.wanted else None
    if ticket is not None:
        return PendingFigures(data, folder, ticket)
    draw(data, folder)
    return PendingFigures(data, folder, None)
