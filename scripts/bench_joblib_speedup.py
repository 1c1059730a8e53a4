"""A grid of 8 cheap cells on the joblib launcher with 2 workers vs 1 (docs/resume.md).

    PYTHONPATH=. python scripts/bench_joblib_speedup.py [--repeats 3] [--rows 20000]

Each measurement is the whole command (`python -m bench -m hydra/launcher=joblib
hydra.launcher.n_jobs=N model=logreg,decision_tree seed=0,1,2,3 ...`) on a fresh sqlite store,
so it includes start-up, the store's creation and every MLflow write. Prints the median wall
time of each and the speed-up; the machine's load average before and after, since other
processes on a shared machine change the figures. Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_grid(workers: int, rows: int) -> float:
    with tempfile.TemporaryDirectory(prefix="joblib-speedup-") as tmp:
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
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; CPUs: {os.cpu_count()}")
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):  # interleaved, so a change of load hits both alike
        for workers in (1, 2):
            times[workers].append(run_grid(workers, args.rows))
            print(f"  {workers} worker(s): {times[workers][-1]:.1f} s", flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"8 cells, median of {args.repeats}: 1 worker {one:.1f} s, 2 workers {two:.1f} s, "
          f"speed-up {one / two:.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
