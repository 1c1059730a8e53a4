"""The console results table: one row per split and TEST set, accuracy and balanced accuracy."""

from __future__ import annotations

from bench.app import results_table


def test_rows_for_every_test_set_and_accuracy_columns():
    metrics = {"threshold": 0.5, "fit_seconds": 1.0, "score_rows_per_second": 10.0,
               "test_recall_family_dos": 0.9}
    for number, row in enumerate(["val", "test", "test_dedup", "test21", "test21_dedup"]):
        metrics.update({f"{row}_f1": 0.1 * number, f"{row}_accuracy": 0.5 + 0.01 * number,
                        f"{row}_balanced_accuracy": 0.6 + 0.01 * number})
    lines = results_table(metrics).splitlines()
    assert lines[0].split()[-2:] == ["accuracy", "bal_acc"]
    names = [line.split()[0] for line in lines[1:6]]
    assert names == ["VAL", "TEST", "TEST_DEDUP", "TEST21", "TEST21_DEDUP"]
    assert lines[4].split()[-2:] == ["0.5300", "0.6300"]  # TEST21's accuracy, balanced acc.
    assert lines[6].startswith("threshold 0.5")


def test_plain_run_has_val_and_test_rows_only():
    metrics = {"threshold": 0.5, "fit_seconds": 1.0, "score_rows_per_second": 10.0,
               "val_f1": 0.8, "test_f1": 0.7, "test_accuracy": 0.9}
    lines = results_table(metrics).splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["VAL", "TEST"]
    assert len(lines) == 4
