"""A run's figures, drawn in a helper process while the run goes on (`evaluation.plots`).

Drawing and saving a run's five PNGs is ~0.3 s of pure Python, as much as everything else a
cheap cell does. One helper process per bench process (`python -m bench.evaluation.figures`,
started on first use) draws them from the scores while the main process logs the reports and
the model; the run is finished only after its figures are logged, and an error while drawing
fails the run as it would inline. If the helper cannot start or dies, the figures are drawn
inline. The helper reads its jobs from its stdin, so it ends when its parent does, even after
a kill -9.

Why not multiprocessing / concurrent.futures: their "spawn" and "forkserver" start methods
import the parent's __main__ again in the child, which runs a user's unguarded script twice,
and "fork" copies MLflow's threads and locks. A plain subprocess with a pipe has neither
problem; the messages are pickles between two processes of this same program.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)


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

    def __init__(self, data: FigureData, folder: str, helper: _Helper | None) -> None:
        self._data, self._folder, self._helper = data, folder, helper

    def folder(self) -> str:
        """The folder holding the figures once drawn; raises what drawing raised."""
        helper, self._helper = self._helper, None
        if helper is not None and not helper.reply():  # the helper died: draw here
            draw(self._data, self._folder)
        return self._folder

    def files(self) -> list[Path]:
        """The figure files, once drawn (waits like `folder`)."""
        return sorted(Path(self.folder()).glob("*.png"))

    def discard(self) -> None:
        """Forget the figures and remove the folder. The helper's reply is still read (it
        draws one job at a time), but what drawing raised is not: a run failing for another
        reason keeps its own error."""
        helper, self._helper = self._helper, None
        try:
            if helper is not None:
                helper.reply()
        except RuntimeError:
            pass
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


class _Helper:
    """The helper process and its two pipes; one job at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.evaluation.figures"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._sending: threading.Thread | None = None
        self._send_failed = False

    def send(self, message: Any) -> None:
        """Hand a job over without waiting: a pipe holds 64 KiB, and the helper reads only
        once it has imported matplotlib, so the scores are written by a thread."""
        def write() -> None:
            try:
                _write(self.process.stdin, message)
            except OSError:
                self._send_failed = True

        self._sending = threading.Thread(target=write, name="bench-figures-send", daemon=True)
        self._sending.start()

    def reply(self) -> bool:
        """Wait for the reply to the last job: True when drawn, False when the helper died;
        raises RuntimeError with the helper's traceback when drawing failed."""
        if self._sending is not None:
            self._sending.join()
            self._sending = None
        if self._send_failed:
            return self._died()
        try:
            status, detail = _read(self.process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError, struct.error):
            return self._died()
        if status == "error":
            raise RuntimeError(f"drawing the figures failed in the figure helper:\n{detail}")
        return True

    def _died(self) -> bool:
        global _helper
        log.debug("[figures] the helper process is gone; drawing inline, a new one next run")
        if _helper is self:
            _helper = None
        self.process.kill()
        return False


_helper: _Helper | None = None
_unavailable = False
_inline = False


def draw_inline(inline: bool) -> None:
    """Draw in this process rather than in the helper: for the jobs of a parallel grid,
    whose workers already keep every core busy (a helper per worker would only add its
    interpreter's start-up)."""
    global _inline
    _inline = inline


def warm_up() -> None:
    """Start the helper now, so that its imports (matplotlib, sklearn) overlap the run's."""
    if not _inline:
        _running_helper()


def start(data: FigureData) -> PendingFigures:
    """Begin drawing `data`'s figures: in the helper, else here and now."""
    folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
    helper = _running_helper() if data.wanted and not _inline else None
    if helper is not None:
        helper.send((data, folder))
        return PendingFigures(data, folder, helper)
    draw(data, folder)
    return PendingFigures(data, folder, None)


_PREFIX = "bench-figures-"  # + the pid of the process whose run the figures belong to


def _remove_folders_of_dead_processes() -> None:
    """Figure folders left by processes killed before they logged them (kill -9 of a grid)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid = folder.name.removeprefix(_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _running_helper() -> _Helper | None:
    global _helper, _unavailable
    if _helper is None and not _unavailable:
        _remove_folders_of_dead_processes()
        try:
            _helper = _Helper()
        except OSError as error:
            log.debug(f"[figures] drawn inline: no helper process ({error})")
            _unavailable = True
    return _helper


def _write(stream: IO[bytes] | None, message: Any) -> None:
    assert stream is not None
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(blob)) + blob)
    stream.flush()


def _read(stream: IO[bytes] | None) -> Any:
    assert stream is not None
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the other process closed the pipe")
    return pickle.loads(stream.read(struct.unpack("<Q", header)[0]))


# --------------------------------------------------------------------- the helper's side
def serve(jobs: IO[bytes], replies: IO[bytes]) -> None:
    """Draw each (FigureData, folder) read from `jobs`; reply ("ok", files) or ("error",
    traceback). Returns at end of input (the parent closed the pipe or died)."""
    import bench.evaluation.plots  # noqa: F401  (imported while the parent is busy)

    while True:
        try:
            data, folder = _read(jobs)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", draw(data, folder))
        except Exception:  # reported to the parent, which fails the run with it
            reply = ("error", traceback.format_exc())
        _write(replies, reply)


if __name__ == "__main__":
    from bench.shutdown import skip_final_collection

    skip_final_collection()  # it holds the parent's stderr: a caller reading it waits for us
    _replies = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    serve(sys.stdin.buffer, _replies)
