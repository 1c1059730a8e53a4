"""Make a large NSL-KDD-format dataset: KDDTrain+ repeated with noise on its numeric columns.

    BENCH_DATA_DIR=../shared/datasets python scripts/make_large_nslkdd.py [OUT_DIR] [--rows 2000000]

Writes OUT_DIR/KDDTrain+.txt (headerless, 43 fields, like the original) with `--rows` rows,
and links OUT_DIR/KDDTest+.txt(.gz) to the real test file, so that
`python -m bench dataset=nslkdd paths.data_dir=OUT_DIR` reads it (its checksum differs from the
published one: bench warns and goes on). OUT_DIR defaults to a new temporary folder; it must be
outside the repository (a generated dataset is never committed).

Every copy of KDDTrain+ (the first one included) gets fresh noise, so copies are not exact
duplicates of each other: count-like integer columns are scaled by exp(N(0, --sigma)) and
rounded (zeros stay zero, integers stay integers); rate columns in [0, 1] get N(0, --sigma / 5)
added, clipped to [0, 1] and rounded to 2 decimals as in the source; 0/1 flags, the categorical
columns, the attack name and the difficulty level are kept. Written in chunks of one copy, so
memory stays near two copies of KDDTrain+ whatever `--rows` is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.data.files import find  # noqa: E402
from bench.data.nslkdd import NUMERIC, SPEC  # noqa: E402


def column_kinds(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(count columns, rate columns) among the numeric features; 0/1 flags are in neither."""
    counts, rates = [], []
    for column in NUMERIC:
        values = frame[column]
        if set(np.unique(values)) <= {0, 1}:
            continue
        if pd.api.types.is_integer_dtype(values):
            counts.append(column)
        elif values.min() >= 0 and values.max() <= 1:
            rates.append(column)
        else:  # no such column in KDDTrain+; kept as is rather than guessed at
            continue
    return counts, rates


def noisy_copy(frame: pd.DataFrame, counts: list[str], rates: list[str], sigma: float,
               rng: np.random.Generator) -> pd.DataFrame:
    """A copy of `frame` with multiplicative noise on `counts`, additive noise on `rates`."""
    out = frame.copy()
    n = len(frame)
    for column in counts:
        scale = np.exp(rng.normal(0.0, sigma, size=n))
        out[column] = np.rint(frame[column].to_numpy() * scale).astype(np.int64)
    for column in rates:
        noisy = frame[column].to_numpy() + rng.normal(0.0, sigma / 5, size=n)
        out[column] = np.round(np.clip(noisy, 0.0, 1.0), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", help="output folder (default: a new temp folder)")
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR"),
                        help="folder with KDDTrain+.txt(.gz), KDDTest+.txt(.gz) "
                             "(default: $BENCH_DATA_DIR)")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("--data-dir or BENCH_DATA_DIR is needed")
    source, test = find(args.data_dir, "KDDTrain+.txt"), find(args.data_dir, "KDDTest+.txt")
    if source is None or test is None:
        parser.error(f"KDDTrain+.txt(.gz) and KDDTest+.txt(.gz) must be in {args.data_dir}")
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-large-nslkdd-")).resolve()
    if out == REPO or REPO in out.parents:
        parser.error(f"{out} is inside the repository; generated data is never committed")
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    frame = pd.read_csv(source, header=None, names=list(SPEC.columns))
    counts, rates = column_kinds(frame)
    rng = np.random.default_rng(args.seed)
    target = out / "KDDTrain+.txt"
    written = 0
    with target.open("w", newline="\n") as handle:
        while written < args.rows:
            chunk = noisy_copy(frame.head(args.rows - written), counts, rates, args.sigma, rng)
            chunk.to_csv(handle, header=False, index=False, lineterminator="\n")
            written += len(chunk)
    link = out / test.name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(test.resolve())
    size = target.stat().st_size / 2**20
    print(f"wrote {target} ({written:,} rows, {size:,.0f} MiB) in "
          f"{time.perf_counter() - start:.1f} s; TEST: {link} -> {test.resolve()}")
    print(f"noise: {len(counts)} count columns x exp(N(0, {args.sigma})), {len(rates)} rate "
          f"columns + N(0, {args.sigma / 5:g})")
    print(f"run: python -m bench dataset=nslkdd model=xgboost paths.data_dir={out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
