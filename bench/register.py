"""`python -m bench.register --dataset X [--metric val_f1] [--alias champion]`: register the
best run of a dataset, chosen by a VAL metric (never TEST), as a model version with an alias.

Then `bench score run=models:/bench-<dataset>@<alias> ...` scores with it (docs/models.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.errors import exit_code_reporting_user_errors
from bench.score import DEFAULT_URI
from bench.shutdown import skip_final_collection


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.register", description=__doc__)
    parser.add_argument("--dataset", required=True, help="dataset tag of the runs, e.g. nslkdd")
    parser.add_argument("--metric", default="val_f1", help="a VAL metric, higher = better")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--name", default=None, help="registered model name "
                        "(default bench-<dataset>)")
    parser.add_argument("--experiment", default=None, help="only runs of this experiment")
    parser.add_argument("--tracking-uri", default=None,
                        help="the store the runs are in (default: $MLFLOW_TRACKING_URI when "
                        f"set and not empty, else {DEFAULT_URI})")
    from bench.secrets import hide_passwords

    return exit_code_reporting_user_errors(lambda: _register(parser.parse_args(hide_passwords(
        sys.argv[1:] if argv is None else argv))))


def _register(args: argparse.Namespace) -> int:
    from bench import tracking

    uri, key = tracking.command_uri(args.tracking_uri, DEFAULT_URI)
    tracking.check_store(uri, key=key)
    chosen = tracking.register_best(uri, args.dataset, args.metric,
                                    args.alias, args.name, args.experiment)
    print(f"registered {chosen['name']} version {chosen['version']} (@{chosen['alias']}): "
          f"run {chosen['run_id']}, {args.metric}={chosen[args.metric]:.4f}")
    print(f"score with: bench score run=models:/{chosen['name']}@{chosen['alias']} "
          "input=<file> output=<file>")
    return 0


if __name__ == "__main__":
    skip_final_collection()
    sys.exit(main())
