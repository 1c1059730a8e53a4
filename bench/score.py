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
Every row is checked against the model's input signature first: a missing or duplicated
column, a column whose type cannot be the input's (dates for a number, true/false for a
non-boolean number), a missing, non-numeric, NaN or infinite value stops the command with one
`error:` line naming the file, line (CSV, header = line 1) or row, column and value; numbers
given for a string input are taken as text (as CSV reads them); blank lines at the end of a
CSV are not rows. The output is written to a temporary file and moved into place only when
every row is scored. It holds `row` (the row's 0-based position in its source), the input's
other (key) columns (from CSV as text, exactly as written; a Parquet output refuses a column
whose type changes between files), `anomaly_score` (float64, higher = more likely attack) and
`flag` (1 when anomaly_score >= the run's VAL threshold). A categorical input holding values
the fitted encoder never saw (one-hot encodes them as all zeros) gets one warning line at the
end: rows, share and examples.
`log=true` records the scoring as its own MLflow run, tagged with the model's run id.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError, ConfigError, DataError, exit_code_reporting_user_errors
from bench.score_input import (
    NUMERIC_TYPES,
    Chunk,
    check_frame,
    input_files,
    read_csv_chunks,
    read_parquet_chunks,
)
from bench.shutdown import skip_final_collection

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
OUTPUT_COLUMNS = ("row", "source", "anomaly_score", "flag")  # bench's own output columns
KEYS = ("run", "input", "dataset", "part", "output", "chunk_rows", "exact", "log", "unsafe",
        "tracking.uri", "experiment")
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
    uri_key: str = "tracking.uri"  # the setting that gave `uri`, named by store errors
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
    from bench.tracking import command_uri

    uri, uri_key = command_uri(values.get("tracking.uri"), DEFAULT_URI, "tracking.uri")
    return Args(
        run=values["run"], output=Path(values["output"]),
        input=Path(values["input"]) if "input" in values else None,
        dataset=values.get("dataset"), part=values.get("part"), chunk_rows=chunk_rows,
        exact=_exact(values.get("exact", "auto")),
        log=_flag("log", values.get("log", "false")),
        unsafe=_flag("unsafe", values.get("unsafe", "false")),
        uri=uri, uri_key=uri_key,
        experiment=values.get("experiment", "bench-score"),
        dataset_overrides=tuple(overrides))


# ------------------------------------------------------------------------------ reading
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
        chunk = check_frame(frame.iloc[start : start + args.chunk_rows], source, start, inputs)
        yield Chunk(chunk, source, start)


def chunks(args: Args, inputs: list[tuple[str, str]]) -> Iterator[Chunk]:
    if args.dataset is not None:
        yield from read_dataset(args, inputs)
        return
    assert args.input is not None
    for path in input_files(args.input):
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
    for source in input_files(args.input):
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
    moved onto `path` by `commit` (so no half-written output is ever left). Parquet: the
    first chunk sets each column's type; a later chunk whose column cannot take it (text
    after numbers, a fraction after integers) is a DataError naming both types."""

    def __init__(self, path: Path) -> None:
        if not path.name.endswith((".csv", ".parquet")):
            raise ConfigError(f"output={path}: expected a .csv or .parquet file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(name)
        self.parquet: Any = None
        self.started: Any = None  # the source of the first chunk written, once one is

    def write(self, frame: pd.DataFrame, source: Path | str = "input") -> None:
        if self.path.name.endswith(".csv"):
            frame.to_csv(self.tmp, mode="a" if self.started else "w", header=not self.started,
                         index=False)
        else:
            import pyarrow.parquet as pq

            table = self._table(frame, source)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.tmp, table.schema)
            self.parquet.write_table(table)
        self.started = self.started or str(source)

    def _table(self, frame: pd.DataFrame, source: Path | str) -> Any:
        """`frame` as an Arrow table with the first chunk's schema."""
        import pyarrow as pa

        arrow_errors = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except arrow_errors as error:  # e.g. a key column of mixed Python objects
            where = ""
            for name in frame.columns:
                try:
                    pa.Array.from_pandas(frame[name])
                except arrow_errors:
                    where = f" column {name!r}:"
                    break
            raise DataError(f"{source}:{where} cannot be written to Parquet: "
                            f"{' '.join(str(error).split())}") from None
        if self.parquet is None:  # a column with no value yet: text, as CSV key columns are
            schema = pa.schema([pa.field(f.name, pa.large_string()) if pa.types.is_null(f.type)
                                else f for f in table.schema], metadata=table.schema.metadata)
            return table.cast(schema)
        schema = self.parquet.schema
        if table.schema.names != schema.names:
            raise DataError(f"{source}: columns {table.schema.names} differ from those of "
                            f"{self.started} ({schema.names}); score these files separately")
        columns = []
        for found, want in zip(table.schema, schema, strict=True):
            column = table.column(found.name)
            if found.type != want.type:
                why = ""  # cast only within a kind: never numbers into text or back
                if pa.types.is_null(found.type) or _kind(found.type) == _kind(want.type):
                    try:
                        column = column.cast(want.type)
                    except arrow_errors as failed:
                        why = f" ({' '.join(str(failed).split())})"
                    else:
                        columns.append(column)
                        continue
                raise DataError(
                    f"{source}: column {found.name!r}: type {found.type} here, {want.type} "
                    f"in the rows written before (from {self.started}){why}; a Parquet output "
                    "has one type per column: give the column one type in every input file, "
                    "or score these files separately")
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=schema)

    def commit(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        self.tmp.unlink(missing_ok=True)


def _kind(arrow_type: Any) -> str:
    """number, text, binary, timestamp, date or the type itself: a later chunk's column is
    cast to the first chunk's type only within its kind."""
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    kinds = {"number": (types.is_integer, types.is_floating, types.is_decimal),
             "text": (types.is_string, types.is_large_string, types.is_string_view),
             "binary": (types.is_binary, types.is_large_binary, types.is_fixed_size_binary),
             "timestamp": (types.is_timestamp,), "date": (types.is_date,)}
    for kind, tests in kinds.items():
        if any(test(arrow_type) for test in tests):
            return kind
    return str(arrow_type)


class UnseenCategories:
    """Per categorical input of a fitted encoder in `pipeline` (OneHotEncoder, OrdinalEncoder,
    ... that accepts unknown values): rows holding a value the encoder never saw in training,
    counted chunk by chunk (one-hot with handle_unknown=ignore encodes them as all zeros)."""

    EXAMPLES = 5

    def __init__(self, pipeline: Any, inputs: list[tuple[str, str]]) -> None:
        names = {name for name, _ in inputs}
        self.known: dict[str, tuple[pd.Index, str]] = {}  # column -> (categories, encoded as)
        for step in _steps(pipeline):
            categories = getattr(step, "categories_", None)
            columns = getattr(step, "feature_names_in_", None)
            if (categories is None or columns is None
                    or getattr(step, "handle_unknown", "error") == "error"):
                continue
            for index, (column, known) in enumerate(zip(columns, categories, strict=False)):
                if column in names and column not in self.known:
                    self.known[str(column)] = (pd.Index(known), _encoded_as(step, index))
        self.rows = 0
        self.unseen = {column: 0 for column in self.known}
        self.examples: dict[str, list[Any]] = {column: [] for column in self.known}

    def update(self, frame: pd.DataFrame) -> None:
        """Count the rows of `frame` (the model's columns) whose category is new."""
        self.rows += len(frame)
        for column, (known, _) in self.known.items():
            values = frame[column]
            distinct = pd.Index(pd.unique(values))
            new = distinct[~distinct.isin(known)]
            if len(new):
                self.unseen[column] += int(values.isin(new).sum())
                examples = self.examples[column]
                examples += [v for v in new if v not in examples][:self.EXAMPLES - len(examples)]

    def warnings(self) -> list[str]:
        """One line per column holding new categories: rows, share, examples."""
        lines = []
        for column, count in self.unseen.items():
            if count:
                shown = ", ".join(_short(v) for v in self.examples[column])
                lines.append(f"column {column!r}: {count:,} of {self.rows:,} rows "
                             f"({count / self.rows:.2%}) hold categories unseen in training, "
                             f"{self.known[column][1]} (e.g. {shown})")
        return lines


def _steps(root: Any) -> Iterator[Any]:
    """`root` and every estimator nested in it (Pipeline steps, ColumnTransformer and
    FeatureUnion parts)."""
    yield root
    children = [step for _, step in getattr(root, "steps", [])]
    children += [part for _, part, _ in getattr(root, "transformers_", [])]
    children += [part for _, part in getattr(root, "transformer_list", [])]
    for child in children:
        if not isinstance(child, str):  # "passthrough" or "drop"
            yield from _steps(child)


def _encoded_as(encoder: Any, index: int) -> str:
    unknown = getattr(encoder, "handle_unknown", "")
    infrequent = getattr(encoder, "infrequent_categories_", None)
    if unknown == "infrequent_if_exist" and infrequent and infrequent[index] is not None:
        return "encoded as its infrequent category"
    if unknown in ("ignore", "infrequent_if_exist"):
        return "encoded as all zeros"
    if unknown == "use_encoded_value":
        return f"encoded as {getattr(encoder, 'unknown_value', None)!r}"
    return f"encoded as unknown (handle_unknown={unknown!r})"


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


@dataclass
class Summary:
    rows: int
    flagged: int
    seconds: float
    score_seconds: float
    warnings: tuple[str, ...] = ()  # categories unseen in training, one line per column
    unseen_rows: dict[str, int] = field(default_factory=dict)  # per column, if any

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
    unseen = UnseenCategories(decision.pipeline, inputs)
    try:
        for chunk in stream:
            tick = time.perf_counter()
            features = model_frame(chunk.frame, inputs)
            with refusals("model", decision, f"{chunk.source}: rows {chunk.first}-"
                          f"{chunk.first + len(chunk.frame) - 1}"):
                predicted = decision.predict(features)
            score_seconds += time.perf_counter() - tick
            unseen.update(features)
            out = output_frame(chunk, predicted, inputs, several_sources)
            first = first or (chunk.source, list(out.columns))
            if list(out.columns) != first[1]:  # one output file has one header
                raise DataError(f"{chunk.source}: its columns besides the model's differ from "
                                f"those of {first[0]} ({first[1]} vs {list(out.columns)}); "
                                "score these files separately")
            writer.write(out, chunk.source)
            rows += len(predicted)
            flagged += int(predicted["flag"].sum())
            if progress is not None:
                progress(rows, time.perf_counter() - start)
    except BaseException:
        writer.discard()
        raise
    writer.commit()
    return Summary(rows, flagged, time.perf_counter() - start, score_seconds,
                   tuple(unseen.warnings()), {c: n for c, n in unseen.unseen.items() if n})


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
    with tempfile.TemporaryDirectory() as tmp:  # the store is checked first, named by uri_key
        folder, info = tracking.download_model(args.uri, args.run, tmp, key=args.uri_key)
        try:
            decision = load_decision(folder, unsafe=args.unsafe)
        except BenchError as error:  # named by the model's URI, not the temporary folder
            raise type(error)(str(error).replace(info["folder"], info["model_uri"])) from None
    if args.log:  # before any row is scored: a deleted or invalid experiment failed at the end
        tracking.check_experiment(args.uri, args.experiment, "experiment")
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
    if not summary.rows:  # a header without rows: an empty batch is legitimate, but say so
        echo(f"[score] warning: {source} holds no rows; {args.output} has a header only")
    for line in summary.warnings:
        echo(f"[score] warning: {line}")
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
        from bench.evaluation.metrics import metric_safe

        tracking.log_metrics({"rows": summary.rows, "flagged": summary.flagged,
                              "flagged_share": share, "seconds": summary.seconds,
                              "score_rows_per_second": summary.rows_per_second,
                              **{f"unseen_category_rows.{metric_safe(column)}": count
                                 for column, count in summary.unseen_rows.items()}})
        if summary.warnings:
            tracking.log_text("\n".join(summary.warnings) + "\n", "warnings.txt")
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
