"""The run's helper process: work a run hands off so that it overlaps the run's own.

Two jobs, each a pure function of what it is sent:
- "figures": draw a run's PNGs (`bench.evaluation.figures.draw`), ~0.3 s of pure Python a run,
  done while the main process logs the model, metrics and reports;
- "skops": write a fitted pipeline in skops' format (`bench.models.decision.skops_dump`).
  Importing skops builds its trusted-type lists by importing all of scikit-learn and scanning
  every loaded module for each numpy ufunc: ~1 s in a process that has MLflow loaded. The
  helper imports it while the run loads its data and fits, with far fewer modules loaded.

The helper's work overlaps the run's only where the run leaves a core idle (loading, the
audit, logging, a single-threaded fit); beside a fit that uses every core (xgboost on 2 cores)
it competes for them, and the run is no faster (measured: docs/scale-out.md).

One helper per bench process (`python -m bench.helper`), started by `warm_up` once the command
line is valid (bench.app) or as a run begins, and ended at exit when it has no job left.
Jobs are answered in the order they were sent. If the helper cannot start or dies, the work is
done inline (`Gone`); an error inside a job is raised in the parent with the helper's traceback
(`JobFailed`). The helper reads its jobs from its stdin, so it ends when its parent does, even
after a kill -9.

Why not multiprocessing / concurrent.futures: their "spawn" and "forkserver" start methods
import the parent's __main__ again in the child, which runs a user's unguarded script twice,
and "fork" copies MLflow's threads and locks. A plain subprocess with a pipe has neither
problem; the messages are pickles between two processes of this same program.
"""

from __future__ import annotations

import atexit
import collections
import logging
import pickle
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from typing import IO, Any

log = logging.getLogger(__name__)


class Gone(Exception):
    """The helper died (or never started) before answering: do the work in this process."""


class JobFailed(RuntimeError):
    """A job raised inside the helper; the message holds the helper's traceback."""


class Ticket:
    """One job sent to the helper; `wait()` returns its result."""

    def __init__(self, helper: _Helper, kind: str, sending: threading.Thread) -> None:
        self.kind, self._helper, self._sending = kind, helper, sending
        self._reply: tuple[str, Any] | None = None

    def wait(self) -> Any:
        """The job's result; raises JobFailed (the job raised) or Gone (the helper died)."""
        self._helper.read_until(self)
        assert self._reply is not None
        status, detail = self._reply
        if status == "gone":
            raise Gone(detail)
        if status == "error":
            raise JobFailed(f"{self.kind}: failed in bench's helper process:\n{detail}")
        return detail


