"""Wall time of a 16-cell cheap grid, this checkout against another one, back to back.

    .venv/bin/python scripts/bench_grid.py [--against ../baseline] [--cells 16] [--repeats 3]

The grid is `python -m bench -m model=logreg dataset.n_rows=20000 model.C=<16 values>` (the
cells share their data; `--vary seed` gives each cell its own split instead; `--vary model`
is `selector=rf_importance model=<up to 6 supervised models>`, cells that share their data,
preprocessing and selector), run in a fresh process into a store that already exists, the two
checkouts interleaved (`--against` is put first on PYTHONPATH). `--dataset nslkdd` (with
BENCH_DATA_DIR) runs it on KDDTrain+ instead of 20,000 synthetic rows. Prints each median and
the ratio against / this (target >= 2x against the code before the fast-cells work).
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


MODELS = ("logreg", "decision_tree", "naive_bayes", "xgboost", "adaboost", "random_forest")


def grid(checkout: Path, store: Path, cells: int, vary: str, dataset: str) -> float:
    swept = {"C": ["model=logreg", "model.C=" + ",".join(str(2.0 ** k) for k in range(cells))],
             "seed": ["model=logreg", "seed=" + ",".join(str(s) for s in range(cells))],
             "model": ["selector=rf_importance", "model=" + ",".join(MODELS[:cells])]}[vary]
    data = ["dataset=synthetic", "dataset.n_rows=20000"] if dataset == "synthetic" else [
        f"dataset={dataset}"]
    command = [sys.executable, "-m", "bench", "-m", *swept, *data,
               f"tracking.uri=sqlite:///{store}/mlflow.db", f"hydra.sweep.dir={store}/multirun"]
    env = {**os.environ, "PYTHONPATH": str(checkout), "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        sys.exit(f"the grid failed in {checkout}:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, default=None)
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vary", choices=("C", "seed", "model"), default="C")
    parser.add_argument("--dataset", default="synthetic")
    options = parser.parse_args()
    if options.vary == "model" and options.cells > len(MODELS):
        parser.error(f"--vary model has {len(MODELS)} cells at most")
    checkouts = {"this checkout": REPO}
    if options.against is not None:
        checkouts[f"against {options.against}"] = options.against.resolve()
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as folder:
        stores = {name: Path(folder) / str(i) for i, name in enumerate(checkouts)}
        for name, checkout in checkouts.items():  # each creates its store once, untimed
            stores[name].mkdir()
            grid(checkout, stores[name], 1, options.vary, options.dataset)
        for _ in range(options.repeats):
            for name, checkout in checkouts.items():
                times[name].append(grid(checkout, stores[name], options.cells, options.vary,
                                        options.dataset))
    mine = statistics.median(times["this checkout"])
    print(f"grid of {options.cells} cells on {options.dataset} (varying {options.vary}), "
          f"median of {options.repeats}:")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {name:40s} {median:7.2f} s  (min {min(seconds):.2f}, max {max(seconds):.2f})"
              f"   {median / mine:.2f}x this checkout's time")


if __name__ == "__main__":
    main()
