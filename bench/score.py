"""`bench score`: run a logged decision (pipeline + VAL threshold) on new rows.

    bench score run=<run id | runs:/<id>/model | models:/<name>@<alias>>
                (input=<file.csv[.gz] | file.parquet | folder> | dataset=<name> [part=test])
                output=<file.csv | file.parquet> [chunk_rows=100000] [exact=auto]
                [log=true] [unsafe=true]
                [tracking.uri=sqlite:///mlruns/mlflow.db] [experiment=bench-score]
                [dataset.<key>=<value> ...]

`input=` reads CSV (with a header) or Parquet in chunks of `chunk_rows`, so files larger than
memory stream through. Every score equals the run's own TEST score for the same row, bit for
bit: `exact=auto` (default) scores each chunk in one pipeline call when the pipeline's scores
are row-wise (every step elementwise or a tree ensemble: xgboost, forests, a decision tree,
Decision.row_wise), else in the run's batches (`evaluation.latency_batch_rows`, 1,000 rows;
chunks then start on batch boundaries), since BLAS-backed models (logreg, MLP, Keras, PCA) can
differ in the last bit with the batch layout. `exact=true` always uses the run's batches;
`exact=false` always one call per chunk (fastest; last-bit differences allowed). A folder is
every .csv, .csv.gz and .parquet in it, in name order.
`dataset=` reads a dataset through its bench loader (e.g. `dataset=nslkdd` scores the
headerless KDDTest+.txt, its TEST partition; `part=unlabelled` for Kaggle's Test_data.csv).
Every row is checked against the model's input signature first: a missing column, a missing,
non-numeric, NaN or infinite value stops the command with one `error:` line naming the file,
line (CSV, header = line 1) or row, column and value; the output is written to a temporary
file and moved into place only when every row is scored. The output holds `row` (the row's
0-based position in its source), the input's other (key) columns, `anomaly_score` (float64,
higher = more likely attack) and `flag` (1 when anomaly_score >= the run's VAL threshold).
`log=true` records the scoring as its own MLflow run, tagged with the model's run id.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError, ConfigError, DataError, exit_code_reporting_user_errors
from bench.shutdown import skip_final_collection

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
OUTPUT_COLUMNS = ("row", "source", "anomaly_score", "flag")  # bench's own output columns
KEYS = ("run", "input", "dataset", "part", "output", "chunk_rows", "exact", "log", "unsafe",
        "tracking.uri", "experiment")
NUMERIC_TYPES = ("double", "float", "long", "integer", "boolean")
INPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one summary line


@dataclass
class Args:
    run: str
    output: Path
    input: Path | None = None
    dataset: str | None = None
    part: str | None = None
    chunk_rows: int = 100_000
    exact: str = "auto"  # auto | true | false
    log: bool = False
    unsafe: bool = False
    uri: str = DEFAULT_URI
    experiment: str = "bench-score"
    dataset_overrides: tuple[str, ...] = ()


def _flag(key: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}={value}: expected true or false")


def _exact(value: str) -> str:
    if value.lower() in ("auto", "true", "false"):
        return value.lower()
    raise ConfigError(f"exact={value}: expected auto, true or false")


def parse_args(argv: Sequence[str]) -> Args:
    """`key=value` arguments -> Args; ConfigError names an unknown or missing key."""
    values: dict[str, str] = {}
    overrides = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if key.startswith("dataset.") and sep:
            overrides.append(arg)
        elif not sep or key not in KEYS:
            raise ConfigError(f"unknown argument {arg!r}; bench score takes "
                              f"{', '.join(k + '=' for k in KEYS)} and dataset.<key>= "
                              "(python -m bench.score --help)")
        else:
            values[key] = value
    for key in ("run", "output"):
        if not values.get(key):
            raise ConfigError(f"bench score needs {key}=... (python -m bench.score --help)")
    if ("input" in values) == ("dataset" in values):
        raise ConfigError("bench score needs exactly one of input=<file or folder> and "
                          "dataset=<name>")
    try:
        chunk_rows = int(values.get("chunk_rows", 100_000))
    except ValueError:
        chunk_rows = 0
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows={values['chunk_rows']}: expected a positive integer")
    return Args(
        run=values["run"], output=Path(values["output"]),
        input=Path(values["input"]) if "input" in values else None,
        dataset=values.get("dataset"), part=values.get("part"), chunk_rows=chunk_rows,
        exact=_exact(values.get("exact", "auto")),
        log=_flag("log", values.get("log", "false")),
        unsafe=_flag("unsafe", values.get("unsafe", "false")),
        uri=values.get("tracking.uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI,
        experiment=values.get("experiment", "bench-score"),
        dataset_overrides=tuple(overrides))


# ------------------------------------------------------------------------------ reading
@dataclass
class Chunk:
    """Rows of one source; `first` = 0-based position of the first row in its source."""

    frame: pd.DataFrame
    source: Path | str
    first: int


def _input_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(INPUT_SUFFIXES))
        if not files:
            raise DataError(f"{path}: no .csv, .csv.gz or .parquet file in this folder")
        return files
    if not path.is_file():
        from bench.data.files import find

        found = find(path.parent, path.name)  # name or name.gz, as the loaders look
        if found is None:
            raise DataError(f"{path}: no such file or folder (nor {path.name}.gz)")
        path = found
    if not path.name.endswith(INPUT_SUFFIXES):
        raise DataError(f"{path}: bench score reads .csv, .csv.gz or .parquet files with a "
                        "header; for a dataset's own files (e.g. the headerless NSL-KDD "
                        ".txt) use dataset=<name>")
    return [path]


def read_csv_chunks(path: Path, inputs: list[tuple[str, str]], rows: int) -> Iterator[Chunk]:
    """Validated chunks of a CSV file with a header (bench.data.files' checks and messages)."""
    from bench.data.files import _check_values, _read_header

    header = _read_header(path)
    missing = [name for name, _ in inputs if name not in header]
    if missing:
        raise DataError(f"{path}: line 1 (header), column {missing[0]!r}: missing column(s) "
                        f"{missing} that the model needs (a headerless file? use dataset=)")
    strings = {name: str for name, kind in inputs if kind not in NUMERIC_TYPES}
    spec = _spec(inputs)
    first = 0
    try:
        reader = pd.read_csv(path, chunksize=rows, dtype=strings, index_col=False,
                             keep_default_na=False, na_values=[""], skip_blank_lines=False,
                             encoding="utf-8-sig")
        with reader:
            for frame in reader:
                # key columns are not checked: blank them in the frame the checker sees
                checked = frame.assign(**{c: "" for c in header if c not in spec.columns})
                _check_values(path, checked, spec, first_line=2 + first)
                yield Chunk(frame, path, first)
                first += len(frame)
    except (pd.errors.ParserError, EOFError, OSError, zlib.error) as error:
        # an unterminated quote, a row with more fields, a truncated or corrupt gzip
        raise DataError(f"{path}: cannot be read as CSV (rows from line {first + 2} on): "
                        f"{' '.join(str(error).split())}") from error


def _spec(inputs: list[tuple[str, str]]) -> Any:
    from bench.data.files import TableSpec

    return TableSpec(columns=tuple(name for name, _ in inputs),
                     numeric=tuple(name for name, kind in inputs if kind in NUMERIC_TYPES))


def read_parquet_chunks(path: Path, inputs: list[tuple[str, str]], rows: int
                        ) -> Iterator[Chunk]:
    """Chunks of a Parquet file, `rows` at a time (pyarrow record batches)."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as error:
        raise DataError(f"{path}: not a readable Parquet file ({error})") from error
    first = 0
    for batch in handle.iter_batches(batch_size=rows):
        frame = batch.to_pandas()
        check_frame(frame, path, first, inputs)
        yield Chunk(frame, path, first)
        first += len(frame)


def check_frame(frame: pd.DataFrame, source: Path | str, first: int,
                inputs: list[tuple[str, str]]) -> None:
    """DataError at the first missing column or bad value (row = 0-based position in
    `source`): numeric columns must hold finite numbers, string columns non-missing values."""
    missing = [name for name, _ in inputs if name not in frame.columns]
    if missing:
        raise DataError(f"{source}: column {missing[0]!r}: missing column(s) {missing} that "
                        "the model needs")
    for name, kind in inputs:
        values = frame[name]
        if kind in NUMERIC_TYPES:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64",
                                                                       na_value=np.nan)
            bad = ~np.isfinite(numbers)
        else:
            bad = values.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{source}: row {first + row}, column {name!r}: "
                            f"{'missing or non-numeric' if kind in NUMERIC_TYPES else 'missing'}"
                            f" value {values.iloc[row]!r}")


def read_dataset(args: Args, inputs: list[tuple[str, str]]) -> Iterator[Chunk]:
    """The `part` (test, else unlabelled) of a dataset read by its bench loader, in chunks."""
    from hydra import compose, initialize_config_dir

    from bench.app import CONFIG_DIR
    from bench.instantiate import build

    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("config", overrides=[f"dataset={args.dataset}",
                                           *args.dataset_overrides])
    dataset = build(cfg.dataset)
    part = args.part or ("test" if dataset.test is not None else "unlabelled")
    frame = getattr(dataset, part, None) if part in ("test", "unlabelled", "train") else None
    if frame is None:
        raise ConfigError(f"part={part}: dataset {args.dataset} has no such partition "
                          "(test, unlabelled or train)")
    source = f"dataset={args.dataset} part={part}"
    for start in range(0, len(frame), args.chunk_rows):
        chunk = frame.iloc[start : start + args.chunk_rows]
        check_frame(chunk, source, start, inputs)
        yield Chunk(chunk, source, start)


def chunks(args: Args, inputs: list[tuple[str, str]]) -> Iterator[Chunk]:
    if args.dataset is not None:
        yield from read_dataset(args, inputs)
        return
    assert args.input is not None
    for path in _input_files(args.input):
        if path.name.endswith(".parquet"):
            yield from read_parquet_chunks(path, inputs, args.chunk_rows)
        else:
            yield from read_csv_chunks(path, inputs, args.chunk_rows)


# ------------------------------------------------------------------------------ scoring
def model_frame(frame: pd.DataFrame, inputs: list[tuple[str, str]]) -> pd.DataFrame:
    """The model's columns in signature order, numeric ones as numbers (checked before)."""
    out = frame[[name for name, _ in inputs]]
    numeric = [name for name, kind in inputs if kind in NUMERIC_TYPES
               and not pd.api.types.is_numeric_dtype(out[name])]
    if numeric:
        out = out.assign(**{name: pd.to_numeric(out[name]) for name in numeric})
    return out


def check_output(args: Args) -> None:
    """Before the model is fetched or a row read: `output` names a .csv or .parquet file
    that can be created, and none of the input's files (the output replaced its input)."""
    from bench.validate import check_output_folder

    out = args.output
    if out.is_dir():
        raise ConfigError(f"output={out}: is a folder; name a .csv or .parquet file")
    if not out.name.endswith((".csv", ".parquet")):
        raise ConfigError(f"output={out}: expected a .csv or .parquet file name")
    check_output_folder("output", str(out.parent), f"output={out}")
    if args.input is None or not out.exists():
        return
    for source in _input_files(args.input):
        if os.path.samefile(out, source):
            raise ConfigError(f"output={out}: is the input file {source}; scoring would "
                              "replace it, name another output file")


def output_frame(chunk: Chunk, predicted: pd.DataFrame, inputs: list[tuple[str, str]],
                 several_sources: bool) -> pd.DataFrame:
    """row, [source], the input's key (non-model) columns, anomaly_score, flag; DataError
    when a key column has the name of one of bench's own."""
    features = {name for name, _ in inputs}
    keys = chunk.frame[[c for c in chunk.frame.columns if c not in features]]
    own = [c for c in OUTPUT_COLUMNS if c != "source" or several_sources]
    clash = [c for c in keys.columns if c in own]
    if clash:
        raise DataError(f"{chunk.source}: column(s) {clash} have the names of the output's "
                        f"own columns ({', '.join(own)}); rename them in the input")
    if isinstance(chunk.source, str):
        rows = chunk.frame.index.to_numpy()  # a loader's frame: its own row ids
    else:
        rows = np.arange(chunk.first, chunk.first + len(chunk.frame))
    out = pd.DataFrame({"row": rows}, index=chunk.frame.index)
    if several_sources:
        out["source"] = str(chunk.source)
    out = pd.concat([out, keys, predicted.set_axis(chunk.frame.index)], axis=1)
    return out.reset_index(drop=True)


class Writer:
    """CSV or Parquet output, appended chunk by chunk into a temporary file next to `path`,
    moved onto `path` by `commit` (so no half-written output is ever left)."""

    def __init__(self, path: Path) -> None:
        if not path.name.endswith((".csv", ".parquet")):
            raise ConfigError(f"output={path}: expected a .csv or .parquet file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(name)
        self.parquet: Any = None
        self.started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.path.name.endswith(".csv"):
            frame.to_csv(self.tmp, mode="a" if self.started else "w", header=not self.started,
                         index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self.parquet is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self.parquet = pq.ParquetWriter(self.tmp, table.schema)
            else:
                table = pa.Table.from_pandas(frame, schema=self.parquet.schema,
                                             preserve_index=False)
            self.parquet.write_table(table)
        self.started = True

    def commit(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        self.tmp.unlink(missing_ok=True)


@dataclass
class Summary:
    rows: int
    flagged: int
    seconds: float
    score_seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_stream(decision: Any, stream: Iterator[Chunk], inputs: list[tuple[str, str]],
                 writer: Writer, several_sources: bool, progress: Any = None) -> Summary:
    """Score every chunk of `stream` with `decision` and write it; returns the totals."""
    from bench.fitting import refusals

    start = time.perf_counter()
    rows = flagged = 0
    score_seconds = 0.0
    first: tuple[Any, list[str]] | None = None  # (source, columns) of the first chunk
    try:
        for chunk in stream:
            tick = time.perf_counter()
            with refusals("model", decision, f"{chunk.source}: rows {chunk.first}-"
                          f"{chunk.first + len(chunk.frame) - 1}"):
                predicted = decision.predict(model_frame(chunk.frame, inputs))
            score_seconds += time.perf_counter() - tick
            out = output_frame(chunk, predicted, inputs, several_sources)
            first = first or (chunk.source, list(out.columns))
            if list(out.columns) != first[1]:  # one output file has one header
                raise DataError(f"{chunk.source}: its columns besides the model's differ from "
                                f"those of {first[0]} ({first[1]} vs {list(out.columns)}); "
                                "score these files separately")
            writer.write(out)
            rows += len(predicted)
            flagged += int(predicted["flag"].sum())
            if progress is not None:
                progress(rows, time.perf_counter() - start)
    except BaseException:
        writer.discard()
        raise
    writer.commit()
    return Summary(rows, flagged, time.perf_counter() - start, score_seconds)


def _progress(rows: int, seconds: float) -> None:
    # one overwritten stderr line: a bar needs a known total, which a stream does not have
    if sys.stderr.isatty():
        print(f"\r[score] {rows:,} rows, {rows / max(seconds, 1e-9):,.0f} rows/s",
              end="", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ command
def run(args: Args, echo: Any = print) -> Summary:
    """Fetch the model, score the input into `args.output`, optionally log an MLflow run."""
    from bench import tracking
    from bench.models.decision import load_decision

    check_output(args)
    with tempfile.TemporaryDirectory() as tmp:
        folder, info = tracking.download_model(args.uri, args.run, tmp)
        try:
            decision = load_decision(folder, unsafe=args.unsafe)
        except BenchError as error:  # named by the model's URI, not the temporary folder
            raise type(error)(str(error).replace(tmp, info["model_uri"])) from None
    inputs = info["inputs"]
    if not inputs:
        raise BenchError(f"{info['model_uri']} has no input signature: cannot check the input")
    if args.exact == "true" or (args.exact == "auto" and not decision.row_wise):
        step = decision.batch_rows  # chunks start on the run's batch boundaries
        args.chunk_rows = -(-args.chunk_rows // step) * step
    else:  # one pipeline call per chunk (row-wise scores: the same bits as the run's)
        decision.metadata["batch_rows"] = args.chunk_rows
    several = args.input is not None and args.input.is_dir()
    source = args.input if args.input is not None else f"dataset={args.dataset}"
    echo(f"[score] model {info['model_uri']} (run {info['run_id']}, "
         f"{decision.metadata.get('dataset', '?')}, threshold {decision.threshold:.6g} "
         f"{decision.metadata.get('threshold_strategy', '')}) on {source}")
    summary = score_stream(decision, chunks(args, inputs), inputs, Writer(args.output),
                           several, _progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    share = summary.flagged / summary.rows if summary.rows else 0.0
    echo(f"[score] {summary.rows:,} rows in {summary.seconds:.2f} s "
         f"({summary.rows_per_second:,.0f} rows/s); flagged {summary.flagged:,} "
         f"({share:.2%}) -> {args.output}")
    if args.log:
        _log_run(args, info, summary, share, echo)
    return summary


def _log_run(args: Args, info: dict[str, Any], summary: Summary, share: float,
             echo: Any) -> None:
    from bench import tracking

    tags = {"scored_model_run_id": str(info["run_id"]), "scored_model_uri": info["model_uri"],
            "kind": "score"}
    with tracking.tracked_run(args.uri, args.experiment, f"score/{info['run_id']}",
                              tags) as run:
        tracking.log_params({"input": str(args.input or f"dataset={args.dataset}"),
                             "output": str(args.output), "model_uri": info["model_uri"],
                             "chunk_rows": args.chunk_rows})
        tracking.log_metrics({"rows": summary.rows, "flagged": summary.flagged,
                              "flagged_share": share, "seconds": summary.seconds,
                              "score_rows_per_second": summary.rows_per_second})
    echo(f"[score] logged as MLflow run {run.info.run_id} (experiment '{args.experiment}')")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    def score() -> int:
        from bench.secrets import hide_passwords

        run(parse_args(hide_passwords(argv)))  # a password never reaches a message or the run
        return 0

    return exit_code_reporting_user_errors(score)


if __name__ == "__main__":
    skip_final_collection()
    sys.exit(main())
