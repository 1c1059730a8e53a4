"""Optuna sweeps: objective rules, storage, presets, and whole sweeps through the real CLI."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

import bench.app
from bench.app import CONFIG_DIR
from bench.errors import ConfigError
from bench.models.keras_nets import dfnn, layer_widths
from bench.objective import objective_names, objective_value, trial_outcome
from bench.sweeps.callback import MlflowSweepCallback
from bench.sweeps.resume import base_config_id
from bench.sweeps.storage import make_storage

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "hparams_search").glob("*.yaml"))


def _job(value: object = None, error: BaseException | None = None) -> JobReturn:
    ret = JobReturn()
    if error is not None:
        ret.return_value, ret.status = error, JobStatus.FAILED
    else:
        ret.return_value, ret.status = value, JobStatus.COMPLETED
    return ret


# ----------------------------------------------------------------------------- objective
def test_objective_accepts_val_metrics_and_timings_and_refuses_test():
    assert objective_names("val_f1") == ["val_f1"]
    assert objective_names(OmegaConf.create(["val_f1", "fit_seconds"])) == ["val_f1",
                                                                           "fit_seconds"]
    for bad in ("test_f1", ["val_f1", "test_roc_auc"], "threshold", [], ["val_f1", "val_f1"]):
        with pytest.raises(ConfigError):
            objective_names(bad)


def test_objective_value_is_a_float_for_a_name_and_a_list_for_a_list():
    metrics = {"val_f1": 0.8, "fit_seconds": 2.0, "test_f1": 0.7}
    assert objective_value(metrics, "val_f1") == 0.8
    assert objective_value(metrics, ["val_f1", "fit_seconds"]) == [0.8, 2.0]
    with pytest.raises(ConfigError, match="val_pr_auc"):
        objective_value(metrics, "val_pr_auc")


def test_trial_outcome_fails_errors_and_nan_and_prunes_pruned_trials():
    assert trial_outcome(_job(0.5), 1) == ("COMPLETE", [0.5], "")
    assert trial_outcome(_job([0.5, 2.0]), 2) == ("COMPLETE", [0.5, 2.0], "")
    assert trial_outcome(_job(math.nan), 1)[0] == "FAIL"
    assert trial_outcome(_job([0.5, math.nan]), 2)[0] == "FAIL"
    assert trial_outcome(_job(0.5), 2)[0] == "FAIL"
    assert trial_outcome(_job(error=ValueError("boom")), 1) == ("FAIL", None,
                                                               "ValueError: boom")
    assert trial_outcome(_job(error=optuna.TrialPruned("epoch 3")), 1)[0] == "PRUNED"


def test_a_plain_run_imports_neither_optuna_nor_the_sweep_package(tmp_path):
    probe = ("import runpy, sys\n"
             "sys.argv = ['bench', 'dataset.n_rows=2000', 'model=logreg']\n"
             "try:\n    runpy.run_module('bench', run_name='__main__')\n"
             "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'optuna'\n"
             "                or m == 'bench.sweeps' or m.startswith('bench.sweeps.'))\n"
             "print('SWEEP MODULES', loaded)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MLflow run" in result.stdout  # the run happened
    assert "SWEEP MODULES []" in result.stdout, result.stdout[-2000:]


# ------------------------------------------------------------------------------- storage
def test_a_file_storage_is_a_journal_shared_by_separate_storage_objects(tmp_path):
    assert make_storage(None) is None
    url = f"sqlite:///{tmp_path / 'db' / 'optuna.db'}"
    assert make_storage(url) == url and (tmp_path / "db").is_dir()
    path = tmp_path / "studies" / "s.journal"
    first = make_storage(str(path))
    assert isinstance(first, optuna.storages.JournalStorage)
    study = optuna.create_study(study_name="s", storage=first, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=make_storage(f"journal:{path}"))
    assert len(again.trials) == 2


def test_base_config_id_ignores_tracking_and_searched_keys_but_not_the_seed():
    cfg = OmegaConf.create({"seed": 0, "model": {"a": 1, "b": 2}, "tracking": {"uri": "x"}})
    same = OmegaConf.create({"seed": 0, "model": {"a": 5, "b": 2}, "tracking": {"uri": "y"}})
    other_seed = OmegaConf.create({"seed": 1, "model": {"a": 1, "b": 2}})
    assert base_config_id(cfg, ["model.a"]) == base_config_id(same, ["model.a"])
    assert base_config_id(cfg, ["model.a"]) != base_config_id(other_seed, ["model.a"])
    assert base_config_id(cfg, []) != base_config_id(same, [])


# ------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_search_val_metrics_with_a_seeded_persistent_study(preset, tracking_uri):
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("config", overrides=[f"hparams_search={preset}",
                                           f"tracking.uri={tracking_uri}", "seed=7"],
                      return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "bench.sweeps.sweeper.OptunaSweeper"
    assert sweeper.sampler.seed == 7
    assert sweeper.study_name.startswith(f"{preset}-")
    assert str(sweeper.storage).startswith("mlruns/")  # a journal file beside the MLflow store
    assert sweeper.max_failure_rate == 1.0
    assert "bench.sweeps.callback.MlflowSweepCallback" in [c._target_ for c in
                                                 cfg.hydra.callbacks.values()]
    names = objective_names(cfg.optimized_metric)
    directions = sweeper.direction if isinstance(sweeper.direction, list) else [sweeper.direction]
    assert len(names) == len(directions)
    space, fixed, _ = create_params_from_overrides([f"{k}={v}" for k, v in
                                                    sweeper.params.items()])
    assert space and not fixed
    for key in space:  # every searched key exists in the composed config
        assert OmegaConf.select(cfg, key, default="__missing__") != "__missing__", key


def test_dfnn_factory_turns_width_and_depth_into_a_funnel():
    assert layer_widths(128, 2) == [128, 64]
    assert layer_widths(256, 3) == [256, 128, 64]
    model = dfnn(units=64, depth=3, class_weight="none", epochs=1)
    assert model.hidden_units == [64, 32, 16] and model.class_weight is None
    with pytest.raises(ConfigError):
        dfnn(units=64, depth=2, hidden_units=[8])
    with pytest.raises(ConfigError):
        layer_widths(64, 0)


# ------------------------------------------------------------------- MLflow, in process
def test_a_nan_objective_ends_the_trial_run_failed(tracking_uri):
    import mlflow

    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("sweep-test")
    parent = client.create_run(experiment_id, run_name="sweep/parent").info.run_id
    config = OmegaConf.create({
        "optimized_metric": "val_f1", "hydra": {"job": {"num": 3}},
        "tracking": {"uri": tracking_uri, "parent_run_id": parent, "study_name": "s",
                     "trial_number": 3}})
    callback = MlflowSweepCallback()
    callback.on_job_start(config)
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id, parent_run_id=parent) as run:
        mlflow.log_metric("val_f1", math.nan)
    callback.on_job_end(config, _job(math.nan))
    child = client.get_run(run.info.run_id)
    assert child.info.status == "FAILED"
    assert child.data.tags["optuna.state"] == "FAIL"
    assert child.data.tags["optuna.trial_number"] == "3"
    assert "NaN" in child.data.tags["error"]


# ------------------------------------------------------------------- the CLI, end to end
def _sweep(tmp_path: Path, sweep_name: str, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bench", "-m", f"hydra.sweep.dir={tmp_path / sweep_name}",
               f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
               f"hydra.sweeper.storage={tmp_path / 'optuna.journal'}", "dataset.n_rows=2000",
               *overrides]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _runs(client: MlflowClient, filter_string: str) -> list:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, filter_string=filter_string, max_results=500))


@pytest.mark.slow
def test_xgboost_sweep_links_trials_to_runs_survives_a_failing_trial_and_resumes(tmp_path):
    # each value of the search space is valid alone (checked before the sweep starts), but
    # val_size 0.5 with test_size 0.6 leaves no TRAIN: the trial's config validation refuses
    # it before its run is created, so those trials FAIL in the study, with no MLflow run,
    # and the sweep goes on
    overrides = ("hparams_search=xgboost_optuna", "model.n_estimators=int(interval(5,20))",
                 "model.max_depth=choice(3,4)", "split.val_size=choice(0.2,0.5)",
                 "split.test_size=choice(0.2,0.6)", "seed=0")  # seed 0: some draw both
    _sweep(tmp_path, "first", *overrides, "hydra.sweeper.n_trials=4")
    study = optuna.load_study(study_name="xgboost_optuna-synthetic",
                              storage=make_storage(str(tmp_path / "optuna.journal")))
    states = [t.state.name for t in study.trials]
    assert len(states) == 4 and "FAIL" in states and "COMPLETE" in states, states

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (parent,) = _runs(client, "tags.`bench.sweep` = 'parent'")
    assert parent.info.status == "FINISHED"
    children = _runs(client, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in children}
    complete = [t.number for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(by_number) == complete
    for trial in study.trials:
        if trial.state.name == "COMPLETE":
            run = by_number[trial.number]
            assert run.data.params["tracking.trial_number"] == str(trial.number)
            assert run.info.status == "FINISHED"
            assert trial.value == pytest.approx(run.data.metrics["val_f1"])
        else:
            assert (trial.params["split.val_size"], trial.params["split.test_size"]) == (
                0.5, 0.6) and trial.number not in by_number

    best = study.best_trial
    assert parent.data.metrics["best_val_f1"] == pytest.approx(best.value)
    assert parent.data.params["best.model.max_depth"] == str(best.params["model.max_depth"])
    assert parent.data.params["search.model.max_depth"] == "choice(3,4)"
    assert parent.data.tags["best_trial_run_id"] == by_number[best.number].info.run_id
    artifacts = {a.path for folder in ("reports", "plots")
                 for a in client.list_artifacts(parent.info.run_id, folder)}
    assert {"reports/trials.csv", "reports/best.json",
            "plots/optimization_history.png"} <= artifacts

    # the same command again continues the same study, under a second parent run
    _sweep(tmp_path, "second", *overrides, "hydra.sweeper.n_trials=2")
    study = optuna.load_study(study_name="xgboost_optuna-synthetic",
                              storage=make_storage(str(tmp_path / "optuna.journal")))
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4, 5]
    parents = _runs(client, "tags.`bench.sweep` = 'parent'")
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(_runs(client, "tags.`optuna.study_name` = 'xgboost_optuna-synthetic'")) == len(
        complete)


@pytest.mark.slow
def test_a_resumed_study_refuses_another_base_configuration(tmp_path):
    overrides = ("hparams_search=xgboost_optuna", "model.n_estimators=int(interval(5,10))",
                 "hydra.sweeper.n_trials=1")
    _sweep(tmp_path, "first", *overrides)
    command = [sys.executable, "-m", "bench", "-m", f"hydra.sweep.dir={tmp_path / 'second'}",
               f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
               f"hydra.sweeper.storage={tmp_path / 'optuna.journal'}", "dataset.n_rows=3000",
               *overrides]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode != 0
    assert "another base configuration" in result.stdout + result.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert {p.info.status for p in _runs(client, "tags.`bench.sweep` = 'parent'")} == {
        "FINISHED", "FAILED"}  # the refused sweep's parent is closed, not left RUNNING


@pytest.mark.slow
def test_dfnn_sweep_reports_epochs_and_prunes_poor_trials(tmp_path):
    _sweep(tmp_path, "dfnn", "hparams_search=dfnn_optuna", "hydra.sweeper.n_trials=4",
           "model.epochs=4", "model.callbacks.0.n_startup_trials=1",
           "model.callbacks.0.n_warmup_steps=0")
    study = optuna.load_study(study_name="dfnn_optuna-synthetic",
                              storage=make_storage(str(tmp_path / "optuna.journal")))
    states = [t.state.name for t in study.trials]
    assert set(states) <= {"COMPLETE", "PRUNED"} and "PRUNED" in states, states
    assert all(t.intermediate_values for t in study.trials)  # -val_loss, once per epoch
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {int(r.data.tags["optuna.trial_number"]): r
            for r in _runs(client, "tags.`optuna.study_name` = 'dfnn_optuna-synthetic'")}
    for trial in study.trials:
        expected = "KILLED" if trial.state.name == "PRUNED" else "FINISHED"
        assert runs[trial.number].info.status == expected


@pytest.mark.slow
def test_epsilon_sweep_sets_the_gaussian_threshold_to_minus_log_epsilon(tmp_path):
    _sweep(tmp_path, "eps", "hparams_search=epsilon_optuna", "hydra.sweeper.n_trials=3")
    study = optuna.load_study(study_name="epsilon_optuna-synthetic-gaussian",
                              storage=make_storage(str(tmp_path / "optuna.journal")))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {int(r.data.tags["optuna.trial_number"]): r
            for r in _runs(client, "tags.`bench.sweep` = 'trial'")}
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    for trial in study.trials:
        metrics = runs[trial.number].data.metrics
        assert metrics["threshold"] == pytest.approx(-math.log(trial.params["threshold.epsilon"]))
        assert trial.value == pytest.approx(metrics["val_f1"])


@pytest.mark.slow
@pytest.mark.skipif("objective_value" not in inspect.getsource(bench.app),
                    reason="bench/app.py does not return several metrics yet (docs/sweeps.md)")
def test_multi_objective_sweep_returns_val_f1_and_fit_seconds(tmp_path):
    _sweep(tmp_path, "mo", "hparams_search=xgboost_optuna", "hydra.sweeper.n_trials=3",
           "model.n_estimators=int(interval(5,20))", "optimized_metric=[val_f1,fit_seconds]",
           "hydra.sweeper.direction=[maximize,minimize]", "hydra.sweeper.study_name=mo")
    study = optuna.load_study(study_name="mo",
                              storage=make_storage(str(tmp_path / "optuna.journal")))
    assert [len(t.values) for t in study.trials] == [2, 2, 2]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {int(r.data.tags["optuna.trial_number"]): r
            for r in _runs(client, "tags.`optuna.study_name` = 'mo'")}
    for trial in study.trials:
        metrics = runs[trial.number].data.metrics
        assert trial.values == pytest.approx([metrics["val_f1"], metrics["fit_seconds"]])
    assert (tmp_path / "mo" / "optuna" / "plots" / "pareto_front.png").exists()
