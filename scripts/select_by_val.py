"""Which pipeline does each validation pick, and how does the pick do on the TEST sets?

    python scripts/select_by_val.py [--uri sqlite:///mlruns/mlflow.db] [--experiment nslkdd_zoo]
                                    [--metric val_balanced_accuracy]

Reads the runs of one MLflow experiment (e.g. `-m experiment=nslkdd_zoo`), groups them by
split option and pipeline (config_id: the config without the seed), averages every metric over
the seeds (= the grouped split's draws), and per split picks the pipeline with the best mean
VAL `--metric` -- VAL only; TEST is shown beside the pick, never used to make it. Prints the
full table (mean +- sd over seeds), the picks, and the published NSL-KDD figures
(docs/literature_nslkdd.csv) for comparison.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd

from bench import tracking

SHOWN = ("val_f1", "val_balanced_accuracy", "test_accuracy", "test_balanced_accuracy",
         "test21_accuracy", "test21_balanced_accuracy")
LITERATURE = Path(__file__).resolve().parent.parent / "docs" / "literature_nslkdd.csv"


def runs_frame(uri: str, experiment: str) -> pd.DataFrame:
    """One row per finished run: split, model, selector, seed, config_id and its metrics."""
    ids = tracking.experiments(uri)
    if experiment not in ids:
        raise SystemExit(f"error: no experiment {experiment!r} in {uri} (have: {sorted(ids)})")
    rows = []
    for run in tracking.search_all_runs(uri, [ids[experiment]], "attributes.status = 'FINISHED'"):
        tags = run.data.tags
        rows.append({"split": tags.get("split"), "pipeline": f"{tags.get('selector')}/"
                     f"{tags.get('model')}", "seed": tags.get("seed"),
                     "config_id": tags.get("config_id"), **run.data.metrics})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="sqlite:///mlruns/mlflow.db")
    parser.add_argument("--experiment", default="nslkdd_zoo")
    parser.add_argument("--metric", default="val_balanced_accuracy")
    args = parser.parse_args()
    if not args.metric.startswith("val_"):
        raise SystemExit(f"error: --metric {args.metric!r} must be a VAL metric (val_...)")
    frame = runs_frame(args.uri, args.experiment)
    shown = [m for m in dict.fromkeys((args.metric, *SHOWN)) if m in frame.columns]
    grouped = frame.groupby(["split", "pipeline"])[shown]
    means, spreads = grouped.mean(), grouped.std().fillna(0.0)
    table = means.map("{:.4f}".format) + " +- " + spreads.map("{:.4f}".format)
    table.insert(0, "seeds", grouped.size())
    short = table.index[table["seeds"] < table["seeds"].max()].tolist()
    if short:
        print(f"WARNING: fewer seeds than the others (unfinished?): {short}")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(f"mean +- sd over seeds, experiment {args.experiment!r}\n{table}\n")
        for split, part in means.groupby(level="split"):
            best = part[args.metric].idxmax()
            picked = part.loc[best]
            print(f"split={split}: VAL ({args.metric}) picks {best[1]}: "
                  + ", ".join(f"{m} {picked[m]:.4f}" for m in shown))
    print("\npublished (trained on KDDTrain+), accuracy on KDDTest+ / KDDTest-21:")
    with LITERATURE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            print(f"  {row['source']:24} {row['model']:24} {float(row['test_accuracy']):.4f} / "
                  f"{float(row['test21_accuracy']):.4f}")


if __name__ == "__main__":
    main()
