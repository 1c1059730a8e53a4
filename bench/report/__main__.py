"""`python -m bench.report`: compare and explain the runs of an MLflow tracking store.

Reads bench runs (any store: sqlite:///..., http://host:5000), writes report.md, ONE
self-contained report.html (images embedded), images/ and CSV tables into --output, and logs
the folder as a run named `report` in the experiment `bench-reports` of the same store.
See docs/report.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, exit_code_reporting_user_errors
from bench.shutdown import skip_final_collection

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
DEFAULT_METRIC, DEFAULT_SELECT_BY = "test_f1", "val_f1"

EPILOG = """\
examples:
  python -m bench -m seed=0,1,2,3,4 model=xgboost,random_forest,logreg   # runs to compare
  python -m bench.report                                    # every experiment of mlruns/
  python -m bench.report --tracking-uri sqlite:////tmp/demo/mlflow.db --output /tmp/demo/report
  python -m bench.report --dataset nslkdd --dataset unsw --tag preprocess=standard
  python -m bench.report --filter "tags.selector = 'none'" --metric test_roc_auc
  python -m bench.report --compare none/xgboost none/logreg --blocks dataset

statistics: leaderboard = mean ± half-width of the t confidence interval over seeds; Friedman
test + Nemenyi post-hoc with a critical-difference diagram over blocks (autorank; needs >= 3
pipelines and >= 5 blocks, else a note); paired Wilcoxon signed-rank test + paired bootstrap CI
for two pipelines (scipy); per-family TEST recall (mean over seeds).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # ~50 lines of flat argparse declarations, one per option: longer, but nothing to follow.
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description=__doc__.splitlines()[0],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("which runs")
    source.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking store to read (and log the report to); a path "
                             "ending in .db is taken as a SQLite file (default: "
                             f"$MLFLOW_TRACKING_URI when set and not empty, else {DEFAULT_URI})")
    source.add_argument("--experiment", action="append", default=[], metavar="NAME",
                        help="experiment to read, repeatable (default: all but bench-reports "
                             "and analyze-*)")
    source.add_argument("--dataset", action="append", default=[], metavar="NAME",
                        help="keep runs whose dataset tag is NAME, repeatable")
    source.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose tag KEY equals VALUE, repeatable "
                             "(e.g. split=stratified, preprocess=standard)")
    source.add_argument("--filter", default="", metavar="MLFLOW_FILTER",
                        help="MLflow search filter string applied in the store, e.g. "
                             "\"tags.model = 'xgboost' and metrics.test_f1 > 0.5\"")
    stats = parser.add_argument_group("statistics")
    stats.add_argument("--metric", default=DEFAULT_METRIC,
                       help="metric ranked and tested, a logged metric name (default: "
                            "%(default)s; fpr/seconds/latency rank lower-is-better)")
    stats.add_argument("--select-by", default=DEFAULT_SELECT_BY, metavar="VAL_METRIC",
                       help="VAL metric that picks the best pipeline per dataset (and split); "
                            "TEST is shown beside the pick, never used (default: %(default)s)")
    stats.add_argument("--alpha", type=float, default=0.05,
                       help="significance level (default: %(default)s)")
    stats.add_argument("--confidence", type=float, default=0.95,
                       help="confidence level of intervals (default: %(default)s)")
    stats.add_argument("--pipeline-keys", default="selector,model",
                       help="comma-separated tags that name a pipeline across datasets "
                            "(default: %(default)s; add preprocess,threshold,... to separate "
                            "variants)")
    stats.add_argument("--blocks", choices=("dataset-seed", "dataset"), default="dataset-seed",
                       help="blocks of the Friedman test and the paired comparison: each "
                            "dataset x seed, or each dataset with seeds averaged "
                            "(default: %(default)s)")
    stats.add_argument("--compare", nargs=2, metavar=("A", "B"),
                       help="pipelines to compare pairwise, labels as in the report (e.g. "
                            "none/xgboost none/logreg; default: the two best by mean rank)")
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, default=None,
                     help="folder for report.md, report.html, images/ and CSV tables "
                          "(default: outputs/reports/<date>_<time>)")
    out.add_argument("--title", default="bench report", help="report title")
    out.add_argument("--register-best", nargs="?", const="champion", default=None,
                     metavar="ALIAS", help="register each dataset's VAL pick as a version of "
                     "the registered model bench-<dataset> with ALIAS (default: champion); "
                     "then `bench score run=models:/bench-<dataset>@ALIAS ...`")
    out.add_argument("--no-log", action="store_true",
                     help="do not log the report to MLflow (experiment bench-reports)")
    out.add_argument("--report-experiment", default="bench-reports",
                     help="MLflow experiment the report run is logged to (default: "
                          "%(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench.secrets import hide_passwords

    os.environ.setdefault("MPLBACKEND", "Agg")
    return exit_code_reporting_user_errors(lambda: _main(parse_args(hide_passwords(
        sys.argv[1:] if argv is None else argv))))


def _main(args: argparse.Namespace) -> int:
    from bench import tracking
    from bench.report.build import ReportOptions, build_report, log_report
    from bench.report.runs import check_selected, load_runs, normalise_uri, parse_tag_filters

    # every option that can be checked is checked before the store is read, then those that
    # need its runs before anything is written: an error leaves no report folder behind
    if not 0 < args.alpha < 1 or not 0 < args.confidence < 1:
        raise ConfigError("--alpha and --confidence must lie in (0, 1)")
    if args.compare and args.compare[0] == args.compare[1]:
        raise ConfigError(f"--compare {args.compare[0]} {args.compare[1]}: name two different "
                          "pipelines")
    if not args.select_by.startswith("val_"):
        raise ConfigError(f"--select-by {args.select_by}: the choice is made on VAL; use a "
                          "val_* metric")
    if args.register_best is not None:
        tracking.check_registration(None, args.register_best,
                                    ("--register-best", "--register-best"))
    if not args.no_log:
        tracking.check_experiment(None, args.report_experiment, "--report-experiment")
    output = args.output or Path("outputs/reports") / dt.datetime.now().strftime(
        "%Y-%m-%d_%H-%M-%S")
    _check_output(output)
    given, uri_key = tracking.command_uri(args.tracking_uri, DEFAULT_URI)
    uri = normalise_uri(given)
    tags = parse_tag_filters(args.tag)
    keys = [k.strip() for k in args.pipeline_keys.split(",") if k.strip()]
    if not keys:
        raise ConfigError("--pipeline-keys needs at least one tag name")
    selection = load_runs(uri, args.experiment, args.dataset, tags, args.filter,
                          uri_key=uri_key)
    check_selected(selection, uri, args.dataset, tags, args.filter)
    for option, metric, default in (("--metric", args.metric, DEFAULT_METRIC),
                                    ("--select-by", args.select_by, DEFAULT_SELECT_BY)):
        if metric != default:  # a name the user typed
            _check_logged(option, metric, selection.runs)
    missing = [k for k in keys if k not in selection.runs.columns]
    if missing and not selection.runs.empty:
        raise ConfigError(f"--pipeline-keys {missing} are not tags of the runs")
    _check_against_runs(args, keys, selection.runs)
    if not args.no_log:
        tracking.check_experiment(uri, args.report_experiment, "--report-experiment")
    source = {"tracking URI": uri, "experiments": args.experiment, "datasets": args.dataset,
              "tags": ", ".join(args.tag), "MLflow filter": args.filter}
    options = ReportOptions(metric=args.metric, select_by=args.select_by, alpha=args.alpha,
                            confidence=args.confidence,
                            pipeline_keys=keys, blocks=args.blocks, compare=args.compare,
                            title=args.title, source=source)
    result = build_report(selection, output, options)
    print(f"report: {result.paths['markdown']}")
    print(f"report: {result.paths['html']}")
    summary = result.summary
    print(f"{summary.get('runs', 0)} runs: {summary.get('finished', 0)} finished, "
          f"{summary.get('failed', 0)} failed")
    _print_selection(result.selection, args.select_by)
    if args.register_best is not None:
        _register(uri, result.selection, args.select_by, args.register_best)
    if not args.no_log:
        filters = {"report.filter": args.filter, "report.datasets": ",".join(args.dataset),
                   "report.tags": ",".join(args.tag),
                   "report.experiments": ",".join(selection.experiments)}
        run_id = log_report(uri, output, summary, {k: v[:5000] for k, v in filters.items()},
                            args.report_experiment)
        print(f"MLflow run {run_id} (experiment '{args.report_experiment}', run 'report')")
    return 0


def _check_output(folder: Path | None) -> None:
    """Before any run is read: `--output` is a folder that does not exist yet or is empty,
    and can be created (an empty value wrote into the current folder, an existing report's
    stale tables were mixed with the new ones and logged with them, a file was a traceback)."""
    from bench.validate import check_output_folder

    if folder is None:
        return
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder}: is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"--output {folder}: exists and is not empty; the report's files "
                          "would mix with its files: name a new folder")
    check_output_folder("--output", str(folder), f"--output {folder}")


