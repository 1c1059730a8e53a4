"""Measure dataset=table on a large generated flow table: parse time, cached load, peak memory.

    python scripts/bench_table_dataset.py [--rows 3000000] [--files 3] [--repeats 3]

Writes `--files` CICFlowMeter-like CSVs (leading-space headers, text identifier columns,
Infinity / NaN rates, --rows rows in all) into a temporary folder (deleted afterwards; never in
the repository), then loads them with `bench.data.table.load`, each load in a fresh process:
  parse  no cache (hash + chunked parse + checks),
  cold   into an empty cache folder (parse + write Parquet),
  warm   from the filled cache (file index + Parquet read + checks).
Prints the median wall time and the peak resident memory (max RSS of the child process) of
each, the speed-up parse/warm, and exits 1 if it is below --min-ratio or the peak memory is
above --max-gb.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_INT, N_FLOAT = 20, 12


def write_files(folder: Path, rows: int, files: int, seed: int = 0) -> list[Path]:
    """`files` CSVs with `rows` rows in all, written in 250k-row blocks with pyarrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    labels = np.array(["BENIGN", "DoS Hulk", "PortScan", "Web Attack \ufffd Brute Force"])
    header = ([" Source IP", " Destination IP", " Timestamp"]
              + [f" Int {i}" for i in range(N_INT)] + ["Flow Bytes/s", " Flow Packets/s"]
              + [f" Float {i}" for i in range(N_FLOAT - 2)] + [" Label"])
    paths = []
    for f in range(files):
        path = folder / f"day{f}.csv"
        n_file = rows // files + (1 if f < rows % files else 0)
        with open(path, "wb") as sink:
            sink.write((",".join(header) + "\n").encode())
            for start in range(0, n_file, 250_000):
                n = min(250_000, n_file - start)
                cols = [np.char.add("192.168.10.", rng.integers(1, 255, n).astype(str)),
                        np.char.add("172.16.0.", rng.integers(1, 255, n).astype(str)),
                        np.char.add(f"{3 + f}/7/2017 ", rng.integers(8, 18, n).astype(str))]
                cols += [rng.integers(0, 10 ** rng.integers(1, 7), n) for _ in range(N_INT)]
                floats = [rng.lognormal(5, 2, n) for _ in range(N_FLOAT)]
                rates = [np.char.mod("%.6f", x) for x in floats[:2]]
                for rate in rates:
                    rate[rng.random(n) < 0.001] = "Infinity"
                    rate[rng.random(n) < 0.0005] = "NaN"
                cols += rates + floats[2:] + [labels[rng.integers(0, 4, n)]]
                table = pa.table({str(i): c for i, c in enumerate(cols)})
                pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
        paths.append(path)
    return paths


CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from bench.data.table import load
start = time.perf_counter()
ds = load(path={folder!r}, label="Label", normal=["BENIGN"], family="Label", categorical=[],
          identifiers=["Source IP", "Destination IP", "Timestamp"], non_finite="drop_rows",
          cache_dir={cache!r})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rows": len(ds.train),
                  "mb": ds.train.memory_usage(deep=True).sum() / 2**20,
                  "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def measure(folder: Path, cache: Path | None) -> dict:
    code = CHILD.format(root=str(ROOT), folder=str(folder),
                        cache=None if cache is None else str(cache))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-ratio", type=float, default=5.0)
    parser.add_argument("--max-gb", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-table-") as tmp:
        folder, cache = Path(tmp) / "data", Path(tmp) / "cache"
        folder.mkdir()
        start = time.perf_counter()
        paths = write_files(folder, args.rows, args.files)
        size = sum(p.stat().st_size for p in paths) / 2**30
        print(f"generated {args.rows:,} rows x {3 + N_INT + N_FLOAT + 1} columns in "
              f"{len(paths)} CSVs ({size:.2f} GiB) in {time.perf_counter() - start:.0f} s")
        results: dict[str, list[dict]] = {"parse": [], "cold": [], "warm": []}
        for _ in range(args.repeats):
            results["parse"].append(measure(folder, None))
            shutil.rmtree(cache, ignore_errors=True)
            results["cold"].append(measure(folder, cache))
            results["warm"].append(measure(folder, cache))
        median = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
        peak = {k: max(r["max_rss_gb"] for r in v) for k, v in results.items()}
        first = results["warm"][0]
        print(f"loaded {first['rows']:,} rows ({first['mb']:.0f} MiB in memory); medians of "
              f"{args.repeats}:")
        for key in results:
            print(f"  {key:5}  {median[key]:8.2f} s   peak RSS {peak[key]:.2f} GiB")
        ratio = median["parse"] / median["warm"]
        print(f"  parse / warm = {ratio:.1f}x (target >= {args.min_ratio}x); peak RSS "
              f"{max(peak.values()):.2f} GiB (target < {args.max_gb} GiB)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  (generator process peak RSS {own:.2f} GiB)")
    return 0 if ratio >= args.min_ratio and max(peak.values()) < args.max_gb else 1


if __name__ == "__main__":
    sys.exit(main())
