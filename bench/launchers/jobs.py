"""One job of a parallel multirun (hydra/launcher=joblib or ray): its share of the cores and
its console lines prefixed `[job N]`.

Hydra's joblib launcher runs N jobs at once in worker processes; a model that takes every core
(n_jobs=-1, XGBoost's default, BLAS) would run N x cores threads that fight. So each job gets
cores // N threads: environment variables read by the libraries loaded later (OpenMP, BLAS,
joblib's cpu_count behind n_jobs=-1, TensorFlow) and a threadpoolctl limit for those already
loaded. BENCH_MODEL_THREADS, when set, chooses the number instead.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

THREADS_ENV = "BENCH_MODEL_THREADS"
# what OpenMP, the BLAS libraries, joblib/loky (n_jobs=-1) and TensorFlow read for their threads
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "LOKY_MAX_CPU_COUNT", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def parallel_workers() -> int:
    """How many jobs the current multirun's launcher runs at once (1 outside a multirun, for
    the basic launcher, or without a Hydra config)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return 1
    hydra = HydraConfig.get()
    return launcher_workers(hydra.launcher) if hydra.mode == RunMode.MULTIRUN else 1


def launcher_workers(launcher: Any) -> int:
    """How many jobs a multirun with this `hydra.launcher` config runs at once: joblib's
    n_jobs as joblib resolves it (1: joblib runs the jobs in the launching process, in turn),
    every core for Ray, 1 for the basic launcher."""
    target = str(launcher.get("_target_", ""))
    if "Joblib" in target:
        from joblib import effective_n_jobs

        return max(1, effective_n_jobs(int(launcher.get("n_jobs") or -1)))
    if "Ray" in target:
        return cores()  # Ray places jobs on every core it was given
    return 1


def runs_in_this_process(launcher: Any) -> bool:
    """Whether a multirun with this `hydra.launcher` config runs its cells in the launching
    process, in turn: the basic launcher, or joblib's with one job at a time."""
    target = str(launcher.get("_target_", ""))
    return target.endswith(".BasicLauncher") or (
        "Joblib" in target and launcher_workers(launcher) == 1)


def threads_per_job(workers: int) -> int:
    """BENCH_MODEL_THREADS if set, else this machine's cores shared among `workers` (>= 1)."""
    chosen = os.environ.get(THREADS_ENV)
    if chosen:
        return max(1, int(chosen))
    return max(1, cores() // max(1, workers))


@contextmanager
def job_console() -> Iterator[None]:
    """Around one job of a parallel multirun: thread limits, and stdout, stderr and the
    logging handlers writing through a `[job N] ` prefix. Outside one: nothing changes."""
    workers = parallel_workers()
    if workers <= 1:
        yield
        return
    from hydra.core.hydra_config import HydraConfig
    from threadpoolctl import threadpool_limits

    from bench.launchers.warm_workers import watch_launcher

    watch_launcher()  # a worker of a fork server ends with the launching process
    threads = threads_per_job(workers)
    os.environ.update({name: str(threads) for name in (THREADS_ENV, *THREAD_VARIABLES)})
    prefix = f"[job {HydraConfig.get().job.num}] "
    with threadpool_limits(limits=threads), _prefixed_console(prefix):
        print(f"{threads} thread(s) per model ({workers} parallel jobs)")
        yield


class _Prefixed(io.TextIOBase):
    """A text stream that writes `prefix` at the start of every line to `target`.
    Hand-written: the standard library has no line-prefixing stream."""

    def __init__(self, target: Any, prefix: str) -> None:
        self.target, self.prefix, self._at_start = target, prefix, True

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            if self._at_start:
                out.append(self.prefix)
            out.append(piece)
            self._at_start = piece.endswith("\n")
        self.target.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.target, "isatty", lambda: False)())


@contextmanager
def _prefixed_console(prefix: str) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and h.stream in saved]
    streams = [h.stream for h in handlers]
    sys.stdout, sys.stderr = _Prefixed(sys.stdout, prefix), _Prefixed(sys.stderr, prefix)
    for handler in handlers:
        handler.setStream(sys.stdout if handler.stream is saved[0] else sys.stderr)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)
