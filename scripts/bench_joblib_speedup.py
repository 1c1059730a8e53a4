"""A grid of 8 cheap cells on the joblib launcher with 2 workers vs 1 (docs/resume.md).

    PYTHONPATH=. python scripts/bench_joblib_speedup.py [--repeats 3] [--rows 20000]
        [--fresh-store]

Each measurement is the whole command (`python -m bench -m hydra/launcher=joblib
hydra.launcher.n_jobs=N model=logreg,decision_tree seed=0,1,2,3 ...`), so it includes start-up
(1 worker: the cells run in the launching process; 2 workers: forks of a fork server that
imported pandas, scikit-learn, MLflow once, bench.launchers.warm_workers) and every MLflow
write, into a sqlite store that exists (`--fresh-store`: a new one each time, so
the ~3 s of schema creation is in every figure too). Prints the median wall time of each, the
speed-up, and the bound the fixed costs put on it: with F seconds that do not shrink with
workers and 8 cells of c seconds, 2 workers give at most (F + 8c) / (F + 4c). Also the
machine's load average before and after, since other processes change the figures. Not a
timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_grid(workers: int, rows: int, store: str | None = None) -> tuple[float, list[float]]:
    """(wall seconds of the command, seconds of each cell as its job measured them)."""
    with tempfile.TemporaryDirectory(prefix="joblib-speedup-") as tmp:
        tmp = store or tmp
        command = [sys.executable, "-m", "bench", "-m", "hydra/launcher=joblib",
                   f"hydra.launcher.n_jobs={workers}", "model=logreg,decision_tree",
                   "seed=0,1,2,3", f"dataset.n_rows={rows}",
                   f"tracking.uri=sqlite:///{tmp}/mlruns/mlflow.db",
                   f"hydra.sweep.dir={tmp}/multirun"]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False,
                                env={**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"})
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
        finished = result.stdout.count("MLflow run ")
        if finished != 8:
            raise SystemExit(f"expected 8 runs, the output names {finished}")
        lines = (Path(tmp) / "multirun" / "cells.jsonl").read_text().splitlines()
        return seconds, [json.loads(line)["seconds"] for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--fresh-store", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; CPUs: {os.cpu_count()}")
    times: dict[int, list[float]] = {1: [], 2: []}
    fixed, cell = [], []
    with tempfile.TemporaryDirectory(prefix="joblib-store-") as kept:
        store = None if args.fresh_store else kept
        if store is not None:
            run_grid(1, args.rows, store)  # creates the store, untimed
        for _ in range(args.repeats):  # interleaved, so a change of load hits both alike
            for workers in (1, 2):
                seconds, cells = run_grid(workers, args.rows, store)
                times[workers].append(seconds)
                if workers == 1:  # what does not shrink with workers, and what might
                    fixed.append(seconds - sum(cells))
                    cell.append(statistics.median(cells))
                print(f"  {workers} worker(s): {seconds:.1f} s", flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"8 cells, median of {args.repeats}: 1 worker {one:.1f} s, 2 workers {two:.1f} s, "
          f"speed-up {one / two:.2f}x")
    f, c = statistics.median(fixed), statistics.median(cell)
    print(f"1 worker: {f:.1f} s outside cells (start-up, store, launcher), cells {c:.2f} s "
          f"each (median) -> at most {(f + 8 * c) / (f + 4 * c):.2f}x with 2 workers")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
