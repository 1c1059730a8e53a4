"""`bench score`: a logged decision on new files, checked, chunked, written atomically."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

from bench import app, tracking
from bench.app import CONFIG_DIR
from bench.experiment import run_experiment
from bench.instantiate import build
from bench.score import main


def _run(uri: str, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("config", overrides=[f"tracking.uri={uri}", *overrides],
                      return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, run_experiment(cfg, choices)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A logreg run on synthetic rows, its TEST rows as a CSV with an `id` key column, and
    the logged TEST scores: (uri, run id, csv path, logged scores)."""
    folder = tmp_path_factory.mktemp("score")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    # TEST scored in batches of 50: the decision keeps them, chunks of 37 become 50
    cfg, result = _run(uri, "dataset.n_rows=2000", "model=logreg",
                       "evaluation.latency_batch_rows=50")
    mlflow.set_tracking_uri(uri)
    logged = pd.read_parquet(mlflow.artifacts.download_artifacts(
        f"runs:/{result.run_id}/reports/test_scores.parquet"))
    dataset = build(cfg.dataset)
    frame = dataset.train.loc[logged.index, dataset.schema.features]
    csv = folder / "rows.csv"
    frame.assign(id=[f"flow-{i}" for i in range(len(frame))]).to_csv(csv, index=False)
    return uri, result.run_id, csv, logged


def _score(uri, *args):
    return main([f"tracking.uri={uri}", *args])


def test_scores_a_csv_like_the_run_and_keeps_key_columns(scored, tmp_path, capsys):
    uri, run_id, csv, logged = scored
    out = tmp_path / "out.csv"
    assert _score(uri, f"run={run_id}", f"input={csv}", f"output={out}") == 0
    result = pd.read_csv(out)
    assert list(result.columns) == ["row", "id", "anomaly_score", "flag"]
    assert result["id"].iloc[3] == "flow-3" and list(result["row"]) == list(range(len(logged)))
    np.testing.assert_array_equal(result["anomaly_score"], logged["anomaly_score"])
    np.testing.assert_array_equal(result["flag"], logged["flag"])
    printed = capsys.readouterr().out
    assert "rows/s" in printed and f"flagged {int(logged['flag'].sum()):,}" in printed


def test_chunks_parquet_and_folders_give_the_same_scores(scored, tmp_path):
    uri, run_id, csv, logged = scored
    pd.read_csv(csv).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "a.csv").write_text(csv.read_text())
    out = tmp_path / "out" / "scores.parquet"
    assert _score(uri, f"run=runs:/{run_id}/model", f"input={tmp_path}", f"output={out}",
                  "chunk_rows=37") == 0
    result = pd.read_parquet(out)
    assert list(result["source"].unique()) == [str(tmp_path / n)
                                               for n in ("a.csv", "b.parquet")]
    for _, part in result.groupby("source"):
        np.testing.assert_array_equal(part["anomaly_score"], logged["anomaly_score"])
        assert list(part["row"]) == list(range(len(logged)))


def test_bad_value_names_file_line_column_and_writes_nothing(scored, tmp_path, capsys):
    uri, run_id, csv, _ = scored
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("dur")
    fields = lines[120].split(",")
    fields[column] = "fast"
    lines[120] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    assert _score(uri, f"run={run_id}", f"input={bad}", f"output={out}", "chunk_rows=50") == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: line 121, column 'dur': non-numeric value: 'fast'" in err
    assert list(tmp_path.iterdir()) == [bad]  # no output, no temporary file left


def test_missing_column_and_bad_arguments_are_one_line_errors(scored, tmp_path, capsys):
    uri, run_id, csv, _ = scored
    pd.read_csv(csv).drop(columns=["sttl"]).to_csv(tmp_path / "x.csv", index=False)
    assert _score(uri, f"run={run_id}", f"input={tmp_path / 'x.csv'}",
                  f"output={tmp_path / 'o.csv'}") == 2
    assert "column 'sttl': missing column(s) ['sttl']" in capsys.readouterr().err
    assert _score(uri, f"run={run_id}", f"input={csv}", "output=o.csv", "chunks=5") == 2
    assert "unknown argument 'chunks=5'" in capsys.readouterr().err
    assert _score(uri, "run=0123456789abcdef", f"input={csv}",
                  f"output={tmp_path / 'o.csv'}") == 2
    error = capsys.readouterr().err
    assert "error: cannot get model runs:/0123456789abcdef/model" in error
    assert f"latest FINISHED runs: {run_id} (synthetic/logreg)" in error  # ids to pick from


