"""Grid throughput by launcher: Hydra's basic (sequential) launcher, joblib, Ray (a local Ray
started by the launcher) on the same grid of cheap cells.

    .venv/bin/python scripts/bench_launchers.py [--cells 8] [--workers 2] [--n-rows 2000]

Each launcher runs the grid `model=logreg,decision_tree seed=0..` once, in a fresh process, into
its own throw-away sqlite store. Printed per launcher: wall time of the whole command (process
start, imports, Ray/joblib start-up included), cells per minute, and the per-cell overhead =
wall / cells - median in-run compute (fit_seconds + TEST scoring time, from the runs' metrics):
what the launcher and bench's per-run work (data, MLflow logging, model artifact) add to the
work a cell is about. With parallel workers wall / cells shrinks, so the overhead can be
negative once compute dominates. The machine is shared: compare launchers within one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LAUNCHERS = {
    "basic (sequential)": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs={workers}"],
    "ray (local)": ["hydra/launcher=ray", "hydra.launcher.init.num_cpus={workers}"],
}


def grid(cells: int) -> list[str]:
    seeds = ",".join(str(s) for s in range(max(1, cells // 2)))
    return ["-m", "model=logreg,decision_tree", f"seed={seeds}"]


def run_launcher(args: list[str], folder: Path, n_rows: int) -> float:
    from bench import tracking

    # the store's schema made before timing: parallel workers must not race to create it
    tracking.prepare_store(f"sqlite:///{folder}/mlflow.db")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", *args, f"dataset.n_rows={n_rows}",
                    f"tracking.uri=sqlite:///{folder}/mlflow.db",
                    f"hydra.sweep.dir={folder}/multirun"],
                   check=True, capture_output=True, text=True, cwd=folder)
    return time.perf_counter() - start


def compute_seconds(folder: Path) -> list[float]:
    """fit + TEST scoring seconds of every run in the store."""
    from bench import tracking

    uri = f"sqlite:///{folder}/mlflow.db"
    runs = tracking.search_all_runs(uri, list(tracking.experiments(uri).values()))
    out = []
    for run in runs:
        metrics, params = run.data.metrics, run.data.params
        test_rows = float(params["dataset.n_rows"]) * float(params["split.test_size"])
        out.append(metrics["fit_seconds"] + test_rows / metrics["score_rows_per_second"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-rows", type=int, default=2000)
    options = parser.parse_args()
    cells = 2 * max(1, options.cells // 2)
    print(f"grid: {cells} cells ({' '.join(grid(cells)[1:])}, dataset.n_rows={options.n_rows}),"
          f" {options.workers} workers for joblib and ray")
    print(f"{'launcher':<20}{'cells':>6}{'wall s':>9}{'cells/min':>11}"
          f"{'compute s/cell':>16}{'overhead s/cell':>17}")
    for name, extra in LAUNCHERS.items():
        with tempfile.TemporaryDirectory(prefix="bench-launchers-") as tmp:
            folder = Path(tmp)
            args = grid(cells) + [a.format(workers=options.workers) for a in extra]
            wall = run_launcher(args, folder, options.n_rows)
            compute = compute_seconds(folder)
        if len(compute) != cells:
            raise SystemExit(f"{name}: {len(compute)} runs recorded, expected {cells}")
        median = statistics.median(compute)
        print(f"{name:<20}{cells:>6}{wall:>9.1f}{60 * cells / wall:>11.1f}"
              f"{median:>16.3f}{wall / cells - median:>17.2f}")


if __name__ == "__main__":
    main()
