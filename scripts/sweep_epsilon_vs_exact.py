"""How close does a TPE search of the detector's epsilon get to the exact best-F1 threshold?

    BENCH_DATA_DIR=/work/shared/datasets .venv/bin/python scripts/sweep_epsilon_vs_exact.py \
        --dataset snmp_mib --trials 30 [-- extra overrides ...]

Runs, through the real CLI and into a throw-away MLflow store and Optuna journal under --out:
1. one run with `threshold=best_f1` (the exact F1 optimum over every distinct VAL score);
2. an `hparams_search=epsilon_optuna` sweep of --trials trials (`threshold=fixed`, epsilon on a
   log scale; every trial refits the model).
Prints VAL and TEST F1 of both, the thresholds, the number of fits and the wall time. The TEST
F1 of the sweep is that of its best trial by VAL F1, as a user would pick it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cli(args: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO_ROOT,
                                stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): python -m bench {' '.join(args)}; see {log}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--model", default="gaussian")
    parser.add_argument("--split", default=None, help="split option (snmp_mib: blocked)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("/tmp/sweep_epsilon_vs_exact"))
    parser.add_argument("overrides", nargs="*", help="extra overrides for both runs")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    out = args.out / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{out / 'mlflow.db'}"
    common = [f"dataset={args.dataset}", f"model={args.model}", f"tracking.uri={uri}",
              *([f"split={args.split}"] if args.split else []), *args.overrides]
    client = MlflowClient(uri)

    exact_seconds = _cli([*common, "threshold=best_f1", "tracking.experiment=exact",
                          f"hydra.run.dir={out / 'exact'}"], out / "exact.log")
    (exact,) = client.search_runs([client.get_experiment_by_name("exact").experiment_id])

    study_name = f"epsilon-{args.dataset}-{args.model}"
    sweep_seconds = _cli(["-m", "hparams_search=epsilon_optuna", *common,
                          "tracking.experiment=sweep", f"hydra.sweeper.n_trials={args.trials}",
                          f"hydra.sweeper.study_name={study_name}",
                          f"hydra.sweeper.storage={out / (study_name + '.journal')}",
                          f"hydra.sweep.dir={out / 'sweep'}"], out / "sweep.log")
    best = json.loads((out / "sweep" / "optuna" / "best.json").read_text())
    experiment_id = client.get_experiment_by_name("sweep").experiment_id
    (best_run,) = client.search_runs(
        [experiment_id], f"tags.`optuna.trial_number` = '{best['best']['number']}' and "
                         f"tags.`optuna.study_name` = '{study_name}'")
    trials = client.search_runs([experiment_id], "tags.`bench.sweep` = 'trial'",
                                max_results=1000)
    reached = [r for r in trials if r.data.metrics.get("val_f1", -1) >= exact.data.metrics[
        "val_f1"] - 1e-3]

    rows = {"exact best_f1 (1 fit)": (exact, exact_seconds),
            f"TPE epsilon, best of {args.trials} ({args.trials} fits)": (best_run, sweep_seconds)}
    print(f"\n{args.dataset} / {args.model}" + (f" / split={args.split}" if args.split else ""))
    print(f"{'':38}{'threshold':>12}{'VAL F1':>9}{'TEST F1':>9}{'wall s':>9}")
    for name, (run, seconds) in rows.items():
        m = run.data.metrics
        print(f"{name:38}{m['threshold']:>12.5g}{m['val_f1']:>9.4f}{m['test_f1']:>9.4f}"
              f"{seconds:>9.1f}")
    epsilon = best["best"]["params"].get("threshold.epsilon")
    if epsilon is not None:
        print(f"best epsilon {epsilon:.4g} (-log epsilon = {-math.log(epsilon):.5g})")
    print(f"trials within 0.001 VAL F1 of the exact optimum: {len(reached)} of {len(trials)}")


if __name__ == "__main__":
    main()
