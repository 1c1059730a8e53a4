"""User-facing errors: printed as one clear message (no traceback) and exit non-zero."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class BenchError(Exception):
    """A problem with the user's input (config, data, environment), not a bug in bench."""

    exit_code = 2


class DataError(BenchError):
    """A data file is missing, malformed or fails verification.

    Messages name the file, and where known the column, row and offending value.
    """


class ConfigError(BenchError):
    """A configuration value is invalid (e.g. a budget outside (0, 1))."""


class TrackingError(BenchError):
    """The MLflow tracking store cannot be reached or written."""


def user_error_message(error: BaseException) -> str | None:
    """The one-line message of a user's mistake, or None for anything else (a bug).

    User mistakes: BenchError; Hydra's composition and override errors (unknown group option
    or key, bad override syntax, missing config); a BenchError raised inside a constructor that
    Hydra wrapped in its InstantiationException.
    """
    from hydra.errors import CompactHydraException, InstantiationException

    if isinstance(error, BenchError):
        return str(error)
    if isinstance(error, InstantiationException) and isinstance(error.__cause__, BenchError):
        return str(error.__cause__)
    if isinstance(error, CompactHydraException):
        lines = [str(error).strip()]
        if error.__cause__ is not None and str(error.__cause__).strip():
            lines.append(str(error.__cause__).strip())
        return " ".join(" ".join(line.split()) for line in lines)
    return None


def run_reporting_user_errors(entry: Callable[[], T]) -> T:
    """Run a command-line entry point; a user's mistake prints `error: ...` on stderr and
    exits with its code (2) and no traceback; anything else (a bug) propagates with its
    traceback.

    Hydra catches exceptions itself and prints (parts of) tracebacks; HYDRA_FULL_ERROR=1 lets
    them reach this handler instead, so every mode (single run, -m grid, Optuna sweep,
    bench.analyze, bench.report) reports the same way.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    with interrupts_reported("runs in progress were ended FAILED or KILLED, finished cells "
                             "are kept: run it again with resume=true to continue a grid or "
                             "sweep"):
        try:
            return entry()
        except Exception as error:
            sys.exit(_reported(error))


def exit_code_reporting_user_errors(entry: Callable[[], int]) -> int:
    """`entry()`'s exit code, for the commands whose `main` returns one (score, register,
    report); a user's mistake prints `error: ...` on stderr as above and gives its code."""
    with interrupts_reported("nothing half-written is kept under its final name"):
        try:
            return entry()
        except Exception as error:
            return _reported(error)


class Interrupted(KeyboardInterrupt):
    """A SIGTERM (a job scheduler's stop, `kill`), raised where the program is, as Ctrl-C
    raises KeyboardInterrupt: runs end (KILLED or FAILED) and files are discarded on the way
    out instead of the process dying with its runs RUNNING."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def raise_interrupted(signum: int, frame: Any) -> None:
    """A signal handler: raise Interrupted(signum)."""
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_reported(hint: str) -> Iterator[None]:
    """SIGTERM raises Interrupted while the body runs (in the main thread); an interruption
    (Ctrl-C or SIGTERM) ends the command with one line on stderr, `hint` appended, and the
    shell's exit status for the signal (130, 143), instead of a traceback."""
    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupted)
    except ValueError:  # not the main thread: leave signals to it
        previous = None
    try:
        yield
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
        print(f"\ninterrupted by {name}: {hint}", file=sys.stderr)
        sys.exit(128 + signum)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _reported(error: Exception) -> int:
    """Print a user's mistake as one line and return its exit code; re-raise anything else."""
    message = user_error_message(error)
    if message is None:
        raise error
    print(f"error: {message}", file=sys.stderr)
    return getattr(error, "exit_code", None) or getattr(error.__cause__, "exit_code", 2)


# What Hydra writes on stderr before it re-raises a failed job's exception
# (hydra.core.utils.JobReturn.return_value); bench reports that exception in its own line.
HYDRA_FAILED_JOB_LINE = "Error executing job with overrides: "


class _StderrWithoutHydrasJobLine:
    """`stream` without the lines that start with HYDRA_FAILED_JOB_LINE (Hydra writes each
    in one call); everything else is the stream's own (isatty, fileno, encoding ...)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if text.startswith(HYDRA_FAILED_JOB_LINE):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def hydras_failed_job_line_hidden() -> Iterator[None]:
    """Inside: Hydra's "Error executing job with overrides: [...]" line is not printed, so a
    job's error is one line (`error: ...`, run_reporting_user_errors; a grid's summary names
    each failed cell). Handlers that Hydra's logging set up meanwhile keep writing through."""
    original = sys.stderr
    sys.stderr = _StderrWithoutHydrasJobLine(original)
    try:
        yield
    finally:
        sys.stderr = original
