"""Time the leakage audit and print what it flags on each dataset (default split).

    BENCH_DATA_DIR=/path/to/datasets python scripts/bench_audit.py [dataset ...]

Prints, per dataset: rows, median audit seconds over 3 repeats, features following row order
(|rho|, where), single-feature VAL ROC-AUC warnings, label copies (dropped by default), and
each TEST set's duplicate share.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace

from hydra import compose, initialize_config_dir

from bench.app import CONFIG_DIR
from bench.data.audit import AuditSettings, audit
from bench.instantiate import build


def main(names: list[str]) -> None:
    for name in names or ["synthetic", "unsw", "nslkdd", "snmp_mib", "kaggle_nid"]:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
            cfg = compose("config", overrides=[f"dataset={name}"])
        dataset = build(cfg.dataset)
        splits = replace(build(cfg.split)(dataset), extra_tests=dict(dataset.extra_tests))
        settings = AuditSettings.from_config(cfg.audit)
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            _, _, report = audit(dataset.schema, splits, settings)
            seconds.append(time.perf_counter() - start)
        rows = len(splits.train) + len(splits.val)
        print(f"{name}: {rows:,} TRAIN+VAL rows, audit median {statistics.median(seconds):.2f} s")
        print(f"  follows row order: {report.order_leaks or 'none'}")
        print(f"  single-feature VAL AUC > cut: {report.single_feature_auc or 'none'}")
        print(f"  the label in other words (TRAIN and VAL AUC >= {settings.label_copy_auc}): "
              f"{report.label_copies or 'none'}")
        print(f"  TEST duplicate share: {report.test_duplicate_share}")


if __name__ == "__main__":
    main(sys.argv[1:])
