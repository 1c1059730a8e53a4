"""Large inputs: run `python -m bench dataset=nslkdd model=xgboost` on a 2-million-row NSL-KDD.

    BENCH_DATA_DIR=../shared/datasets python scripts/bench_large_input.py [DATA_DIR]
        [--rows 2000000] [--runs 1] [--limit-gib 24] [-- extra overrides ...]

DATA_DIR holds a large KDDTrain+.txt made by scripts/make_large_nslkdd.py; without it (or
when it lacks the file) one is generated into a new temporary folder first. Each run is a
fresh `python -m bench` process with its own Parquet cache, MLflow store and Hydra output
folder under DATA_DIR (nothing is written into the repository): the first run parses the CSV
(cold cache), later ones (`--runs 2`) read the cache. Prints, per run, the wall time and the
peak resident memory of the bench process (`ru_maxrss` from `os.wait4`, Linux),
and exits 1 when a run fails or its peak exceeds `--limit-gib`.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def generate(rows: int, out_dir: str | None) -> Path:
    """Run make_large_nslkdd.py; returns the folder it wrote."""
    command = [sys.executable, str(HERE / "make_large_nslkdd.py"), "--rows", str(rows)]
    if out_dir:
        command.insert(2, out_dir)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    print(output, end="")
    return Path(output.split()[1]).parent  # "wrote <folder>/KDDTrain+.txt ..."


def run_bench(data_dir: Path, extra: list[str], run: int) -> tuple[int, float, float]:
    """One `python -m bench` run; returns (exit status, wall seconds, peak RSS GiB).

    The peak is `ru_maxrss` from `os.wait4` of this child (its own resource usage, not a
    running maximum over earlier runs); its output goes to bench-run/run<N>.log.
    """
    work = data_dir / "bench-run"
    work.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "bench", "dataset=nslkdd", "model=xgboost",
               f"paths.data_dir={data_dir}", f"paths.cache_dir={work / 'cache'}",
               f"tracking.uri=sqlite:///{work / 'mlruns' / 'mlflow.db'}",
               f"hydra.run.dir={work / 'outputs' / str(run)}", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    log = work / f"run{run}.log"
    start = time.perf_counter()
    with log.open("w") as handle:
        child = subprocess.Popen(command, env=env, cwd=REPO, stdout=handle,
                                 stderr=subprocess.STDOUT)
        _, wait_status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(wait_status)
    wall = time.perf_counter() - start
    lines = log.read_text(errors="replace").strip().splitlines()
    shown = [line for line in lines if line.startswith(
        ("[data] rows", "TEST", "VAL", "threshold", "error", "Traceback"))]
    print("\n".join(f"    {line}" for line in (shown or lines[-15:])))
    return child.returncode, wall, usage.ru_maxrss / 2**20  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", help="folder with a large KDDTrain+.txt")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows when generating")
    parser.add_argument("--runs", type=int, default=1, help="1: cold cache; 2: cold then warm")
    parser.add_argument("--limit-gib", type=float, default=24.0)
    parser.add_argument("overrides", nargs="*", help="extra bench overrides (after --)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).resolve() if args.data_dir else None
    if data_dir is None or not (data_dir / "KDDTrain+.txt").exists():
        data_dir = generate(args.rows, str(data_dir) if data_dir else None)
    with (data_dir / "KDDTrain+.txt").open("rb") as handle:
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))
    print(f"data: {data_dir / 'KDDTrain+.txt'} ({rows:,} rows); {platform.node()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    failed = False
    for run in range(1, args.runs + 1):
        status, wall, peak = run_bench(data_dir, args.overrides, run)
        over = peak > args.limit_gib
        failed |= status != 0 or over
        print(f"run {run} ({'cold' if run == 1 else 'warm'} cache): exit {status}, wall "
              f"{wall:.1f} s, peak RSS {peak:.2f} GiB (limit {args.limit_gib:g} GiB"
              f"{', EXCEEDED' if over else ''}), load average {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
