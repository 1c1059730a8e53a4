"""DFNN on UNSW-NB15 with default settings: time to TEST ROC-AUC 0.99 (issue: fast cells).

    BENCH_DATA_DIR=../shared/datasets python scripts/bench_dfnn.py [--repeats 3] [--thesis]
        [--old-default]

Runs `python -m bench dataset=unsw model=dfnn` (with model.verbose=2) `--repeats` times, each
a fresh process (imports, data load from the Parquet cache, fit, scoring, figures, MLflow
logging: the whole command a user runs), into a throw-away MLflow store created beforehand by
an untimed cheap run (a store is created once per machine, not once per run). `--thesis` also
runs the thesis preset `experiment=unsw_dfnn` (batch 32, up to 50 epochs) once, to compare;
`--old-default` the defaults before issue 17 (batch 512, lr 1e-3, up to 30 epochs, patience 5).

Per run it reads from the output: TEST ROC-AUC (the results table), fit seconds (preprocess +
fit, from the table) and, from Keras' per-epoch lines, the number of epochs and the training
time per epoch (steps x ms/step). Prints the medians and "time to TEST ROC-AUC 0.99" = the
median whole-command wall time when every run reached 0.99. With `--thesis`, also the ratio
of per-epoch times thesis/default (old/default), which load changes less than absolute times.
Exits 1 when a default run fails, misses 0.99, or its median wall time exceeds `--budget`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = ["dataset=unsw", "model=dfnn", "model.verbose=2"]
THESIS = ["experiment=unsw_dfnn", "model.verbose=2"]
# the defaults before issue 17, for `--old-default`
OLD_DEFAULT = [*DEFAULT, "model.batch_size=512", "model.learning_rate=0.001", "model.epochs=30",
               "model.patience=5", "model.steps_per_execution=1"]
# Keras verbose=2, one line per epoch: "97/97 - 1s - 5ms/step - loss: 0.27 - val_loss: 0.19"
EPOCH_LINE = re.compile(r"^(\d+)/\d+ - [\d.]+m?s - ([\d.]+)(m?s|us)/step", re.MULTILINE)
UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


@dataclass
class Run:
    wall: float
    fit: float
    test_auc: float
    epochs: int
    epoch_seconds: float  # median training time of one epoch (steps x time per step)


def parse(output: str, wall: float) -> Run:
    """Figures of one run from bench's console output (see the module docstring)."""
    test = re.search(r"^TEST\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", output, re.MULTILINE)
    fit = re.search(r"fit ([\d.]+) s", output)
    if test is None or fit is None:
        raise RuntimeError(f"no results table in the output:\n{output[-3000:]}")
    epochs = [int(steps) * float(per) * UNIT_SECONDS[unit]
              for steps, per, unit in EPOCH_LINE.findall(output)]
    return Run(wall, float(fit.group(1)), float(test.group(4)), len(epochs),
               statistics.median(epochs) if epochs else float("nan"))


def run_bench(overrides: list[str], store: Path, env: dict[str, str]) -> Run:
    command = [sys.executable, "-m", "bench", *overrides,
               f"tracking.uri=sqlite:///{store / 'mlflow.db'}",
               f"hydra.run.dir={store / 'outputs' / str(time.time_ns())}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return parse(done.stdout + done.stderr, wall)


def show(label: str, run: Run) -> None:
    print(f"{label:>10}: wall {run.wall:6.1f} s  fit {run.fit:6.1f} s  epochs {run.epochs:3d}  "
          f"per epoch {run.epoch_seconds:6.3f} s  TEST ROC-AUC {run.test_auc:.4f}  "
          f"(load {os.getloadavg()[0]:.1f})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--thesis", action="store_true", help="also run experiment=unsw_dfnn")
    parser.add_argument("--old-default", action="store_true",
                        help="also run the defaults before issue 17 once")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds, whole command")
    parser.add_argument("--target", type=float, default=0.99, help="TEST ROC-AUC to reach")
    args = parser.parse_args(argv)
    if not os.environ.get("BENCH_DATA_DIR"):
        parser.error("set BENCH_DATA_DIR to the folder with UNSW_NB15_testing-set.csv(.gz)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                         if p)}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-dfnn-") as folder:
        store = Path(folder)
        # untimed: creates the store's schema and fills the dataset cache
        run_bench(["dataset=unsw", "model=logreg"], store, env)
        runs = []
        for i in range(args.repeats):
            runs.append(run_bench(DEFAULT, store, env))
            show(f"default {i + 1}", runs[-1])
        others = {label: run_bench(overrides, store, env) for label, overrides, wanted in
                  (("thesis", THESIS, args.thesis), ("old", OLD_DEFAULT, args.old_default))
                  if wanted}
        for label, other in others.items():
            show(label, other)

    def median(field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs)

    wall = median("wall")
    reached = all(r.test_auc >= args.target for r in runs)
    print(f"median of {len(runs)}: wall {wall:.1f} s, fit {median('fit'):.1f} s, epochs "
          f"{median('epochs'):g}, per epoch {median('epoch_seconds'):.3f} s, TEST ROC-AUC "
          f"{median('test_auc'):.4f}")
    outcome = f"{wall:.1f} s" if reached else "not reached by every run"
    print(f"time to TEST ROC-AUC {args.target}: {outcome} (budget {args.budget:g} s)")
    for label, other in others.items():
        print(f"{label}/default: wall {other.wall / wall:.1f}x, fit "
              f"{other.fit / median('fit'):.1f}x, per epoch "
              f"{other.epoch_seconds / median('epoch_seconds'):.1f}x, epochs "
              f"{other.epochs} vs {median('epochs'):g}")
    print(f"load average now {os.getloadavg()}")
    return 0 if reached and wall <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