def test_a_failed_run_is_named_as_failed_without_a_model(scored, tmp_path, capsys):
    """MLflow's "Failed to download artifacts from path 'model'" said nothing of why."""
    uri, _, csv, _ = scored
    experiment_id = tracking.get_or_create_experiment(uri, "synthetic")
    failed = tracking.create_run(uri, experiment_id, "broken", {"error": "ValueError: boom"})
    tracking.set_terminated(uri, failed, "FAILED")
    assert _score(uri, f"run={failed}", f"input={csv}", f"output={tmp_path / 'o.csv'}") == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"run {failed} is FAILED and has no logged model" in lines[0]
    assert "ValueError: boom" in lines[0] and "Failed to download" not in lines[0]
    assert not (tmp_path / "o.csv").exists()


def test_an_output_that_would_replace_an_input_or_cannot_be_written_is_refused_first(
        scored, tmp_path, capsys):
    """Checked before the model is fetched: the input is left as it was, nothing written."""
    uri, run_id, csv, _ = scored
    same = tmp_path / "same.csv"
    same.write_text(csv.read_text())
    before = same.read_bytes()
    (tmp_path / "a_folder.csv").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = {str(same): "is the input file", str(tmp_path / "a_folder.csv"): "is a folder",
             str(tmp_path / "a_file" / "x.csv"): "is a file, not a folder"}
    for output, expected in cases.items():
        assert _score(uri, f"run={run_id}", f"input={same}", f"output={output}") == 2
        error = capsys.readouterr().err
        assert f"error: output={output}" in error and expected in error, error
    assert same.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder.csv", "same.csv"]
    assert not list((tmp_path / "a_folder.csv").iterdir())


def test_key_columns_that_clash_or_differ_between_files_are_refused(scored, tmp_path, capsys):
    """A key column named like an output column, or files of a folder whose key columns
    differ, would give an output whose columns say something else: refused, nothing left."""
    uri, run_id, csv, _ = scored
    frame = pd.read_csv(csv)
    clash = tmp_path / "clash"
    clash.mkdir()
    frame.rename(columns={"id": "flag"}).to_csv(clash / "a.csv", index=False)
    assert _score(uri, f"run={run_id}", f"input={clash / 'a.csv'}",
                  f"output={tmp_path / 'o.csv'}") == 2
    assert "column(s) ['flag'] have the names of the output's own columns" in (
        capsys.readouterr().err)
    differ = tmp_path / "differ"
    differ.mkdir()
    frame.to_csv(differ / "a.csv", index=False)
    frame.rename(columns={"id": "flow"}).to_csv(differ / "b.csv", index=False)
    assert _score(uri, f"run={run_id}", f"input={differ}", f"output={tmp_path / 'o.csv'}") == 2
    assert "score these files separately" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv*"))


def test_a_file_that_is_not_csv_or_values_the_model_refuses_are_one_line_errors(
        scored, tmp_path, capsys):
    """An unterminated quote, a row with more fields, a truncated gzip, a value beyond the
    model's float32: one error naming the file (and the rows scored), no output left."""
    import gzip

    uri, run_id, csv, _ = scored
    lines = csv.read_text().splitlines()
    fields = lines[5].split(",")
    fields[0] = '"unterminated'
    quote = [*lines[:5], ",".join(fields), *lines[6:]]
    ragged = [*lines[:9], lines[9] + ",1,2", *lines[10:]]
    huge = pd.read_csv(csv).assign(dur=1e308)
    files = {"quote.csv": "\n".join(quote), "ragged.csv": "\n".join(ragged)}
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(csv.read_bytes())[:-40])
    huge.to_csv(tmp_path / "huge.csv", index=False)
    expected = {"quote.csv": "EOF inside string", "ragged.csv": "line 10, saw 18",
                "cut.csv.gz": "Compressed file ended",
                "huge.csv": "the model cannot score these values"}
    for name, text in expected.items():
        out = tmp_path / "out" / "o.csv"
        assert _score(uri, f"run={run_id}", f"input={tmp_path / name}", f"output={out}") == 2
        error = capsys.readouterr().err
        assert f"error: {tmp_path / name}:" in error and text in error, error
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_bench_score_is_dispatched_before_hydra_and_can_log_a_run(scored, tmp_path,
                                                                  monkeypatch):
    uri, run_id, csv, logged = scored
    out = tmp_path / "o.parquet"
    monkeypatch.setattr(sys, "argv", ["bench", "score", f"tracking.uri={uri}", f"run={run_id}",
                                      f"input={csv}", f"output={out}", "log=true"])
    with pytest.raises(SystemExit) as exit_info:
        app.main()
    assert exit_info.value.code == 0
    runs = MlflowClient(uri).search_runs(
        [tracking.get_or_create_experiment(uri, "bench-score")],
        filter_string=f"tags.scored_model_run_id = '{run_id}'")
    assert len(runs) == 1 and runs[0].data.metrics["rows"] == len(logged)
    assert runs[0].info.status == "FINISHED"


