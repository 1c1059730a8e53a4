"""Read bench runs back from any MLflow tracking store into one tidy frame (a row per run).

Columns: run_id, experiment, run_name, status, start_time, the bench tags (dataset, selector,
model, preprocess, threshold, split, seed, config_id, git_commit, error) and every metric as
`metrics.<name>` and every param as `params.<name>` (MLflow's own naming in
`mlflow.search_runs`), so the metric `threshold` and the tag `threshold` do not collide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import tracking
from bench.errors import ConfigError, TrackingError

TAGS = ("dataset", "selector", "model", "preprocess", "threshold", "split", "seed",
        "config_id", "git_commit", "error")
# Experiments that hold no benchmark runs: skipped unless named explicitly.
REPORT_EXPERIMENT = "bench-reports"
_SKIPPED_PREFIXES = ("analyze-",)
FINISHED, FAILED = "FINISHED", "FAILED"


@dataclass
class RunSelection:
    """The runs a report covers, and what was left out (said in the report, never silent)."""

    runs: pd.DataFrame
    experiments: list[str]
    notes: list[str] = field(default_factory=list)


def normalise_uri(uri: str) -> str:
    """`path/to/mlflow.db` -> `sqlite:////abs/path/to/mlflow.db`; URIs pass unchanged."""
    if "://" not in uri and uri.endswith(".db"):
        return f"sqlite:///{Path(uri).resolve()}"
    return uri


def load_runs(uri: str, experiments: Iterable[str] | None = None,
              datasets: Iterable[str] | None = None, tags: Mapping[str, str] | None = None,
              filter_string: str = "", uri_key: str = "--tracking-uri") -> RunSelection:
    """All runs of the chosen experiments (default: every experiment except reports and
    analyses) that carry bench's `dataset` and `model` tags, filtered by `filter_string`
    (MLflow search syntax), then by dataset and exact tag values. `uri_key`: the setting
    that gave `uri` (--tracking-uri, MLFLOW_TRACKING_URI), named by store errors.
    """
    uri = normalise_uri(uri)
    known = _experiments(uri, uri_key)
    names = _chosen_experiments(known, experiments, uri)
    frame = _read_runs(uri, {name: known[name] for name in names}, filter_string)
    if frame.empty:
        return RunSelection(frame, names, [])
    frame, notes = _select(frame, datasets, tags)
    return RunSelection(frame, names, notes)


def check_selected(selection: RunSelection, uri: str, datasets: Iterable[str] | None = None,
                   tags: Mapping[str, str] | None = None, filter_string: str = "") -> None:
    """ConfigError unless the selection holds a FINISHED run: a misspelt --dataset, --tag or
    --filter (or a store of failed runs only) wrote an empty report and exited 0. The error
    names the options and what the store has (its datasets, the values of each --tag key)."""
    runs = selection.runs
    if not runs.empty and (runs["status"] == FINISHED).any():
        return
    known = _experiments(uri)
    frame = _read_runs(uri, {n: known[n] for n in selection.experiments if n in known}, "")
    if not frame.empty:
        frame = frame[frame["dataset"].notna() & frame["model"].notna()]
    shown = tracking.mask_secrets(uri)
    if frame.empty:
        raise ConfigError(f"no bench run in {shown} (experiments: "
                          f"{', '.join(selection.experiments) or 'none'}): nothing to report")
    options = [*(f"--dataset {d}" for d in datasets or ()),
               *(f"--tag {k}={v}" for k, v in (tags or {}).items()),
               *([f"--filter {filter_string!r}"] if filter_string else [])]
    named = " ".join(options) or f"the runs of {shown}"
    if not runs.empty:
        counts = runs["status"].value_counts()
        raise ConfigError(f"{named}: no FINISHED run to report (the selected runs: "
                          f"{', '.join(f'{n} {status}' for status, n in counts.items())})")
    has = [f"datasets in the store: {', '.join(sorted(frame['dataset'].astype(str).unique()))}"]
    for key in tags or {}:
        column = key if key in frame.columns else f"tags.{key}"
        values = (sorted(frame[column].dropna().astype(str).unique())
                  if column in frame.columns else [])
        has.append(f"tag {key}: {', '.join(values[:20])}" if values
                   else f"no run has the tag {key!r}")
    raise ConfigError(f"{named}: no run matches; {'; '.join(has)}")


def _experiments(uri: str, key: str = "--tracking-uri") -> dict[str, str]:
    """{name: id} of the store's active experiments; a missing or unusable store is a
    TrackingError naming `key`."""
    tracking.check_store(uri, key=key)
    try:
        return tracking.experiments(uri)
    except Exception as error:  # the store itself is unusable
        raise TrackingError(f"cannot read MLflow store {uri}: {error}") from error


def _chosen_experiments(known: Mapping[str, str], experiments: Iterable[str] | None,
                        uri: str) -> list[str]:
    """The experiments named (each must exist), else every one but reports and analyses."""
    if not experiments:
        return sorted(n for n in known if n != REPORT_EXPERIMENT
                      and not n.startswith(_SKIPPED_PREFIXES))
    names = list(dict.fromkeys(experiments))
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(f"experiment(s) {missing} not in {uri}; it has {sorted(known)}")
    return names


def _read_runs(uri: str, experiment_ids: Mapping[str, str], filter_string: str
               ) -> pd.DataFrame:
    """One row per run (see the module docstring) of the experiments {name: id}."""
    rows = []
    for name, experiment_id in experiment_ids.items():
        try:
            runs = tracking.search_all_runs(uri, [experiment_id], filter_string, page_size=5000)
        except Exception as error:
            raise ConfigError(f"MLflow rejected the filter {filter_string!r}: "
                              f"{error}") from error
        rows += [_row(run, name) for run in runs]
    return pd.DataFrame(rows, columns=["run_id", "experiment", "run_name", "status",
                                       "start_time", *TAGS] if not rows else None)


def _select(frame: pd.DataFrame, datasets: Iterable[str] | None,
            tags: Mapping[str, str] | None) -> tuple[pd.DataFrame, list[str]]:
    """Bench runs that match the dataset and tag filters and have ended; notes say what was
    left out and why."""
    notes: list[str] = []
    untagged = frame["dataset"].isna() | frame["model"].isna()
    if untagged.any():
        notes.append(f"{int(untagged.sum())} run(s) without bench's dataset/model tags were "
                     "ignored (sweep parents or runs from other tools)")
        frame = frame[~untagged]
    if datasets:
        frame = frame[frame["dataset"].isin(list(datasets))]
    for key, value in (tags or {}).items():
        column = key if key in frame.columns else f"tags.{key}"
        if column not in frame.columns:
            frame = frame.iloc[0:0]
            notes.append(f"no run has the tag {key!r}")
            continue
        frame = frame[frame[column].astype(str) == str(value)]
    running = ~frame["status"].isin([FINISHED, FAILED, "KILLED"])
    if running.any():
        notes.append(f"{int(running.sum())} run(s) still RUNNING/SCHEDULED were left out")
        frame = frame[~running]
    frame = frame.assign(seed=pd.to_numeric(frame["seed"], errors="coerce"))
    return frame.reset_index(drop=True), notes


def _row(run: object, experiment: str) -> dict[str, object]:
    info, data = run.info, run.data  # type: ignore[attr-defined]
    row: dict[str, object] = {
        "run_id": info.run_id, "experiment": experiment, "run_name": info.run_name,
        "status": info.status, "start_time": info.start_time,
    }
    for tag in TAGS:
        row[tag] = data.tags.get(tag)
    for key, value in data.tags.items():
        if key not in TAGS and not key.startswith("mlflow."):
            row[f"tags.{key}"] = value
    for key, value in data.metrics.items():
        row[f"metrics.{key}"] = value
    for key, value in data.params.items():
        row[f"params.{key}"] = value
    return row


def finished_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """FINISHED runs, one per (config_id, seed): the latest when a cell-seed was run again.

    Returns the runs and how many older repeats were set aside.
    """
    done = runs[runs["status"] == FINISHED]
    if done.empty:
        return done, 0
    ordered = done.sort_values("start_time")
    keys = ["config_id", "seed"] if done["config_id"].notna().all() else ["run_id"]
    latest = ordered.drop_duplicates(keys, keep="last")
    return latest.reset_index(drop=True), len(done) - len(latest)


def parse_tag_filters(items: Iterable[str]) -> dict[str, str]:
    """["key=value", ...] -> {key: value}; a malformed item is a ConfigError."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
