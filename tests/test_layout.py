"""The package's layout rules: one door to MLflow (bench/tracking.py)."""

from __future__ import annotations

import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
MLFLOW_IMPORT = re.compile(r"^\s*(import mlflow\b|from mlflow\b)", re.MULTILINE)
ALLOWED = {"tracking.py"}


def test_only_tracking_imports_mlflow() -> None:
    importers = {str(path.relative_to(BENCH)) for path in BENCH.rglob("*.py")
                 if MLFLOW_IMPORT.search(path.read_text(encoding="utf-8"))}
    assert "tracking.py" in importers, "the check no longer sees tracking.py's mlflow imports"
    assert importers - ALLOWED == set(), (
        "only bench/tracking.py may import mlflow; put the MLflow call there")


def test_the_check_sees_every_form_of_import() -> None:
    for line in ("import mlflow", "    import mlflow.sklearn", "from mlflow import MlflowClient",
                 "        from mlflow.entities import Metric"):
        assert MLFLOW_IMPORT.search(f"x = 1\n{line}\n"), line
    for line in ("import mlflowish", "# see mlflow", "text = 'from mlflow'"):
        assert not MLFLOW_IMPORT.search(line), line