def test_scores_a_registered_model_by_alias(scored, tmp_path):
    uri, run_id, csv, logged = scored
    chosen = tracking.register_best(uri, "synthetic", "val_f1", alias="champion")
    assert chosen["run_id"] == run_id
    out = tmp_path / "o.csv"
    assert _score(uri, "run=models:/bench-synthetic@champion", f"input={csv}",
                  f"output={out}") == 0
    np.testing.assert_array_equal(pd.read_csv(out)["flag"], logged["flag"])


@pytest.mark.parametrize("model, row_wise", [("random_forest", True), ("decision_tree", True),
                                             ("logreg", False)])
def test_exact_auto_scores_row_wise_pipelines_in_one_call_with_the_runs_bits(
        tmp_path, model, row_wise):
    """exact=auto: a tree pipeline is scored a chunk per call (Decision.row_wise), a logreg in
    the run's batches; either way the scores equal the run's logged TEST scores exactly."""
    from bench.models.decision import load_decision

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg, result = _run(uri, "dataset.n_rows=3000", f"model={model}",
                       "evaluation.latency_batch_rows=64")
    mlflow.set_tracking_uri(uri)
    logged = pd.read_parquet(mlflow.artifacts.download_artifacts(
        f"runs:/{result.run_id}/reports/test_scores.parquet"))
    folder, _ = tracking.download_model(uri, result.run_id, tmp_path / "model")
    assert load_decision(folder).row_wise is row_wise
    dataset = build(cfg.dataset)
    csv = tmp_path / "rows.csv"
    dataset.train.loc[logged.index, dataset.schema.features].to_csv(csv, index=False)
    out = tmp_path / "out.parquet"
    assert _score(uri, f"run={result.run_id}", f"input={csv}", f"output={out}",
                  "chunk_rows=1000") == 0
    np.testing.assert_array_equal(pd.read_parquet(out)["anomaly_score"],
                                  logged["anomaly_score"])


@pytest.mark.slow
@pytest.mark.real_data
def test_kddtest_scored_by_an_nslkdd_xgboost_run_equals_its_test_scores(tmp_path):
    data_dir = os.environ.get("BENCH_DATA_DIR")
    if not data_dir:
        pytest.skip("set BENCH_DATA_DIR=/path/to/datasets to run real-data tests")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, result = _run(uri, "dataset=nslkdd", "model=xgboost", "model.n_estimators=60",
                     f"dataset.cache_dir={tmp_path / 'cache'}")
    mlflow.set_tracking_uri(uri)
    logged = pd.read_parquet(mlflow.artifacts.download_artifacts(
        f"runs:/{result.run_id}/reports/test_scores.parquet"))
    out = tmp_path / "kddtest.parquet"
    assert _score(uri, f"run={result.run_id}", "dataset=nslkdd", f"output={out}",
                  f"dataset.cache_dir={tmp_path / 'cache'}") == 0
    scored_rows = pd.read_parquet(out)
    assert len(scored_rows) == len(logged) == 22_544
    assert {"label", "attack", "difficulty"} <= set(scored_rows.columns)
    np.testing.assert_array_equal(scored_rows["row"], logged.index.to_numpy())
    np.testing.assert_array_equal(scored_rows["anomaly_score"], logged["anomaly_score"])
    np.testing.assert_array_equal(scored_rows["flag"], logged["flag"])