class _Helper:
    """The helper process, its two pipes, and the jobs sent but not yet answered."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.helper"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._unanswered: collections.deque[Ticket] = collections.deque()
        self._last_send: threading.Thread | None = None
        self._send_failed = False
        self.dead = False

    def send(self, kind: str, blob: bytes) -> Ticket:
        """Hand a pickled job over without waiting: a pipe holds 64 KiB and the helper reads
        a job only once it has finished the one before, so each job is written by a thread
        (after the previous job's, keeping their order)."""
        previous = self._last_send

        def write() -> None:
            if previous is not None:
                previous.join()
            try:
                _write_blob(self.process.stdin, blob)
            except OSError:
                self._send_failed = True

        sending = threading.Thread(target=write, name="bench-helper-send", daemon=True)
        ticket = Ticket(self, kind, sending)
        self._unanswered.append(ticket)
        self._last_send = sending
        sending.start()
        return ticket

    def read_until(self, ticket: Ticket) -> None:
        """Read replies, in order, until `ticket` has its own."""
        while ticket._reply is None:
            earliest = self._unanswered[0]
            earliest._sending.join()
            reply: tuple[str, Any] = ("gone", "the helper process is gone")
            if not (self.dead or self._send_failed):
                try:
                    reply = _read(self.process.stdout)
                except (OSError, EOFError, pickle.UnpicklingError, struct.error):
                    self._died()
            else:
                self._died()
            earliest._reply = reply
            self._unanswered.popleft()

    def stop_if_idle(self) -> None:
        """At exit: end a helper that has no job of ours left (it may still be importing, and
        it holds our stderr: a caller reading it would wait for the imports to end)."""
        if not self._unanswered and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _died(self) -> None:
        global _helper
        if not self.dead:
            log.debug("[helper] the helper process is gone; working inline, a new one next run")
        self.dead = True
        if _helper is self:
            _helper = None
        self.process.kill()


_helper: _Helper | None = None
_unavailable = False
_inline = False


def work_inline(inline: bool) -> None:
    """Do the helper's jobs in this process: for the jobs of a parallel grid, whose workers
    already keep every core busy (a helper per worker would only add its interpreter's
    start-up)."""
    global _inline
    _inline = inline


def wanted_by(cfg: Any) -> bool:
    """Whether a run with this config has work for the helper: figures to draw
    (`evaluation.plots`) or a skops file to write (`tracking.model_format`)."""
    from bench.evaluation import chosen_plots

    return bool(chosen_plots(cfg.evaluation.get("plots", "all"))
                or cfg.tracking.get("model_format", "skops") == "skops")


def warm_up() -> None:
    """Start the helper now, so that its imports (matplotlib, skops: ~2.5 s in a fresh
    process) overlap the run's own start-up, loading and fit."""
    if not _inline:
        running(start=True)


def running(start: bool = False) -> _Helper | None:
    """The live helper; with `start`, one is started when there is none. None when jobs are
    done inline or no process can be started."""
    global _helper, _unavailable
    if _inline:
        return None
    if _helper is None and start and not _unavailable:
        try:
            _helper = _Helper()
            atexit.register(_helper.stop_if_idle)
        except OSError as error:
            log.debug(f"[helper] working inline: no helper process ({error})")
            _unavailable = True
    return _helper


def submit(kind: str, payload: Any, start: bool = True) -> Ticket | None:
    """Send job `kind` with `payload` to the helper; None when it must be done here (no
    helper, or a payload that cannot be pickled)."""
    helper = running(start)
    if helper is None:
        return None
    try:
        blob = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # e.g. a custom estimator holding a lambda
        log.debug(f"[helper] {kind} done inline: its input cannot be pickled ({error})")
        return None
    return helper.send(kind, blob)


def call(kind: str, payload: Any, here: Callable[[Any], Any]) -> Any:
    """`here(payload)`, done by the helper when one is already running (never started for
    it). A job that fails in the helper is done again here, so that its error is raised as
    it would be inline, with its own type."""
    ticket = submit(kind, payload, start=False)
    if ticket is not None:
        try:
            return ticket.wait()
        except (Gone, JobFailed) as error:
            log.debug(f"[helper] {kind} done inline: {error}")
    return here(payload)


def _write(stream: IO[bytes] | None, message: Any) -> None:
    _write_blob(stream, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _write_blob(stream: IO[bytes] | None, blob: bytes) -> None:
    assert stream is not None
    stream.write(struct.pack("<Q", len(blob)) + blob)
    stream.flush()


def _read(stream: IO[bytes] | None) -> Any:
    return pickle.loads(_read_blob(stream))


def _read_blob(stream: IO[bytes] | None) -> bytes:
    assert stream is not None
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the other process closed the pipe")
    return stream.read(struct.unpack("<Q", header)[0])


# --------------------------------------------------------------------- the helper's side
def _jobs() -> dict[str, Callable[[Any], Any]]:
    from bench.evaluation.figures import draw
    from bench.models.decision import skops_dump

    return {"figures": lambda job: draw(*job), "skops": skops_dump}


def serve(jobs: IO[bytes], replies: IO[bytes]) -> None:
    """Do each (kind, payload) read from `jobs`; reply ("ok", result) or ("error",
    traceback). Returns at end of input (the parent closed the pipe or died)."""
    import skops.io  # noqa: F401  (imported while the parent is busy)

    import bench.evaluation.plots  # noqa: F401
    handlers = _jobs()
    while True:
        try:
            blob = _read_blob(jobs)
        except EOFError:
            return
        try:
            kind, payload = pickle.loads(blob)
            reply: tuple[str, Any] = ("ok", handlers[kind](payload))
        except Exception:  # reported to the parent
            reply = ("error", traceback.format_exc())
        _write(replies, reply)


if __name__ == "__main__":
    import signal

    from bench.shutdown import skip_final_collection

    # Ctrl-C reaches the whole process group: the parent reports it and ends its runs; the
    # helper ends with the parent (end of input), finishing the job in hand, without a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    skip_final_collection()  # it holds the parent's stderr: a caller reading it waits for us
    _replies = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    serve(sys.stdin.buffer, _replies)
