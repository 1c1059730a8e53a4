"""`GridSummary`: the progress and the end-of-run summary of every multirun (grids and sweeps),
registered for all runs in conf/config.yaml `hydra.callbacks`.

How the pieces meet, for every launcher:
- `on_job_end` runs in the job's process (the launching process for the basic launcher, a
  worker for joblib and Ray). It takes the cell's outcome that the task recorded
  (`bench.cells.take()`: FINISHED, or SKIPPED for a reused run), or FAILED from Hydra's job
  status, and appends one JSON line to `<hydra.sweep.dir>/cells.jsonl`.
- The launching process cannot see jobs end inside a joblib/Ray batch (it gets their results
  only when the whole batch returns), so its progress reads that file: a thread polls it
  twice a second and moves the bar (cells done / total, failures, ETA), or prints one plain
  line per finished cell when stderr is not a terminal. Bars are drawn by the launching
  process only; workers report epochs as plain lines (several processes share the terminal).
- `on_multirun_end` (launching process) prints the table ranked by the VAL objective with
  TEST F1 beside it, the FINISHED/FAILED/SKIPPED counts, the total time and the commands to
  look further; it is also saved as `<sweep dir>/summary.txt`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from bench import cells, console
from bench.launchers import warm_workers

log = logging.getLogger(__name__)
# objectives where lower is better (everything else a grid ranks is a VAL score)
LOWER_IS_BETTER = ("_fpr", "_seconds", "loss", "_brier")


class GridSummary(Callback):
    """Progress bar / lines during a multirun and a ranked summary at its end."""

    def __init__(self, poll_seconds: float = 0.5) -> None:
        self.poll_seconds = float(poll_seconds)
        self._launcher_pid = os.getpid()
        self._started = 0.0
        self._path: Path | None = None
        self._progress: console.GridProgress | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Sent to joblib/Ray workers inside Hydra's context: without the launcher's thread."""
        state = dict(self.__dict__)
        state.update(_progress=None, _stop=None, _thread=None)
        return state

    # -- the launching process
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        console.configure(str(config.get("progress", "auto")), str(config.get("verbosity", "info")))
        self._started = time.perf_counter()
        warm_workers.start(config.hydra.launcher)  # if the command line's check did not
        self._path = Path(str(config.hydra.sweep.dir)) / cells.CELLS_FILE
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.unlink(missing_ok=True)  # a reused sweep dir starts a new count
        cells.follow_grid(self._path)
        label = "trials" if config.hydra.sweeper.get("n_trials") is not None else "cells"
        self._progress = console.GridProgress(multirun_size(config), label)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="bench-grid-progress",
                                        daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._update()

    def _update(self) -> None:
        if self._progress is not None and self._path is not None:
            self._progress.done([line["status"] for line in cells.read_lines(self._path)])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if "bench.experiment" in sys.modules:  # the last cell's run, if it waits for figures
            sys.modules["bench.experiment"].finish_pending_runs()
        cells.follow_grid(None)
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
        if self._path is None:
            return
        self._update()
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        lines = cells.read_lines(self._path)
        if not lines and sys.exc_info()[0] is not None:
            return  # the launch itself failed (its error is printed): no table of 0 cells
        text = summary_text(lines, config, time.perf_counter() - self._started)
        (self._path.parent / "summary.txt").write_text(text + "\n")
        console.write(text)

    # -- the job's process (any launcher)
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if os.getpid() != self._launcher_pid:
            console.mark_worker()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        outcome = cells.take()  # always taken, so the next job starts empty
        if config.hydra.get("mode") != RunMode.MULTIRUN:
            return
        line = job_line(config, job_return, outcome)
        cells.append_line(Path(str(config.hydra.sweep.dir)) / cells.CELLS_FILE, line)


def job_line(config: DictConfig, job_return: JobReturn,
             outcome: cells.CellOutcome | None) -> dict[str, Any]:
    """One cells.jsonl line: the job's number, trial number, overrides and outcome."""
    if job_return.status == JobStatus.FAILED or outcome is None:
        error = job_return._return_value if job_return.status == JobStatus.FAILED else None
        outcome = cells.CellOutcome(cells.FAILED)
        extra = {"error": f"{type(error).__name__}: {error}"[:300] if error else None}
    else:
        extra = {}
    overrides = [str(o) for o in config.hydra.overrides.task]
    trial = config.get("tracking", {}).get("trial_number")
    return {"job": int(config.hydra.job.num), "trial": trial,
            "cell": " ".join(o for o in overrides if "tracking." not in o.split("=")[0]),
            "experiment": str(config.tracking.experiment or
                              config.hydra.runtime.choices.get("dataset", "")),
            **outcome.to_dict(), **extra}