def _refused(uri, run_id, path, tmp_path, capsys, *expected, args=(), named=None):
    """Scoring `path` exits 2 with one error line naming it (or the file `named`) and holding
    `expected`, and leaves no output (nor a temporary file) in tmp_path / "out"."""
    out = tmp_path / "out" / "o.parquet"
    assert _score(uri, f"run={run_id}", f"input={path}", f"output={out}", *args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {named or path}:"), err
    assert all(text in lines[0] for text in expected), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_duplicate_column_names_are_refused(scored, tmp_path, capsys):
    """pandas would read a second `sbytes` as `sbytes.1`, a key column, and score the first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    uri, run_id, csv, _ = scored
    lines = csv.read_text().splitlines()
    doubled = tmp_path / "doubled.csv"
    doubled.write_text("\n".join([lines[0] + ",sbytes", *(line + ",5" for line in lines[1:])])
                       + "\n")
    _refused(uri, run_id, doubled, tmp_path, capsys,
             "line 1, column 'sbytes': duplicate column in the header: 'sbytes'")
    table = pa.Table.from_pandas(pd.read_csv(csv), preserve_index=False)
    table = table.append_column("sbytes", pa.array([5] * len(table)))
    pq.write_table(table, tmp_path / "doubled.parquet")
    _refused(uri, run_id, tmp_path / "doubled.parquet", tmp_path, capsys,
             "column 'sbytes': duplicate column in the Parquet schema: 'sbytes'")


def test_an_empty_column_name_is_refused(scored, tmp_path, capsys):
    """A CSV written with pandas' index has an empty first name: it was scored, with an
    `Unnamed: 0` key column in the output."""
    uri, run_id, csv, _ = scored
    indexed = tmp_path / "indexed.csv"
    pd.read_csv(csv).to_csv(indexed)  # index=True: the header starts with ','
    _refused(uri, run_id, indexed, tmp_path, capsys,
             "line 1 (header), field 1: empty column name", "index=False")


@pytest.mark.parametrize("column, values, expected", [
    ("dur", pd.date_range("2024-01-01", periods=400, freq="s"),
     ("row 0, column 'dur': datetime64", "value Timestamp('2024-01-01 00:00:00') is not a "
      "number (the model's input 'dur' is double)")),
    ("dur", pd.to_timedelta(np.arange(400), unit="s"),
     ("row 0, column 'dur': timedelta64", "value Timedelta('0 days 00:00:00') is not a number")),
    ("dur", [True, False] * 200,
     ("row 0, column 'dur': bool value", "is not a number (the model's input 'dur' is "
      "double)")),
    ("dur", [b"1.5"] * 400, ("row 0, column 'dur': object value b'1.5' is not a number",)),
    ("proto", pd.date_range("2024-01-01", periods=400, freq="s"),
     ("row 0, column 'proto': datetime64", "is not text or a number (the model's input "
      "'proto' is string)")),
    ("proto", [b"tcp"] * 400, ("row 0, column 'proto': object value b'tcp' is not text",)),
])
def test_a_parquet_column_whose_type_is_not_the_models_is_refused(
        scored, tmp_path, capsys, column, values, expected):
    """pd.to_numeric would turn dates and durations into nanoseconds, booleans and bytes into
    numbers, and the model would score them."""
    uri, run_id, csv, _ = scored
    path = tmp_path / "typed.parquet"
    pd.read_csv(csv).assign(**{column: values}).to_parquet(path)
    _refused(uri, run_id, path, tmp_path, capsys, *expected)


def test_parquet_numbers_as_text_categoricals_and_numbers_for_a_string_input_are_taken(
        scored, tmp_path, capsys):
    """Text that parses as numbers and pandas categoricals score like the run; numbers given
    for a string input are taken as text (as CSV reads them), here categories unseen."""
    uri, run_id, csv, logged = scored
    frame = pd.read_csv(csv)
    path = tmp_path / "mixed.parquet"
    frame.assign(dur=frame["dur"].map(repr), sbytes=frame["sbytes"].astype("float64"),
                 state=frame["state"].astype("category")).to_parquet(path)
    out = tmp_path / "o.parquet"
    assert _score(uri, f"run={run_id}", f"input={path}", f"output={out}") == 0
    np.testing.assert_array_equal(pd.read_parquet(out)["anomaly_score"],
                                  logged["anomaly_score"])
    assert "warning" not in capsys.readouterr().out
    frame.assign(proto=np.where(frame["proto"] == "tcp", 6, 17)).to_parquet(path)
    assert _score(uri, f"run={run_id}", f"input={path}", f"output={out}") == 0
    printed = capsys.readouterr().out
    assert (f"[score] warning: column 'proto': {len(frame):,} of {len(frame):,} rows "
            "(100.00%) hold categories unseen in training, encoded as all zeros (e.g. '6', "
            "'17')") in printed, printed


def test_categories_unseen_in_training_are_one_warning_line_per_column(scored, tmp_path,
                                                                       capsys):
    uri, run_id, csv, _ = scored
    frame = pd.read_csv(csv)
    frame.loc[[3, 150, 390], "proto"] = ["sctp", "gre", "sctp"]
    frame.loc[250, "service"] = "gopher"
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "o.csv"
    assert _score(uri, f"run={run_id}", f"input={path}", f"output={out}", "chunk_rows=100",
                  "log=true") == 0
    printed = capsys.readouterr().out
    warnings = [line for line in printed.splitlines() if "warning" in line]
    assert warnings == [
        "[score] warning: column 'proto': 3 of 400 rows (0.75%) hold categories unseen in "
        "training, encoded as all zeros (e.g. 'sctp', 'gre')",
        "[score] warning: column 'service': 1 of 400 rows (0.25%) hold categories unseen in "
        "training, encoded as all zeros (e.g. 'gopher')"], printed
    assert len(pd.read_csv(out)) == 400
    # the logged scoring run keeps the counts and the lines
    (logged_run,) = MlflowClient(uri).search_runs(
        [tracking.get_or_create_experiment(uri, "bench-score")],
        filter_string=f"params.input = '{path}'")  # other tests log scorings of run_id
    metrics = logged_run.data.metrics
    assert (metrics["unseen_category_rows.proto"], metrics["unseen_category_rows.service"]) == (
        3, 1)
    text = MlflowClient(uri).download_artifacts(logged_run.info.run_id, "warnings.txt",
                                                str(tmp_path))
    assert Path(text).read_text().splitlines() == [w.removeprefix("[score] warning: ")
                                                   for w in warnings]


def test_key_columns_keep_one_type_across_chunks_and_files(scored, tmp_path, capsys):
    """CSV key columns are read as text, as written (leading zeros kept); Parquet ones keep
    the file's types. Files of a folder whose key column types differ are refused."""
    import pyarrow.parquet as pq

    uri, run_id, csv, logged = scored
    frame = pd.read_csv(csv)
    ids = [f"{i:03d}" for i in range(len(frame))]
    ids[250], ids[320] = "", "A-17"  # only in later chunks: an int column, then not
    text = frame.assign(id=ids)
    text.to_csv(tmp_path / "ids.csv", index=False)
    out = tmp_path / "o.parquet"
    assert _score(uri, f"run={run_id}", f"input={tmp_path / 'ids.csv'}", f"output={out}",
                  "chunk_rows=100") == 0
    result = pd.read_parquet(out)
    assert list(result["id"].iloc[:3]) == ["000", "001", "002"]
    assert pd.isna(result["id"].iloc[250]) and result["id"].iloc[320] == "A-17"
    numbers = frame.assign(id=pd.array([None, *range(1, len(frame))], dtype="Int64"))
    numbers.to_parquet(tmp_path / "ids.parquet")  # a missing id in the first chunk only
    assert _score(uri, f"run={run_id}", f"input={tmp_path / 'ids.parquet'}", f"output={out}",
                  "chunk_rows=100") == 0
    assert str(pq.read_schema(out).field("id").type) == "int64"
    np.testing.assert_array_equal(pd.read_parquet(out)["anomaly_score"],
                                  logged["anomaly_score"])
    folder = tmp_path / "folder"
    folder.mkdir()
    numbers.to_parquet(folder / "a.parquet")
    text.to_csv(folder / "b.csv", index=False)
    _refused(uri, run_id, folder, tmp_path, capsys,
             "column 'id': type large_string here, int64 in the rows written before (from "
             f"{folder / 'a.parquet'})", named=folder / "b.csv")


@pytest.mark.parametrize("ending, args", [
    ("\n\n\n", ["chunk_rows=200"]),  # the blank lines are a chunk of their own
    ("\n\n\n", ["chunk_rows=401", "exact=false"]),  # one in the first chunk, two after
    ("\r\n\r\n", ["chunk_rows=100"]),
])
def test_blank_lines_at_the_end_of_a_csv_are_not_rows(scored, tmp_path, ending, args):
    """As dataset loading does: an editor's trailing blank lines are dropped, chunks or not."""
    import gzip

    uri, run_id, csv, logged = scored
    text = csv.read_text() + ending
    (tmp_path / "blank.csv").write_text(text, newline="")
    (tmp_path / "blank.csv.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("blank.csv", "blank.csv.gz"):
        out = tmp_path / "o.csv"
        assert _score(uri, f"run={run_id}", f"input={tmp_path / name}", f"output={out}",
                      *args) == 0
        assert list(pd.read_csv(out)["row"]) == list(range(len(logged)))


@pytest.mark.parametrize("chunk_rows", ["200", "201", "1000"])
def test_a_blank_line_or_empty_row_before_the_end_is_refused(scored, tmp_path, capsys,
                                                             chunk_rows):
    """A blank line followed by rows, even at the end of a chunk, or a row of empty fields
    followed by blank lines, is reported at its line."""
    uri, run_id, csv, _ = scored
    lines = csv.read_text().splitlines()
    middle = tmp_path / "middle.csv"
    middle.write_text("\n".join([*lines[:201], "", *lines[201:]]) + "\n\n")
    args = [f"chunk_rows={chunk_rows}", "exact=false"]
    _refused(uri, run_id, middle, tmp_path, capsys, "line 202, column 'proto': missing value",
             args=args)
    empty = tmp_path / "empty_fields.csv"
    empty.write_text("\n".join([*lines, "," * (len(lines[0].split(",")) - 1)]) + "\n\n\n")
    _refused(uri, run_id, empty, tmp_path, capsys, f"line {len(lines) + 1}, column 'proto': "
             "missing value", args=args)


def test_a_true_false_column_of_a_table_run_scores_like_the_run(tmp_path):
    """dataset=table reads a True/False column as 0/1 integers (signature: integer); its own
    CSV rows score exactly as the run scored its TEST rows (they were refused as
    non-numeric)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=600), "flag": rng.random(600) > 0.5,
                          "proto": rng.choice(["tcp", "udp"], 600)})
    frame["label"] = np.where(frame["a"] + frame["flag"] + rng.normal(size=600) > 0.8,
                              "attack", "normal")
    csv = tmp_path / "flows.csv"
    frame.to_csv(csv, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, result = _run(uri, "dataset=table", f"dataset.path={csv}", "dataset.label=label",
                     "dataset.normal=[normal]", f"paths.cache_dir={tmp_path / 'cache'}",
                     "model=logreg", "evaluation.plots=none")
    mlflow.set_tracking_uri(uri)
    logged = pd.read_parquet(mlflow.artifacts.download_artifacts(
        f"runs:/{result.run_id}/reports/test_scores.parquet"))
    out = tmp_path / "scores.csv"
    assert _score(uri, f"run={result.run_id}", f"input={csv}", f"output={out}") == 0
    scores = pd.read_csv(out).set_index("row")["anomaly_score"]
    np.testing.assert_allclose(scores.loc[logged.index], logged["anomaly_score"], rtol=1e-12)


def test_an_input_without_rows_gives_a_readable_empty_output_and_a_warning(
        scored, tmp_path, capsys):
    """A header-only CSV or a zero-row Parquet file (an hour without flows) scores to an
    output with the columns and no rows (the Parquet output was a 0-byte file)."""
    uri, run_id, csv, _ = scored
    frame = pd.read_csv(csv).iloc[:0]
    for name in ("empty.csv", "empty.parquet"):
        source = tmp_path / name
        frame.to_csv(source, index=False) if name.endswith(".csv") else frame.to_parquet(source)
        out = tmp_path / f"out-{name}"
        assert _score(uri, f"run={run_id}", f"input={source}", f"output={out}") == 0
        written = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)
        assert written.empty and {"row", "id", "anomaly_score", "flag"} <= set(written.columns)
        assert f"{source} holds no rows" in capsys.readouterr().out
