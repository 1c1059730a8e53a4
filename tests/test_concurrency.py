"""Fresh stores under concurrency: separate commands and the joblib launcher starting together
against a sqlite store that does not exist yet all record their runs (docs/resume.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench import tracking
from bench.launchers import jobs
from bench.launchers.jobs import _Prefixed, threads_per_job

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg", **extra}


def test_prefixed_stream_marks_every_line_once():
    class Sink:
        text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    sink = Sink()
    stream = _Prefixed(sink, "[job 3] ")
    stream.write("a\nb")
    stream.write("c\n\nd\n")
    assert sink.text == "[job 3] a\n[job 3] bc\n[job 3] \n[job 3] d\n"


def test_threads_per_job_share_the_cores(monkeypatch):
    monkeypatch.delenv("BENCH_MODEL_THREADS", raising=False)
    monkeypatch.setattr(jobs, "cores", lambda: 8)
    assert [threads_per_job(n) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setenv("BENCH_MODEL_THREADS", "3")
    assert threads_per_job(2) == 3


@pytest.mark.slow
def test_four_commands_on_a_fresh_store_all_record_their_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "bench", "model=logreg", f"seed={seed}", "dataset.n_rows=1000",
         f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / str(seed)}"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for seed in range(4)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
    runs = tracking.runs_by_id(uri)
    assert Counter(status for status, _ in runs.values()) == {"FINISHED": 4}
    assert sorted(tags["seed"] for _, tags in runs.values()) == ["0", "1", "2", "3"]


def test_warm_workers_are_for_the_joblib_launchers_loky_backend_with_parallel_jobs():
    from omegaconf import OmegaConf

    from bench.launchers.warm_workers import wanted

    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"

    def launcher(**settings: object) -> object:
        return OmegaConf.create({"_target_": joblib, "n_jobs": 2, "backend": "loky",
                                 **settings})

    assert wanted(launcher()) and wanted(launcher(backend=None))
    assert not wanted(launcher(n_jobs=1))  # joblib runs one job at a time in the caller
    assert not wanted(launcher(backend="multiprocessing"))  # left as Hydra runs it
    assert not wanted(OmegaConf.create(
        {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}))


def test_a_grid_run_in_the_launching_process_ends_its_runs_as_the_next_cell_starts():
    """Cells running one after another in this process (basic launcher, or joblib with one
    job at a time) leave each run's figures to be drawn while the next cell runs; other
    launchers and sweepers end each run with its figures."""
    from omegaconf import OmegaConf

    from bench.app import _one_cell_after_another

    basic_sweeper = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"

    def settings(launcher: dict, sweeper: str = basic_sweeper) -> object:
        return OmegaConf.create({"launcher": launcher, "sweeper": {"_target_": sweeper}})

    basic = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    assert _one_cell_after_another(settings(basic))
    assert _one_cell_after_another(settings({"_target_": joblib, "n_jobs": 1}))
    assert not _one_cell_after_another(settings({"_target_": joblib, "n_jobs": 2}))
    assert not _one_cell_after_another(settings(
        {"_target_": "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLocalLauncher"}))
    assert not _one_cell_after_another(settings(
        basic, "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"))


def test_joblib_workers_are_forks_of_a_server_that_imported_a_cells_libraries():
    """What the joblib launcher gets after warm_workers.start: loky workers whose parent is
    the fork server (not the launching process) and that have MLflow and scikit-learn loaded
    before their first job."""
    script = """
import json, os, sys
from joblib import Parallel, delayed
from omegaconf import OmegaConf
from bench.launchers import warm_workers
assert "mlflow" not in sys.modules and "sklearn" not in sys.modules
launcher = OmegaConf.create({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher."
                             "JoblibLauncher", "n_jobs": 2, "backend": "loky"})
assert warm_workers.start(launcher)
def probe(_):
    return os.getppid(), "mlflow.pyfunc" in sys.modules, "sklearn.tree" in sys.modules
print(json.dumps([os.getpid(), Parallel(n_jobs=2)(delayed(probe)(i) for i in range(4))]))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=_env(),
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    launching, probes = json.loads(result.stdout.splitlines()[-1])
    assert len(probes) == 4
    for parent, has_mlflow, has_sklearn in probes:
        assert parent != launching and has_mlflow and has_sklearn


@pytest.mark.slow
def test_a_joblib_grid_on_a_fresh_store_records_every_cell_with_job_prefixes(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "model=logreg,naive_bayes", "seed=0,1", "dataset.n_rows=1000", f"tracking.uri={uri}",
         f"hydra.sweep.dir={tmp_path / 'multirun'}"],
        cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    runs = tracking.runs_by_id(uri)
    assert Counter(status for status, _ in runs.values()) == {"FINISHED": 4}
    for job in range(4):
        threads = threads_per_job(2)
        assert f"[job {job}] {threads} thread(s) per model (2 parallel jobs)" in output, (
            output[-3000:])
        assert any(line.startswith(f"[job {job}] MLflow run ") for line in output.splitlines())


def test_a_users_own_program_keeps_lokys_workers(tmp_path):
    """Workers of a fork server would import the launching program's __main__ again; a script
    of the user's (maybe without a main guard) keeps loky's own workers, `python -m bench`
    gets warm ones."""
    script = tmp_path / "my_grid.py"
    script.write_text(
        "from omegaconf import OmegaConf\n"
        "from bench.launchers import warm_workers\n"
        "launcher = OmegaConf.create({'_target_': 'hydra_plugins.hydra_joblib_launcher."
        "joblib_launcher.JoblibLauncher', 'n_jobs': 2, 'backend': 'loky'})\n"
        "print('warm' if warm_workers.start(launcher) else 'loky')\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["loky"]
