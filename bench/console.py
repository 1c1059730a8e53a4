"""What a run says on the console: logging handlers, progress (bars or plain lines), and
TensorFlow's start-up noise kept off the terminal.

Progress uses tqdm (already required by Optuna), one library for every bar. `progress=auto`
(the config key) draws bars only when stderr is a terminal and `CI` is unset; otherwise each
step is one plain line (CI logs, files). `verbosity` sets what the console shows: `quiet`
(warnings, errors and the results), `info` (default), `debug`. Hydra's per-job `app.log` always
holds every INFO line with timestamps (conf/config.yaml `hydra.job_logging`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

PROGRESS_MODES = ("auto", "bars", "lines", "off")
VERBOSITY_LEVELS = {"quiet": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
# Lines TensorFlow/XLA/absl write to fd 2 while TensorFlow starts, which say nothing a user can
# act on: absl's pre-init notice, oneDNN and CPU-instruction notes, and the CUDA probe failing
# on a machine without a GPU. Anything else written then is kept and logged as a warning.
TF_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub.cc",
            "cpu_feature_guard.cc", "To enable the following instructions",
            "rebuild TensorFlow with the appropriate compiler flags", "cuInit",
            "Could not find cuda drivers", "Unable to register cu", "computation_placer.cc",
            "TF-TRT Warning", "cuda_executor.cc", "cuda_diagnostics.cc")

log = logging.getLogger(__name__)
_settings: dict[str, Any] = {"progress": "auto", "verbosity": "info", "worker": False}


# ---------------------------------------------------------------------------- settings
def configure(progress: str = "auto", verbosity: str = "info") -> None:
    """Apply the config keys `progress` and `verbosity` to this process (validated before)."""
    _settings.update(progress=str(progress), verbosity=str(verbosity))
    level = VERBOSITY_LEVELS.get(str(verbosity), logging.INFO)  # validated per job
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ConsoleHandler):
            handler.min_level = level
    if level < logging.INFO:
        logging.getLogger().setLevel(level)


def mark_worker() -> None:
    """This process runs jobs for a launcher in another process (joblib, Ray): several such
    processes share one terminal, so their progress is plain lines, never bars."""
    _settings["worker"] = True


def progress_mode() -> str:
    """`bars`, `lines` or `off` for this process (`auto` resolved)."""
    mode = _settings["progress"]
    if mode != "auto":
        return "lines" if mode == "bars" and _settings["worker"] else mode
    interactive = (sys.stderr.isatty() and not os.environ.get("CI")
                   and os.environ.get("TERM") != "dumb")
    return "bars" if interactive and not _settings["worker"] else "lines"


# ---------------------------------------------------------------------------- logging
class ConsoleFormatter(logging.Formatter):
    """Plain messages (no timestamp) for INFO and below; `WARNING message` above."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.levelno >= logging.WARNING:
            return f"{record.levelname} {message}"
        return message


class ConsoleHandler(logging.StreamHandler):
    """The console handler of every job (conf/config.yaml): records marked `result=True` (the
    results table, the run id) pass whatever the verbosity; records marked `progress=True`
    (per-epoch lines) are left to the bar when one is drawn; while a bar is on screen, lines
    are written through tqdm so the bar is redrawn below them."""

    min_level = logging.INFO  # the handler's own level stays NOTSET, so results can pass

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "progress", False) and progress_mode() != "lines":
            return False
        if record.levelno < self.min_level and not getattr(record, "result", False):
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        if not getattr(tqdm, "_instances", None):
            super().emit(record)
            return
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def result(logger: logging.Logger, message: str) -> None:
    """Log a line the user ran the command for (shown even with verbosity=quiet)."""
    logger.info(message, extra={"result": True})


def write(text: str, stream: IO[str] | None = None) -> None:
    """Print `text` (a report, not a log record) without breaking a bar on screen."""
    from tqdm import tqdm

    tqdm.write(text, file=stream or sys.stdout)


# ---------------------------------------------------------------------------- TensorFlow
_tf_started = False


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Around TensorFlow's import and device probe: its C++ start-up lines (written to file
    descriptor 2 before absl logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach them)
    are captured; known noise goes to the DEBUG log, anything else is logged as a warning."""
    global _tf_started
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _tf_started:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            _tf_started = True
            captured.seek(0)
            _replay(captured.read().decode(errors="replace"))


def _replay(text: str) -> None:
    for line in filter(None, (line.strip() for line in text.splitlines())):
        if any(noise in line for noise in TF_NOISE):
            log.debug(f"[tensorflow] {line}")
        else:
            log.warning(f"[tensorflow] {line}")


# ---------------------------------------------------------------------------- progress
def _clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class EpochProgress:
    """Per-epoch progress of one Keras fit: one updating bar (epoch k/n, loss, val_loss,
    s/epoch) in `bars` mode; one log line per epoch otherwise (always in app.log)."""

    def __init__(self, name: str, epochs: int) -> None:
        self.name, self.epochs = name, int(epochs)
        self.mode = progress_mode()
        self.bar: Any = None
        self._tick = time.perf_counter()
        if self.mode == "bars":
            from tqdm import tqdm

            self.bar = tqdm(total=self.epochs, desc=f"[fit] {name}", unit="epoch",
                            leave=False, dynamic_ncols=True, file=sys.stderr)

    def epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        now = time.perf_counter()
        seconds, self._tick = now - self._tick, now
        shown = {k: v for k, v in logs.items() if k in ("loss", "val_loss")}
        text = " ".join(f"{k} {float(v):.4f}" for k, v in shown.items())
        if self.bar is not None:
            self.bar.set_postfix_str(f"{text} {seconds:.2f} s/epoch", refresh=False)
            self.bar.update(1)
        if self.mode != "off":
            log.info(f"[fit] {self.name} epoch {epoch + 1}/{self.epochs} {text} "
                     f"({seconds:.2f} s)", extra={"progress": True})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class GridProgress:
    """Progress of a multirun: cells done / total, failures, ETA.

    Fed by `done(outcomes)` with every outcome known so far (the lines of the sweep's
    cells.jsonl, which each job appends when it ends, in whatever process it ran). A bar in
    `bars` mode; in `lines` mode one line per finished cell on stderr.
    """

    def __init__(self, total: int | None, label: str = "cells") -> None:
        self.total, self.label = total, label
        self.mode = progress_mode()
        self.started = time.perf_counter()
        self.seen = 0
        self.bar: Any = None
        if self.mode == "bars":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"[{label}]", unit="cell", position=0,
                            dynamic_ncols=True, file=sys.stderr)

    def done(self, statuses: list[str]) -> None:
        if len(statuses) <= self.seen:
            return
        failed = statuses.count("FAILED")
        if self.bar is not None:
            self.bar.set_postfix_str(f"failed {failed}", refresh=False)
            self.bar.update(len(statuses) - self.seen)
        elif self.mode == "lines":
            elapsed = time.perf_counter() - self.started
            eta = ""
            if self.total:
                left = max(self.total - len(statuses), 0)
                eta = f", ETA {_clock(elapsed / len(statuses) * left)}"
            of = f"/{self.total}" if self.total else ""
            print(f"[{self.label}] {len(statuses)}{of} done ({failed} failed), "
                  f"{_clock(elapsed)} elapsed{eta}", file=sys.stderr, flush=True)
        self.seen = len(statuses)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
