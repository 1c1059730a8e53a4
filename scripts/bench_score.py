"""Speed and memory of `bench score` against calling the bare pipeline.

    BENCH_DATA_DIR=/work/shared/datasets python scripts/bench_score.py [--run RUN_ID
        --tracking-uri URI] [--repeats 5] [--big-rows 2000000]

Without --run, trains an xgboost run on NSL-KDD (KDDTrain+ -> TRAIN/VAL, KDDTest+ -> TEST) in a
temporary store. Then, in a temporary folder (nothing is written to the repository):
1. KDDTest+ as a CSV with a header (22,544 rows): median rows/s over --repeats of
   - end to end: `bench score` (fetch and load the model, read, check, score, write) with
     exact=auto (the default), true (the run's 1,000-row batches) and false (one call per
     chunk), vs the bare pipeline already in memory (pandas.read_csv, anomaly_score, flag,
     to_csv) and vs the bare pipeline that also loads the model file, and
   - scoring only: Decision.predict vs anomaly_score on the same in-memory frame;
   ratio = bare seconds / bench seconds (target >= 0.8).
2. KDDTest+ repeated to --big-rows rows (a CSV of ~300 MB): `bench score` (exact=auto) and
   the bare pipeline, each a fresh subprocess: peak resident memory (ru_maxrss), rows/s and
   the ratio; and the peak of a subprocess that only reads the whole file with pandas:
   bounded memory means bench's peak stays flat.
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

import pandas as pd

REPO = Path(__file__).resolve().parent.parent


def train_run(uri: str) -> str:
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from bench.app import CONFIG_DIR
    from bench.experiment import run_experiment

    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("config", overrides=[f"tracking.uri={uri}", "dataset=nslkdd",
                                           "model=xgboost"], return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return run_experiment(cfg, choices).run_id


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kddtest_csv(folder: Path) -> Path:
    from bench.data import nslkdd

    dataset = nslkdd.load(os.environ["BENCH_DATA_DIR"], None, "off")
    path = folder / "kddtest.csv"
    dataset.test.drop(columns=["label", "attack_family"]).to_csv(path, index=False)
    return path


def compare(uri: str, run_id: str, csv: Path, folder: Path, repeats: int) -> None:
    from bench import tracking
    from bench.models.decision import Decision, load_decision
    from bench.models.scoring import anomaly_score
    from bench.score import parse_args, run

    local, info = tracking.download_model(uri, run_id, folder / "model")
    decision = load_decision(local)
    features = [name for name, _ in info["inputs"]]
    rows = sum(1 for _ in csv.open()) - 1

    def bench_end_to_end(exact: str = "auto") -> None:
        run(parse_args([f"tracking.uri={uri}", f"run={run_id}", f"input={csv}",
                        f"output={folder / f'bench_{exact}.csv'}", f"exact={exact}"]),
            echo=lambda *a: None)

    def bare_end_to_end(with_load: bool = False) -> None:
        pipeline = load_decision(local).pipeline if with_load else decision.pipeline
        frame = pd.read_csv(csv)
        scores = anomaly_score(pipeline, frame[features])
        pd.DataFrame({"anomaly_score": scores, "flag": scores >= decision.threshold}).to_csv(
            folder / "bare.csv", index=False)

    frame = pd.read_csv(csv)[features]
    bare_e2e = median_seconds(bare_end_to_end, repeats)
    bare_loading = median_seconds(lambda: bare_end_to_end(True), repeats)
    bare_scoring = median_seconds(lambda: anomaly_score(decision.pipeline, frame), repeats)
    free = Decision(decision.pipeline, decision.threshold, {"batch_rows": len(frame)})
    auto = median_seconds(bench_end_to_end, repeats)
    results = {
        "end to end, exact=auto": (auto, bare_e2e),
        "  vs bare loading the model": (auto, bare_loading),
        "end to end, exact=true": (median_seconds(lambda: bench_end_to_end("true"), repeats),
                                   bare_e2e),
        "end to end, exact=false": (median_seconds(lambda: bench_end_to_end("false"), repeats),
                                    bare_e2e),
        "scoring only, run's batches": (median_seconds(lambda: decision.predict(frame),
                                                       repeats), bare_scoring),
        "scoring only, one call": (median_seconds(lambda: free.predict(frame), repeats),
                                   bare_scoring),
    }
    outputs = [pd.read_csv(folder / f"bench_{exact}.csv") for exact in ("auto", "true", "false")]
    print(f"pipeline scores row-wise (exact=auto scores a chunk per call): {decision.row_wise}")
    print(f"outputs of exact=auto, true and false identical: "
          f"{outputs[0].equals(outputs[1]) and outputs[0].equals(outputs[2])}")
    print(f"KDDTest+ CSV, {rows:,} rows, median of {repeats} (bench includes fetching and "
          "loading the model, checking every value and writing the key columns):")
    for name, (ours, bare) in results.items():
        print(f"  {name:28} bench {rows / ours:>10,.0f} rows/s   bare {rows / bare:>10,.0f} "
              f"rows/s   ratio {bare / ours:.2f}")


BARE_SCRIPT = """import sys, pandas as pd
from bench.models.decision import load_decision
from bench.models.scoring import anomaly_score
decision = load_decision(sys.argv[1])
frame = pd.read_csv(sys.argv[2])
scores = anomaly_score(decision.pipeline, frame[sys.argv[4].split(",")])
pd.DataFrame({"anomaly_score": scores, "flag": scores >= decision.threshold}).to_csv(
    sys.argv[3], index=False)
