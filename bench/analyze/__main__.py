"""`python -m bench.analyze dataset=<name>`: exploratory statistics of a dataset, ONE MLflow run.

TRAIN+VAL of the configured split are analysed, never TEST: where a dataset has no official
TEST partition, the rows the same split and seed would draw as TEST are left out, so nothing
read here (the statistics that guide feature choices) comes from TEST. The run (experiment
`analyze-<dataset>`) holds analysis.md, a self-contained analysis.html, plots/*.png (inside
the HTML too) and tables/*.csv, with the headline numbers as metrics. Column roles come from
the Schema and bench/analyze/conf/analyze/columns/<dataset>.yaml (docs/report.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from bench.analyze.columns import resolve_columns
from bench.errors import ConfigError
from bench.shutdown import skip_final_collection

# analyze.yaml and its columns/ group live apart from bench/conf, so `bench --help` does not
# list them; analyze.yaml adds bench/conf (pkg://bench.conf) to its search path.
ANALYZE_CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")


@dataclass
class AnalysisResult:
    run_id: str
    experiment: str
    out_dir: Path
    metrics: dict[str, float]


def run_analysis(cfg: DictConfig, out_dir: str | Path, echo: Callable[[str], Any] = print
                 ) -> AnalysisResult:
    """Load `cfg.dataset`, compute the statistics, write them to `out_dir` and log ONE run."""
    from bench import tracking
    from bench.analyze.sections import analyse
    from bench.instantiate import build

    check_options(cfg.analyze)
    tracking.preflight(cfg.tracking.uri)
    dataset = build(cfg.dataset)
    frame, schema = _train_and_val(dataset, build(cfg.split)), dataset.schema
    options = cfg.analyze
    columns = resolve_columns(OmegaConf.to_container(options.columns, resolve=True) or {},
                              schema, list(frame.columns))
    experiment = f"analyze-{dataset.name}"
    tags = {"dataset": dataset.name, "git_commit": tracking.git_commit(),
            "analysis": "exploratory", **{f"version.{k}": v for k, v in
                                          tracking.package_versions().items()},
            **{k: str(v) for k, v in dataset.notes.items()}}
    out_dir = Path(out_dir)
    held_out = len(dataset.train) - len(frame)
    echo(f"[analyze] {dataset.name}: {len(frame):,} rows x {frame.shape[1]} columns "
         f"(TRAIN+VAL of split={cfg.split._target_.rsplit('.', 1)[-1]}"
         + (f"; the {held_out:,} TEST rows it draws are left out)" if held_out else ")"))
    params = {"rows": len(frame), "corr_threshold": options.corr_threshold,
              "pca_rows": options.pca_rows, "tsne_rows": options.tsne_rows,
              **{f"columns.{k}": v for k, v in columns.items()}}
    with tracking.report_run(cfg.tracking.uri, experiment, f"analyze/{dataset.name}", out_dir,
                             tags, params) as run:
        tracking.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/resolved.yaml")
        run.metrics.update(analyse(frame, schema, dataset.name, columns, options, out_dir, echo))
    for line in key_statistics(run.metrics):
        echo(f"[analyze] {line}")
    echo(f"[analyze] MLflow run {run.run_id} (experiment '{experiment}'); files in {out_dir}")
    return AnalysisResult(run.run_id, experiment, out_dir, dict(run.metrics))


def _train_and_val(dataset: Any, split: Callable[[Any], Any]) -> Any:
    """The rows of `dataset.train` that `split` puts in TRAIN or VAL, in source order (the
    rows it draws as TEST, when the dataset has no official TEST partition, are left out)."""
    import pandas as pd

    splits = split(dataset)
    return pd.concat([splits.train, splits.val]).sort_index()


def check_options(options: DictConfig) -> None:
    """ConfigError naming the `analyze.*` key, before the data is loaded or a run created
    (tsne_rows=0 or perplexity=0 were tracebacks after the run existed, corr_threshold=2 was
    taken)."""
    from bench.validate import POSITIVE, SEED, integer, number

    rules = {"corr_threshold": number(0, 1, low_open=True), "pca_rows": integer(2),
             "tsne_rows": integer(2), "tsne_perplexity": POSITIVE, "random_state": SEED,
             "max_levels_plot": integer(1)}
    plain = OmegaConf.to_container(options, resolve=True)
    assert isinstance(plain, dict)
    for key, rule in rules.items():
        if key in plain:
            rule.check(f"analyze.{key}", plain[key])
    if plain.get("tsne_perplexity", 30) >= plain.get("tsne_rows", 2000):
        raise ConfigError(f"analyze.tsne_perplexity={plain['tsne_perplexity']} must be below "
                          f"analyze.tsne_rows={plain['tsne_rows']} (t-SNE's requirement)")


def key_statistics(metrics: dict[str, Any]) -> list[str]:
    """The headline tests as console lines: chi-square (df, p, Cramer's V) per categorical
    role, Welch t (p, Cohen's d) per byte column, pseudo R2 per single-feature logit."""
    lines = [f"attack share {metrics['attack_share']:.4f}"] if "attack_share" in metrics else []
    for key in sorted(k.removeprefix("chi2_") for k in metrics if k.startswith("chi2_")
                      and not k.startswith(("chi2_dof_", "chi2_p_"))):
        lines.append(f"chi-square {key} x label: {metrics[f'chi2_{key}']:,.4f} "
                     f"(df {metrics[f'chi2_dof_{key}']:.0f}, p {metrics[f'chi2_p_{key}']:.3g}, "
                     f"Cramer's V {metrics[f'cramers_v_{key}']:.3f})")
    for key in sorted(k.removeprefix("welch_t_") for k in metrics if k.startswith("welch_t_")):
        lines.append(f"Welch t {key} attack vs normal: {metrics[f'welch_t_{key}']:.3f} "
                     f"(p {metrics[f'welch_p_{key}']:.3g}, Cohen's d "
                     f"{metrics[f'cohen_d_{key}']:.3f})")
    for key in sorted(k for k in metrics if k.startswith("logit_pseudo_r2_")):
        lines.append(f"logit {key.removeprefix('logit_pseudo_r2_')}: pseudo R2 "
                     f"{metrics[key]:.4f}")
    return lines


def task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    # a BenchError reaches main's run_reporting_user_errors: one `error: ...` line, exit 2
    run_analysis(cfg, Path(HydraConfig.get().runtime.output_dir) / "analysis")


@hydra.main(config_path=ANALYZE_CONFIG_DIR, config_name="analyze")
def hydra_main(cfg: DictConfig) -> None:
    task(cfg)


def main() -> None:
    from bench.errors import hydras_failed_job_line_hidden, run_reporting_user_errors

    def analyze() -> None:
        from bench.launchers import prepare_cli

        sys.argv[1:] = prepare_cli(sys.argv[1:])  # passwords out, bench's plugins known
        with hydras_failed_job_line_hidden():
            hydra_main()

    run_reporting_user_errors(analyze)


if __name__ == "__main__":
    skip_final_collection()
    main()