def multirun_size(config: DictConfig) -> int | None:
    """Cells a multirun will run: n_trials for a sweeper that has it, else the product of the
    command line's (and hydra.sweeper.params') discrete sweeps; None when unknown."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if sweeper.get("n_trials") is not None:
        return int(sweeper.n_trials)
    args = [str(o) for o in config.hydra.overrides.task]
    args += [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except Exception:  # Hydra reports a bad override itself; the bar just has no total
        return None
    total = 1
    for override in parsed:
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                return None
            total *= len(list(override.sweep_string_iterator()))
    return total


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value


def _objective(config: DictConfig) -> tuple[str, bool]:
    """(name of the ranked objective, higher is better)."""
    name = str(_first(_plain(config.optimized_metric)))
    direction = _first(_plain(config.hydra.sweeper.get("direction")))
    if direction is not None:
        return name, str(direction).lower() == "maximize"
    return name, not any(part in name for part in LOWER_IS_BETTER)


def _number(value: Any) -> float:
    value = _first(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def summary_text(lines: list[Mapping[str, Any]], config: DictConfig, seconds: float) -> str:
    """The ranked table, counts, total time, the best cell and the commands to look further."""
    name, higher = _objective(config)
    uri = _masked(str(config.tracking.uri))
    ranked = sorted(lines, key=lambda line: _rank_key(line, higher))
    header = f"{'rank':>4}  {'status':<8} {name:>12} {'test_f1':>9} {'time':>8}  {'run':<32}  cell"
    rows = [header, *(_row(i, line) for i, line in enumerate(ranked, start=1))]
    counts = {s: sum(line["status"] == s for line in lines)
              for s in (cells.FINISHED, cells.FAILED, cells.SKIPPED)}
    rows.append(f"{len(lines)} cells: {counts[cells.FINISHED]} FINISHED, "
                f"{counts[cells.FAILED]} FAILED, {counts[cells.SKIPPED]} skipped; "
                f"total {console._clock(seconds)}; ranked by {name} (VAL, "
                f"{'higher' if higher else 'lower'} is better), TEST F1 beside it")
    rows += _best_and_failures(ranked, lines, name)
    experiments = sorted({str(line.get("experiment")) for line in lines if line.get("experiment")})
    report = " ".join(f"--experiment {e}" for e in experiments)
    rows.append(f"look further: mlflow ui --backend-store-uri {uri}")
    rows.append(f"              python -m bench.report --tracking-uri {uri} {report}".rstrip())
    return "\n".join(rows)


def _row(rank: int, line: Mapping[str, Any]) -> str:
    """One ranked cell: status, VAL objective, TEST F1, seconds, run id, overrides."""
    cell = line.get("cell") or ""
    if line.get("trial") is not None:
        cell = f"trial {line['trial']}: {cell}"
    return (f"{rank:>4}  {line['status']:<8} {_number(line.get('objective')):>12.4f} "
            f"{_number(line.get('test_f1')):>9.4f} {_number(line.get('seconds')):>7.1f}s"
            f"  {line.get('run_id') or '-':<32}  {cell}")


def _best_and_failures(ranked: list[Mapping[str, Any]], lines: list[Mapping[str, Any]],
                       name: str) -> list[str]:
    """The best cell by the objective, then one line per failed job with its error."""
    rows = []
    best = next((line for line in ranked if not math.isnan(_number(line.get("objective")))),
                None)
    if best is not None:
        rows.append(f"best: {name}={_number(best['objective']):.4f} test_f1="
                    f"{_number(best.get('test_f1')):.4f} run {best.get('run_id')} "
                    f"({best.get('cell') or 'defaults'})")
    rows += [f"failed job {line['job']} ({line.get('cell')}): {line['error']}"
             for line in lines if line.get("error")]
    return rows


def _rank_key(line: Mapping[str, Any], higher: bool) -> tuple[int, float]:
    value = _number(line.get("objective"))
    if math.isnan(value):
        return (1, 0.0)
    return (0, -value if higher else value)


def _masked(uri: str) -> str:
    from bench.tracking import mask_secrets

    return mask_secrets(uri)
