"""Wall time of the command line as a user meets it: `--help`, the default run, a dfnn run.

    .venv/bin/python scripts/bench_cli.py [--repeats 3] [--skip-dfnn]

Each command runs in a fresh process, `--repeats` times, into a throw-away MLflow store; the
script prints the median and range of each and the ratios between them (machines are shared
and noisy: compare ratios measured in one run rather than absolute times).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--help": ["--help"],
    "default run (synthetic, xgboost)": [],
    "dfnn run (synthetic, 30 epochs max)": ["model=dfnn"],
    "autoencoder + dfnn run": ["selector=autoencoder", "model=dfnn"],
}


def time_command(args: list[str], store: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", *args,
                    f"tracking.uri=sqlite:///{store}/mlflow.db",
                    f"hydra.run.dir={store}/outputs"],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-dfnn", action="store_true", help="only --help and default")
    options = parser.parse_args()
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, args in COMMANDS.items():
            if options.skip_dfnn and "dfnn" in name:
                continue
            times = [time_command(args, Path(folder)) for _ in range(options.repeats)]
            medians[name] = statistics.median(times)
            print(f"{name:40s} median {medians[name]:7.2f} s   "
                  f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})", flush=True)
    base = medians["default run (synthetic, xgboost)"]
    for name, value in medians.items():
        print(f"{name:40s} {value / base:6.2f} x the default run")


if __name__ == "__main__":
    main()
