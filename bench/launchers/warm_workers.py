"""Joblib workers that start warm: forked from a server that imported a cell's libraries once.

Hydra's joblib launcher runs jobs in loky worker processes. Loky starts each worker as a fresh
interpreter, so with 2 workers on 2 cores both import pandas, scikit-learn, MLflow and skops
(~3 s each) before their first cell, while the launching process waits: on a grid of cheap
cells, 2 workers were slower than 1 (which runs the cells in the launching process).

With `hydra/launcher=joblib` (loky backend, more than one job at a time) bench starts
multiprocessing's fork server as soon as the command line's config is composed, with
`PRELOAD` imported in it, and tells loky to start its workers from that server: the imports
happen once, in a single-threaded process (fork-safe, unlike forking the launching process,
which holds MLflow's and the progress bar's threads), overlapping the launching process's
validation, and each worker is a fork of it. `hydra.launcher.backend=multiprocessing` is left
as Hydra runs it.

A worker of a fork server imports the launching program's `__main__` again (multiprocessing's
rule; loky's own workers do not). That is harmless for bench's entry points (`python -m bench`,
the `bench` script: their work is under a main guard) and for `python -c`, which has no file;
a program of the user's, which may lack the guard, keeps loky's own workers.

Loky's own workers end when the launching process dies (their job queue closes); workers of a
fork server would wait for their idle timeout instead, so each watches the launching process
(`watch_launcher`) and exits when it is gone: after a kill -9 of the grid, nothing goes on
running, and the run a worker had open is left RUNNING for the next start to reap, as a killed
sequential grid leaves its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
LAUNCHER_ENV = "BENCH_LAUNCHER"  # "<pid>:<start>" of the launching process, for its workers

# What every cell imports (bench.app.task and bench.experiment), whatever its model; first, the
# server's own fast exit.
PRELOAD = ("bench.launchers.preloaded", "bench.experiment", "bench.resume",
           "bench.launchers.jobs", "bench.validate", "bench.cells", "mlflow.pyfunc",
           "mlflow.store.tracking.sqlalchemy_store", "skops.io", "sklearn.linear_model",
           "sklearn.tree", "sklearn.ensemble", "xgboost", "matplotlib.pyplot",
           "bench.evaluation.plots")

_started = False


def wanted(launcher: Any) -> bool:
    """Whether `launcher` (a `hydra.launcher` config) is the joblib launcher with the loky
    backend running more than one job at a time."""
    from bench.launchers.jobs import launcher_workers

    target = str(launcher.get("_target_", ""))
    backend = launcher.get("backend") or "loky"
    return "Joblib" in target and backend == "loky" and launcher_workers(launcher) > 1


def start(launcher: Any) -> bool:
    """For a `wanted` launcher: start the fork server (imports in the background) and make it
    how loky starts workers in this process. Idempotent; returns whether workers start warm.
    Where fork servers do not exist (Windows), workers start as loky starts them."""
    global _started
    if _started or not wanted(launcher):
        return _started
    if "forkserver" not in multiprocessing.get_all_start_methods() or not _main_reimport_safe():
        return False
    from joblib.externals.loky.backend.context import set_start_method

    from bench.tracking import process_start

    os.environ[LAUNCHER_ENV] = f"{os.getpid()}:{process_start(os.getpid()) or ''}"
    multiprocessing.set_forkserver_preload(list(PRELOAD))
    multiprocessing.forkserver.ensure_running()
    set_start_method("forkserver", force=True)
    log.debug("[workers] joblib workers start from a fork server that preloads %s", PRELOAD)
    _started = True
    return True


def _main_reimport_safe() -> bool:
    """Whether workers may import this program's `__main__` again: bench's own entry points,
    or no main file at all (`python -c`, an interactive session)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:  # python -m <module>
        return spec.name == "bench.__main__"
    main_file = getattr(main, "__file__", None)
    return main_file is None or Path(main_file).stem in ("bench", "bench-script")


_watching = False


def watch_launcher(poll_seconds: float = 0.5) -> None:
    """In a warm worker (once per process; elsewhere nothing): a daemon thread that ends this
    process as soon as the launching process is gone."""
    global _watching
    launcher = os.environ.get(LAUNCHER_ENV, "")
    pid, _, started = launcher.partition(":")
    if _watching or not pid.isdigit() or int(pid) == os.getpid():
        return
    from bench.tracking import process_alive

    def watch() -> None:
        while process_alive(int(pid), started or None):
            threading.Event().wait(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="bench-watch-launcher", daemon=True).start()
    _watching = True