"""


def peak_rss_mib(command: list[str]) -> tuple[float, float]:
    """(peak resident MiB, seconds) of `command` run as a fresh subprocess."""
    script = ("import resource, subprocess, sys, time\n"
              "t = time.perf_counter()\n"
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
              "time.perf_counter() - t)\n")
    out = subprocess.run([sys.executable, "-c", script, *command], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    kib, seconds = out.stdout.split()
    return int(kib) / 1024, float(seconds)


def big_file(uri: str, run_id: str, csv: Path, folder: Path, rows: int) -> None:
    text = csv.read_text().splitlines(keepends=True)
    header, body = text[0], "".join(text[1:])
    copies = -(-rows // (len(text) - 1))
    big = folder / "big.csv"
    with big.open("w") as out:
        out.write(header)
        for _ in range(copies):
            out.write(body)
    total = copies * (len(text) - 1)
    print(f"\n{big.name}: KDDTest+ x {copies} = {total:,} rows, "
          f"{big.stat().st_size / 2**20:,.0f} MiB")
    score = [sys.executable, "-m", "bench.score", f"tracking.uri={uri}", f"run={run_id}",
             f"input={big}", f"output={folder / 'big_scores.csv'}"]
    from bench import tracking

    local, info = tracking.download_model(uri, run_id, folder / "bare_model")
    bare_peak, bare_seconds = peak_rss_mib([
        sys.executable, "-c", BARE_SCRIPT, str(local), str(big), str(folder / "bare_big.csv"),
        ",".join(name for name, _ in info["inputs"])])
    print(f"  bare pipeline (one read_csv)     peak RSS {bare_peak:>7,.0f} MiB   "
          f"{total / bare_seconds:>9,.0f} rows/s (process wall time)")
    for chunk in (50_000, 200_000):
        peak, seconds = peak_rss_mib([*score, f"chunk_rows={chunk}"])
        print(f"  bench score chunk_rows={chunk:<8,} peak RSS {peak:>7,.0f} MiB   "
              f"{total / seconds:>9,.0f} rows/s (process wall time)   ratio "
              f"{bare_seconds / seconds:.2f}")
    small_peak, _ = peak_rss_mib([*score[:5], f"input={csv}",
                                  f"output={folder / 'small.parquet'}"])
    print(f"  bench score on KDDTest+ alone    peak RSS {small_peak:>7,.0f} MiB")
    read_peak, _ = peak_rss_mib([sys.executable, "-c",
                                 f"import pandas as pd; pd.read_csv({str(big)!r})"])
    print(f"  pandas.read_csv of the whole file peak RSS {read_peak:>7,.0f} MiB (for scale)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-rows", type=int, default=2_000_000)
    args = parser.parse_args()
    if "BENCH_DATA_DIR" not in os.environ:
        sys.exit("set BENCH_DATA_DIR to the folder holding KDDTrain+.txt and KDDTest+.txt")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = args.tracking_uri or f"sqlite:///{folder / 'mlflow.db'}"
        run_id = args.run or train_run(uri)
        print(f"model: run {run_id} in {uri}")
        csv = kddtest_csv(folder)
        compare(uri, run_id, csv, folder, args.repeats)
        if args.big_rows:
            big_file(uri, run_id, csv, folder, args.big_rows)


if __name__ == "__main__":
    main()
