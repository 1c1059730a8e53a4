"""Wall time of a 16-cell cheap grid, this checkout against another one, back to back.

    .venv/bin/python scripts/bench_grid.py [--against ../baseline] [--cells 16] [--repeats 3]

The grid is `python -m bench -m model=logreg dataset.n_rows=20000 model.C=<16 values>` (the
cells share their data; `--vary seed` gives each cell its own split instead), run in a fresh
process into a store that already exists, the two checkouts interleaved (`--against` is put
first on PYTHONPATH). Prints each median and the ratio against / this (target >= 2x against
the code before the fast-cells work).
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


def grid(checkout: Path, store: Path, cells: int, vary: str) -> float:
    values = (",".join(str(2.0 ** k) for k in range(cells)) if vary == "C"
              else ",".join(str(s) for s in range(cells)))
    key = "model.C" if vary == "C" else "seed"
    command = [sys.executable, "-m", "bench", "-m", "model=logreg", "dataset.n_rows=20000",
               f"{key}={values}", f"tracking.uri=sqlite:///{store}/mlflow.db",
               f"hydra.sweep.dir={store}/multirun"]
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
    parser.add_argument("--vary", choices=("C", "seed"), default="C")
    options = parser.parse_args()
    checkouts = {"this checkout": REPO}
    if options.against is not None:
        checkouts[f"against {options.against}"] = options.against.resolve()
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as folder:
        stores = {name: Path(folder) / str(i) for i, name in enumerate(checkouts)}
        for name, checkout in checkouts.items():  # each creates its store once, untimed
            stores[name].mkdir()
            grid(checkout, stores[name], 1, options.vary)
        for _ in range(options.repeats):
            for name, checkout in checkouts.items():
                times[name].append(grid(checkout, stores[name], options.cells, options.vary))
    mine = statistics.median(times["this checkout"])
    print(f"grid of {options.cells} logreg cells (varying {options.vary}), median of "
          f"{options.repeats}:")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {name:40s} {median:7.2f} s  (min {min(seconds):.2f}, max {max(seconds):.2f})"
              f"   {median / mine:.2f}x this checkout's time")


if __name__ == "__main__":
    main()
