"""Where the wall time of one bench cell goes, stage by stage (issue: fast cells).

    .venv/bin/python scripts/profile_cell.py [--repeats 3] [--cells cheap,nslkdd] [--grid 8]

Each cell runs as `python -m bench ...` would, in a fresh process started with `-X importtime`,
into a throw-away MLflow store that already exists (a store is created once per machine, not once
per run). Inside the child, bench's stage functions are wrapped with timers (exclusive time:
a stage nested in another counts once), so the same script profiles older and newer code:
wrappers are set only on the functions that exist. Stages: imports (from -X importtime),
store set-up (experiment, run start/end), data load, split + audit, fit, scoring, metrics,
figures (drawing + saving), MLflow logging (params, metrics, text, artifacts) and the model
logging; `other` is the rest of the process's wall time (interpreter start, Hydra, config).

`--grid N` also runs N cheap cells inside ONE process (a Hydra multirun) and prints the
per-cell overhead: (wall of the grid - wall of a 1-cell grid) / (N - 1) - fit - scoring.
Machines are shared and noisy: read medians and the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

CELLS = {
    "default": [],  # `bench` with no arguments: xgboost on 20,000 synthetic rows
    "cheap": ["model=logreg", "dataset=synthetic"],
    "nslkdd": ["model=xgboost", "dataset=nslkdd"],
}
STAGES = ("imports", "store set-up", "data load", "split + audit", "fit", "scoring", "metrics",
          "figures", "MLflow logging", "model logging", "other")
# (module, attribute, stage): wrapped where they exist
PATCHES = [
    ("bench.tracking", "preflight", "store set-up"),
    ("bench.tracking", "get_or_create_experiment", "store set-up"),
    ("mlflow", "start_run", "store set-up"),
    ("mlflow", "end_run", "store set-up"),
    ("bench.experiment", "audit", "split + audit"),
    ("bench.data.split", "StratifiedSplit.__call__", "split + audit"),
    ("bench.data.split", "BlockedSplit.__call__", "split + audit"),
    ("bench.experiment", "fit_pipeline", "fit"),  # before the stages could be reused
    ("bench.experiment", "_fit", "fit"),
    ("bench.experiment", "anomaly_score", "scoring"),
    ("bench.experiment", "score_in_batches", "scoring"),
    ("bench.experiment", "binary_metrics", "metrics"),
    ("bench.experiment", "family_recall", "metrics"),
    ("bench.experiment", "_classification_report", "metrics"),
    ("bench.experiment", "_log_figures", "figures"),  # before figures had a helper process
    ("bench.evaluation.figures", "start", "figures"),  # inline, or handing the work over
    ("bench.evaluation.figures", "PendingFigures.folder", "figures"),  # waiting for it
    ("bench.tracking", "log_params", "MLflow logging"),
    ("bench.tracking", "log_metrics", "MLflow logging"),
    ("bench.tracking", "log_text", "MLflow logging"),
    ("bench.tracking", "log_dict", "MLflow logging"),
    ("bench.tracking", "log_epoch", "MLflow logging"),
    ("bench.tracking", "log_artifacts", "MLflow logging"),
    ("bench.tracking", "log_dataset_inputs", "MLflow logging"),
    ("bench.tracking", "prepare_model", "model logging"),  # its files (skops by the helper)
    ("bench.tracking", "log_model", "model logging"),
]


# ------------------------------------------------------------------------------ child side
class Timers:
    """Exclusive wall time per stage: time spent in a nested timed call counts only there."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []

    def wrap(self, function: Any, stage: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [stage, time.perf_counter(), 0.0]  # stage, start, nested seconds
            self._stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.perf_counter() - frame[1]
                self.seconds[stage] += spent - frame[2]
                if self._stack:
                    self._stack[-1][2] += spent

        timed.__wrapped__ = function
        return timed


def _install(timers: Timers) -> None:
    import importlib

    for module_name, attribute, stage in PATCHES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if attribute.startswith("*"):
            names = [n for n in dir(module) if n.endswith(attribute[1:])]
            for name in names:
                setattr(module, name, timers.wrap(getattr(module, name), stage))
            continue
        owner_name, _, name = attribute.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        if owner is not None and hasattr(owner, name):
            setattr(owner, name, timers.wrap(getattr(owner, name), stage))
    # the dataset loader: whatever `build` instantiates whose target lives in bench.data
    import bench.experiment as experiment

    build = experiment.build

    def build_timed(node: Any, **kwargs: Any) -> Any:
        target = str(node.get("_target_", "")) if hasattr(node, "get") else ""
        is_loader = target.startswith("bench.data.") and ".split." not in target
        return (timers.wrap(build, "data load") if is_loader else build)(node, **kwargs)

    experiment.build = build_timed


def child(argv: list[str]) -> None:
    started = time.perf_counter()
    timers = Timers()
    import bench.app

    warm_up = getattr(bench.app, "_warm_up_helper", None)
    if warm_up is None:  # older code: wrap the stages now
        _install(timers)
    else:  # wrap them once the helper is started: importing the stages' modules before that
        # would start it later than `python -m bench` does
        def warm_up_then_install(*args: Any, **kwargs: Any) -> None:
            warm_up(*args, **kwargs)
            _install(timers)

        bench.app._warm_up_helper = warm_up_then_install
    sys.argv = ["bench", *argv]
    try:
        bench.app.main()
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    finally:
        print("PROFILE " + json.dumps({"seconds": dict(timers.seconds),
                                       "child_wall": time.perf_counter() - started}))


# ----------------------------------------------------------------------------- parent side
def _import_seconds(stderr: str) -> float:
    """Sum of the cumulative times of top-level imports in `-X importtime` output."""
    total = 0
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if match and match.group(2) == "":
            total += int(match.group(1))
    return total / 1e6


def run_cell(args: list[str], store: Path) -> dict[str, float]:
    command = [sys.executable, "-X", "importtime", __file__, "--child", *args,
               f"tracking.uri=sqlite:///{store}/mlflow.db", f"hydra.run.dir={store}/outputs",
               f"hydra.sweep.dir={store}/multirun"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - start
    profile = next((json.loads(line.removeprefix("PROFILE ")) for line in
                    result.stdout.splitlines() if line.startswith("PROFILE ")), None)
    if result.returncode != 0 or profile is None:
        sys.exit(f"cell {args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    stages = {"imports": _import_seconds(result.stderr), **profile["seconds"]}
    stages["other"] = wall - sum(stages.values())
    stages["wall"] = wall
    return stages


def _table(title: str, samples: list[dict[str, float]]) -> None:
    wall = statistics.median(s["wall"] for s in samples)
    print(f"\n{title}: wall median {wall:.2f} s over {len(samples)} run(s)")
    print(f"  {'stage':18s} {'median s':>9s} {'share':>7s}")
    for stage in STAGES:
        value = statistics.median(s.get(stage, 0.0) for s in samples)
        print(f"  {stage:18s} {value:9.3f} {value / wall:7.1%}")
    overhead = statistics.median(s["wall"] - s.get("fit", 0) - s.get("scoring", 0)
                                 for s in samples)
    print(f"  {'all but fit+score':18s} {overhead:9.3f} {overhead / wall:7.1%}")


GRIDS = {  # what changes from cell to cell: the model's setting (same data) or the seed
    "same data": lambda cells: [f"model.C={','.join(str(2.0 ** k) for k in range(cells))}"],
    "new data per cell": lambda cells: [f"seed={','.join(str(s) for s in range(cells))}"],
}


def grid_overhead(n: int, store: Path) -> None:
    """Per-cell overhead inside one multirun process: N cells vs 1 cell, for a grid whose
    cells share their data (a model setting varies) and one where each cell has its own
    (the seed varies: another split)."""
    for name, sweep in GRIDS.items():
        def grid(cells: int, sweep: Any = sweep) -> dict[str, float]:
            return run_cell(["-m", *CELLS["cheap"], "dataset.n_rows=20000", *sweep(cells)],
                            store)

        one, many = grid(1), grid(n)
        extra = (many["wall"] - one["wall"]) / (n - 1)
        work = (many.get("fit", 0) + many.get("scoring", 0)) / n
        print(f"\ngrid of {n} cheap cells in one process, {name}: {many['wall']:.2f} s "
              f"(1 cell: {one['wall']:.2f} s)")
        print(f"  each extra cell {extra:.3f} s, of which fit+scoring {work:.3f} s -> "
              f"per-cell overhead {extra - work:.3f} s")
        for stage in STAGES[1:-1]:
            print(f"    {stage:18s} {many.get(stage, 0.0) / n:7.3f} s per cell")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", default="cheap,nslkdd")
    parser.add_argument("--grid", type=int, default=8, help="cells in the grid (0: skip)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder)
        run_cell(CELLS["cheap"] + ["dataset.n_rows=2000"], store)  # creates the store once
        for name in options.cells.split(","):
            samples = [run_cell(CELLS[name], store) for _ in range(options.repeats)]
            _table(f"cell '{name}' ({' '.join(CELLS[name])})", samples)
        if options.grid > 1:
            grid_overhead(options.grid, store)


if __name__ == "__main__":
    main()
