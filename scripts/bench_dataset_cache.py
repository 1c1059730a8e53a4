"""Measure the dataset cache: parsing NSL-KDD (KDDTrain+ + KDDTest+) vs loading it from cache.

    BENCH_DATA_DIR=../shared/datasets python scripts/bench_dataset_cache.py [--repeats 7]

Three timings, each the median of `--repeats` runs in this one process:
  parse  load without a cache (hash + parse + validate the CSVs),
  cold   load into an empty cache folder (parse + write Parquet + file index),
  warm   load again from the filled cache (file index + Parquet read).
Prints the speed-ups parse/warm and cold/warm and exits 1 if parse/warm < --min-ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import nslkdd
from bench.data.dataset import Dataset


def _median_seconds(run: Callable[[], object], repeats: int,
                    before: Callable[[], None] | None = None) -> float:
    """Median wall time of `run()` over `repeats` calls (`before()` untimed, before each)."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR"),
                        help="folder with KDDTrain+.txt(.gz) and KDDTest+.txt(.gz) "
                             "(default: $BENCH_DATA_DIR)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-ratio", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("set BENCH_DATA_DIR=/path/to/datasets (e.g. ../shared/datasets) "
                     "or pass --data-dir")

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        root = Path(tmp)
        counter = iter(range(1_000_000))
        cold_dir: list[Path] = []

        def fresh_cache() -> None:
            cold_dir[:] = [root / f"cold{next(counter)}"]

        def load(cache_dir: Path | None) -> Dataset:
            return nslkdd.load(args.data_dir, cache_dir=cache_dir)

        reference = load(None)  # also warms imports and the OS file cache
        parse = _median_seconds(lambda: load(None), args.repeats)
        cold = _median_seconds(lambda: load(cold_dir[0]), args.repeats, before=fresh_cache)
        warm_dir = root / "warm"
        load(warm_dir)
        warm = _median_seconds(lambda: load(warm_dir), args.repeats)
        cached = load(warm_dir)
        pd.testing.assert_frame_equal(cached.train, reference.train)
        pd.testing.assert_frame_equal(cached.test, reference.test)

    rows = len(reference.train) + len(reference.test)
    print(f"NSL-KDD {reference.notes['data.file.train']} + {reference.notes['data.file.test']}"
          f" ({rows:,} rows) from {args.data_dir}; median of {args.repeats} runs")
    print(f"  parse (no cache)      {parse * 1000:8.1f} ms")
    print(f"  cold (parse + write)  {cold * 1000:8.1f} ms")
    print(f"  warm (cache hit)      {warm * 1000:8.1f} ms")
    ratio = parse / warm
    print(f"  speed-up parse/warm   {ratio:8.1f}x")
    print(f"  speed-up cold/warm    {cold / warm:8.1f}x")
    met = ratio >= args.min_ratio
    print(f"  target >= {args.min_ratio:g}x: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
