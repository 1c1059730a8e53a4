"""What a scored run still records: its model, metrics, reports, TEST scores and figures.

`Outcome` holds them as values (picklable), so that the same `record` runs in the run's own
process or, for the cells of a sequential grid, in the run's helper process (bench.helper,
job "record"), which then logs them and ends the run while the next cell loads and fits.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

from bench import tracking
from bench.evaluation.figures import FigureData, draw


@dataclass
class Outcome:
    """The run `run_id` of the store `uri` once its TEST sets are scored.

    `test_scores`: the primary TEST set's rows (index only) with `anomaly_score` (float64,
    higher = attack) and `flag` (int64), the values the logged model gives."""

    uri: str
    run_id: str
    model: tracking.PreparedModel
    metrics: dict[str, float]
    threshold_report: dict[str, Any]
    classification_report: str
    test_scores: Any  # pandas DataFrame


def record(outcome: Outcome) -> None:
    """Log the model first (the metrics are linked to it in the same batch), then the
    metrics, reports and scores, into the run, which is the active run of this process."""
    model_id = tracking.log_model(outcome.model)
    tracking.log_metrics(outcome.metrics, model_id=model_id)  # the run's and its model's
    tracking.log_dict(outcome.threshold_report, "reports/threshold.json")
    tracking.log_text(outcome.classification_report, "reports/classification_report_test.txt")
    tracking.log_frame(outcome.test_scores, "reports/test_scores.parquet")


def record_and_end(job: tuple[Outcome, FigureData]) -> str:
    """Take the run over (tagged with this process, so that a command started meanwhile does
    not take it for an orphan), `record` its outcome, draw and log its figures, and end it
    FINISHED; on an error it ends FAILED and the error is raised. A run that is no longer
    RUNNING (ended KILLED by another command after its process died) is left as it is.
    Returns the run's status."""
    import mlflow

    outcome, figure_data = job
    uri, run_id = outcome.uri, outcome.run_id
    try:
        tracking.sqlite_busy_timeout()
        tracking.set_tags(uri, run_id, tracking.process_tags())
        status = tracking.run_status(uri, run_id)
        if status != "RUNNING":
            return status
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(run_id=run_id):  # ends FINISHED, or FAILED on an error
            record(outcome)
            if figure_data.wanted:
                with tempfile.TemporaryDirectory(prefix="bench-plots-") as folder:
                    if draw(figure_data, folder):
                        tracking.log_artifacts(folder, "plots")
        return "FINISHED"
    finally:
        outcome.model.discard()


def import_for_recording(_: object = None) -> None:
    """The helper's job "import for recording", sent as a grid starts: MLflow's modules,
    imported while the grid's first cells run (and are recorded by their own process)."""
    import mlflow.pyfunc
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
