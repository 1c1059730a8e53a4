"""Fault injection: a grid and an Optuna sweep killed (SIGKILL) at random moments, then resumed.

    PYTHONPATH=. python scripts/bench_fault_injection.py [--kills 10] [--cells 16] [--trials 20]

For each of the grid (`--cells` cells: model=logreg,decision_tree x seeds) and the sweep
(`--trials` xgboost trials), with `resume=true` throughout:
1. the uninterrupted command on a fresh store: its wall time T0;
2. on another fresh store, the same command killed `--kills` times, each attempt after a random
   delay drawn uniformly in [0.05, 0.25] x T0, then run to its end: the sum of the attempts'
   wall times is the total compute.
Prints cells / FINISHED runs / duplicates / RUNNING left for the grid, COMPLETE / RUNNING
trials and RUNNING MLflow runs for the sweep, and compute vs T0. Not a timed test.

The lower bound of the ratio: every kill loses the start-up of its attempt and the part of the
cell (or trial) it interrupted, on average half of one: 1 + kills x (start-up + cell / 2) / T0.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg",
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def grid_command(folder: Path, cells: int) -> list[str]:
    seeds = ",".join(str(s) for s in range(max(1, cells // 2)))
    return [sys.executable, "-m", "bench", "-m", "model=logreg,decision_tree", f"seed={seeds}",
            "dataset.n_rows=20000", "resume=true", f"tracking.uri={uri(folder)}",
            f"hydra.sweep.dir={folder / 'multirun'}"]


def sweep_command(folder: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "bench", "-m", "hparams_search=xgboost_optuna",
            "model.n_estimators=int(interval(20,80))", f"hydra.sweeper.n_trials={trials}",
            "dataset.n_rows=5000", "resume=true", f"tracking.uri={uri(folder)}",
            f"hydra.sweeper.storage={folder / 'optuna.journal'}",
            f"hydra.sweep.dir={folder / 'sweep'}"]


def uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"


def attempt(command: list[str], kill_after: float | None) -> tuple[float, bool]:
    """(wall seconds, killed?) of one run of `command`, SIGKILLed after `kill_after` s."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=kill_after)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = True
    if not killed and proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit {proc.returncode}")
    return time.perf_counter() - started, killed


def interrupted(command: list[str], kills: int, t0: float, rng: random.Random
                ) -> tuple[float, int]:
    """Kill `command` `kills` times at random moments, then let it finish; (compute, kills)."""
    total, done = 0.0, 0
    while done < kills:
        seconds, killed = attempt(command, rng.uniform(0.05, 0.25) * t0)
        total += seconds
        done += killed
        if not killed:  # it finished before the kill: nothing left to interrupt
            break
    seconds, _ = attempt(command, None)
    return total + seconds, done


def grid_figures(folder: Path) -> dict[str, int]:
    from bench import tracking

    runs = tracking.runs_by_id(uri(folder))
    statuses = Counter(status for status, _ in runs.values())
    cells = {tags.get("cell_id") for status, tags in runs.values() if status == "FINISHED"}
    return {"cells": len(cells), "FINISHED runs": statuses["FINISHED"],
            "duplicates": statuses["FINISHED"] - len(cells),
            "RUNNING left": statuses["RUNNING"], "KILLED runs": statuses["KILLED"]}


def sweep_figures(folder: Path) -> dict[str, int]:
    import optuna

    from bench import tracking
    from bench.sweeps.storage import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="xgboost_optuna-synthetic",
                              storage=make_storage(str(folder / "optuna.journal")))
    states = Counter(t.state.name for t in study.trials)
    runs = tracking.runs_by_id(uri(folder))
    return {"COMPLETE trials": states["COMPLETE"], "FAIL trials": states["FAIL"],
            "RUNNING trials": states["RUNNING"],
            "RUNNING MLflow runs": sum(s == "RUNNING" for s, _ in runs.values())}


def measure(name: str, make: object, size: int, kills: int, rng: random.Random,
            figures: object) -> None:
    with tempfile.TemporaryDirectory(prefix=f"fault-{name}-") as tmp:
        clean, broken = Path(tmp) / "clean", Path(tmp) / "broken"
        t0, _ = attempt(make(clean, size), None)  # type: ignore[operator]
        compute, done = interrupted(make(broken, size), kills, t0, rng)  # type: ignore[operator]
        print(f"\n{name}: {size} {'cells' if name == 'grid' else 'trials'}, killed {done} times")
        for key, value in figures(broken).items():  # type: ignore[operator]
            print(f"  {key:22} {value}")
        print(f"  uninterrupted wall     {t0:8.1f} s")
        print(f"  interrupted compute    {compute:8.1f} s  ({compute / t0:.2f} x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("grid", "sweep"), default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    if args.only in (None, "grid"):
        measure("grid", grid_command, args.cells, args.kills, rng, grid_figures)
    if args.only in (None, "sweep"):
        measure("sweep", sweep_command, args.trials, args.kills, rng, sweep_figures)


if __name__ == "__main__":
    main()