def _check_against_runs(args: argparse.Namespace, keys: list[str], runs: Any) -> None:
    """The options that name things in the selected runs, checked before the report is
    written: each --compare label is a pipeline with finished runs, and --register-best
    has a VAL pick whose registered model name (bench-<dataset>) MLflow accepts."""
    from bench import tracking
    from bench.report import stats, tables
    from bench.report.runs import finished_runs

    finished, _ = finished_runs(runs) if not runs.empty else (runs, 0)
    if args.compare and not finished.empty:
        labels = sorted(set(stats.pipeline_labels(finished, keys)))
        unknown = [label for label in args.compare if label not in labels]
        if unknown:
            raise ConfigError(f"--compare {unknown[0]}: no finished run of that pipeline "
                              f"({'/'.join(keys)}); pipelines: {', '.join(labels)}")
    if args.register_best is None:
        return
    picks = tables.select_by_val(finished, args.select_by)
    if picks.empty:
        raise ConfigError(f"--register-best: no finished run has the VAL metric "
                          f"{args.select_by}")
    for dataset in picks["dataset"].astype(str).unique():
        tracking.check_registration(f"bench-{dataset}", args.register_best,
                                    ("--register-best: model name", "--register-best"))


def _check_logged(option: str, metric: str, runs: Any) -> None:
    """ConfigError when runs were found and none logged `metric` (a typo would otherwise give
    a report with empty rankings), naming the closest logged metrics."""
    import difflib

    logged = sorted(c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics."))
    if runs.empty or metric in logged:
        return
    close = difflib.get_close_matches(metric, logged, n=3) or logged[:8]
    raise ConfigError(f"{option} {metric}: no selected run logged it; logged metrics include "
                      f"{', '.join(close)}")


def _print_selection(picks: Any, metric: str) -> None:
    """One line per dataset (and split): what VAL chose, and its TEST beside it."""
    for pick in picks.to_dict("records"):
        where = pick["dataset"] + (f", split={pick['split']}" if pick.get("split") else "")
        tests = ", ".join(f"{k} {pick[k]:.4f}" for k in ("test_f1", "test_accuracy",
                                                         "test21_accuracy") if k in pick
                          and pick[k] == pick[k])
        print(f"selected by VAL {metric} ({where}): {pick['selector']}/{pick['model']} "
              f"(mean {pick[metric]:.4f} over {pick['n']} seed(s), {pick['candidates']} "
              f"candidates); TEST: {tests}")


def _register(uri: str, picks: Any, metric: str, alias: str) -> None:
    from bench import tracking

    if picks.empty:
        raise ConfigError(f"--register-best: no finished run has the VAL metric {metric}")
    for dataset, part in picks.groupby("dataset"):
        if len(part) > 1:  # several validations: register the pick of the first split named
            part = part.sort_values("split")
        pick = part.iloc[0]
        chosen = tracking.register_run(uri, pick["best_run_id"], f"bench-{dataset}", alias,
                                       f"chosen by mean VAL {metric} over {pick['n']} seed(s) "
                                       f"among {pick['candidates']} pipelines", metric)
        print(f"registered {chosen['name']} version {chosen['version']} (@{alias}): run "
              f"{chosen['run_id']}")


if __name__ == "__main__":
    skip_final_collection()
    sys.exit(main())
