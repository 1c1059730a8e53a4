"""Harness overhead: `bench dataset=nslkdd model=xgboost` against a bare script doing the same work.

    BENCH_DATA_DIR=../shared/datasets .venv/bin/python scripts/bench_overhead.py [--repeats 5]

The bare script (this file with `--bare`) reads KDDTrain+/KDDTest+ with pandas, holds out a
stratified 20% VAL, one-hot encodes the categoricals and standardises the rest, fits the same
xgboost (300 trees, depth 6, hist), picks the best-F1 threshold on VAL with scikit-learn's
precision_recall_curve and scores TEST once: the work of a bench cell without the audit,
validation, figures, MLflow and the logged model. Both run as fresh processes, interleaved, into
a store that already exists; the script prints medians and the ratio bench / bare (target
<= 1.3x) and the same for `evaluation.plots=none`.
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


def bare() -> None:
    """The bench cell's work, written directly (see the module docstring)."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.metrics import f1_score, precision_recall_curve
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from xgboost import XGBClassifier

    from bench.data.nslkdd import CATEGORICAL, FEATURES, NUMERIC

    folder = Path(os.environ["BENCH_DATA_DIR"])
    names = [*FEATURES, "attack", "difficulty"]

    def read(stem: str) -> pd.DataFrame:
        path = next(p for p in (folder / f"{stem}.gz", folder / stem) if p.exists())
        return pd.read_csv(path, header=None, names=names)

    train, test = read("KDDTrain+.txt"), read("KDDTest+.txt")
    y_all = (train["attack"] != "normal").to_numpy(int)
    y_test = (test["attack"] != "normal").to_numpy(int)
    X_train, X_val, y_train, y_val = train_test_split(train[list(FEATURES)], y_all,
                                                      test_size=0.2, stratify=y_all,
                                                      random_state=0)
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
                              ("num", StandardScaler(), list(NUMERIC))])
    model = XGBClassifier(n_estimators=300, max_depth=6, learning_rate=0.1, tree_method="hist",
                          n_jobs=-1, random_state=0)
    model.fit(prep.fit_transform(X_train), y_train)
    val_scores = model.predict_proba(prep.transform(X_val))[:, 1]
    precision, recall, cuts = precision_recall_curve(y_val, val_scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    threshold = cuts[int(np.argmax(f1[:-1]))]
    test_scores = model.predict_proba(prep.transform(test[list(FEATURES)]))[:, 1]
    print(f"bare TEST F1 {f1_score(y_test, test_scores >= threshold):.4f}")


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True,
                   env={**os.environ, "MPLBACKEND": "Agg"})
    return time.perf_counter() - start


def main() -> None:
    if sys.argv[1:2] == ["--bare"]:
        bare()
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    if "BENCH_DATA_DIR" not in os.environ:
        sys.exit("set BENCH_DATA_DIR to the folder holding KDDTrain+.txt(.gz), KDDTest+.txt(.gz)")
    with tempfile.TemporaryDirectory() as folder:
        store = [f"tracking.uri=sqlite:///{folder}/mlflow.db", f"hydra.run.dir={folder}/out"]
        cell = [sys.executable, "-m", "bench", "dataset=nslkdd", "model=xgboost", *store]
        commands = {"bare script": [sys.executable, __file__, "--bare"],
                    "bench": cell, "bench, plots=none": [*cell, "evaluation.plots=none"]}
        _timed(cell)  # creates the store and warms the Parquet cache
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.repeats):  # interleaved: load changes hit every command alike
            for name, command in commands.items():
                times[name].append(_timed(command))
    base = statistics.median(times["bare script"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:20s} median {median:6.2f} s  (min {min(values):.2f}, max "
              f"{max(values):.2f}, n={len(values)})  {median / base:5.2f}x the bare script")


if __name__ == "__main__":
    main()
