"""What runs say: log records on the console and in app.log, progress bars on a terminal and
plain lines elsewhere, TensorFlow's start-up noise kept out, the end-of-multirun summary, and
the Optuna study's names and run ids.

The terminal tests run the real CLI under a pseudo-terminal (Python's pty module), so they need
nothing installed beyond bench."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench import cells, console
from bench.callbacks import multirun_size, summary_text

REPO_ROOT = Path(__file__).resolve().parents[1]
TF_NOISE = ("absl::InitializeLog", "oneDNN", "cuInit", "cudart_stub", "cpu_feature_guard")


# ------------------------------------------------------------------------------- units
def _config(**overrides: object) -> object:
    base = {"optimized_metric": "val_f1", "tracking": {"uri": "sqlite:///mlruns/mlflow.db"},
            "hydra": {"sweeper": {}, "overrides": {"task": []}}}
    return OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(overrides))


def test_summary_ranks_by_the_val_objective_and_counts_outcomes():
    lines = [
        {"job": 0, "cell": "model=a", "status": "FINISHED", "objective": 0.7, "test_f1": 0.9,
         "run_id": "r0", "seconds": 1.0, "experiment": "synthetic"},
        {"job": 1, "cell": "model=b", "status": "FAILED", "objective": None, "run_id": None,
         "error": "ValueError: boom"},
        {"job": 2, "cell": "model=c", "status": "SKIPPED", "objective": 0.8, "test_f1": 0.1,
         "run_id": "r2", "seconds": 0.0, "experiment": "synthetic"},
    ]
    text = summary_text(lines, _config(), 75.0)
    rows = [line for line in text.splitlines() if re.match(r"\s+\d+\s", line)]
    # ranked by VAL (0.8 before 0.7) although TEST says the opposite; the failure last
    assert [row.split()[0:2] for row in rows] == [["1", "SKIPPED"], ["2", "FINISHED"],
                                                 ["3", "FAILED"]]
    assert "r2" in rows[0] and "model=c" in rows[0]
    assert "3 cells: 1 FINISHED, 1 FAILED, 1 skipped; total 0:01:15" in text
    assert "best: val_f1=0.8000 test_f1=0.1000 run r2" in text
    assert "ValueError: boom" in text
    assert "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db" in text
    assert "python -m bench.report --tracking-uri sqlite:///mlruns/mlflow.db " \
           "--experiment synthetic" in text


def test_summary_follows_the_sweep_direction_and_hides_passwords():
    lines = [{"job": i, "cell": "", "status": "FINISHED", "objective": v, "run_id": f"r{i}"}
             for i, v in enumerate((3.0, 1.0, 2.0))]
    cfg = _config(optimized_metric="fit_seconds", hydra={"sweeper": {"direction": "minimize"}},
                  tracking={"uri": "postgresql://bench:secret@db/mlflow"})
    text = summary_text(lines, cfg, 1.0)
    assert "best: fit_seconds=1.0000" in text and "lower is better" in text
    assert "secret" not in text


def test_multirun_size_counts_discrete_sweeps_or_trials():
    assert multirun_size(_config(hydra={"overrides": {"task": [
        "model=a,b,c", "seed=range(2)", "dataset.n_rows=10"]}})) == 6
    assert multirun_size(_config(hydra={"sweeper": {"n_trials": 7}})) == 7
    assert multirun_size(_config(hydra={"overrides": {"task": ["x=interval(0,1)"]}})) is None


def test_cells_lines_append_and_read_back(tmp_path):
    path = tmp_path / cells.CELLS_FILE
    assert cells.read_lines(path) == []
    cells.append_line(path, {"job": 0, "status": "FINISHED"})
    cells.append_line(path, {"job": 1, "status": "FAILED"})
    with path.open("a") as file:
        file.write('{"job": 2, "sta')  # a line still being written is not read
    assert [line["job"] for line in cells.read_lines(path)] == [0, 1]


def test_quiet_console_shows_results_and_warnings_only(capsys):
    handler = console.ConsoleHandler(sys.stdout)
    handler.setFormatter(console.ConsoleFormatter())
    logger = logging.getLogger("bench.test_console")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        handler.min_level = console.VERBOSITY_LEVELS["quiet"]
        logger.info("chatter")
        console.result(logger, "the results table")
        logger.warning("[audit] look at this")
    finally:
        logger.removeHandler(handler)
    out = capsys.readouterr().out
    assert "chatter" not in out
    assert "the results table" in out and "WARNING [audit] look at this" in out


def test_progress_lines_without_a_terminal(capsys, monkeypatch):
    monkeypatch.setitem(console._settings, "progress", "auto")
    monkeypatch.setitem(console._settings, "worker", False)
    assert console.progress_mode() == "lines"  # pytest's stderr is not a terminal
    grid = console.GridProgress(4)
    grid.done(["FINISHED"])
    grid.done(["FINISHED", "FAILED"])
    grid.done(["FINISHED", "FAILED"])  # nothing new: no line
    grid.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1].startswith("[cells] 2/4 done (1 failed)") and "ETA" in err[1]
    monkeypatch.setitem(console._settings, "progress", "bars")
    monkeypatch.setitem(console._settings, "worker", True)
    assert console.progress_mode() == "lines"  # workers share the terminal: never bars


def test_tensorflow_noise_is_dropped_and_other_lines_kept(caplog):
    with caplog.at_level(logging.DEBUG, logger="bench.console"):
        console._replay("I0000 port.cc:153] oneDNN custom operations are on.\n"
                        "E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR\n"
                        "something TensorFlow really wants you to know\n")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["[tensorflow] something TensorFlow really wants you to know"]


# ------------------------------------------------------------------- the CLI, end to end
GRID = ("-m", "model=dfnn", "seed=0,1", "model.epochs=3", "dataset.n_rows=2000")


def _command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(REPO_ROOT), COLUMNS="120", TERM="xterm", **extra)
    return env


def _run_in_terminal(command: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run `command` with stdout and stderr on a pseudo-terminal; returns all it wrote."""
    main, secondary = pty.openpty()
    # a real terminal's size (a fresh pty has 0 columns, where tqdm draws nothing)
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the terminal closed: the process has ended
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(main)
    assert process.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_grid_on_a_terminal_draws_bars_and_in_ci_prints_plain_lines(tmp_path):
    out = _run_in_terminal(_command(tmp_path / "tty", *GRID), _env())
    assert "\r" in out  # lines redrawn in place
    assert re.search(r"\[cells\]:\s+50%.*1/2", out) and re.search(r"\[cells\].*2/2", out)
    assert re.search(r"\[fit\] dfnn.*epoch.*loss \d\.\d{4} val_loss", out)  # the epoch bar
    assert "[fit] dfnn epoch 1/3" not in out  # ... instead of a line per epoch
    assert not [noise for noise in TF_NOISE if noise in out], out[:3000]
    assert "2 cells: 2 FINISHED, 0 FAILED, 0 skipped" in out

    ci = subprocess.run(_command(tmp_path / "ci", *GRID), cwd=REPO_ROOT, env=_env(CI="true"),
                        capture_output=True, text=True, timeout=300, check=False)
    assert ci.returncode == 0, ci.stderr[-3000:]
    assert "\r" not in ci.stdout + ci.stderr
    assert "[cells] 1/2 done (0 failed)" in ci.stderr and "[cells] 2/2 done" in ci.stderr
    assert "[fit] dfnn epoch 1/3 loss" in ci.stdout
    assert not [noise for noise in TF_NOISE if noise in ci.stdout + ci.stderr]
    for job in ("0", "1"):  # every job's app.log tells its story, with timestamps
        log = (tmp_path / "ci" / "sweep" / job / "app.log").read_text()
        assert "[data] synthetic" in log and "[fit] dfnn epoch 3/3" in log and "MLflow run" in log
        assert re.match(r"\[\d{4}-\d\d-\d\d ", log)


@pytest.mark.slow
def test_a_sweep_names_its_objective_links_runs_and_ends_with_the_best_trial(tmp_path):
    import optuna
    from mlflow import MlflowClient

    from bench.sweeps.storage import make_storage

    result = subprocess.run(
        _command(tmp_path, "-m", "hparams_search=xgboost_optuna", "hydra.sweeper.n_trials=3",
                 "model.n_estimators=int(interval(5,20))", "dataset.n_rows=2000",
                 f"hydra.sweeper.storage={tmp_path / 'optuna.journal'}"),
        cwd=REPO_ROOT, env=_env(CI="true"), capture_output=True, text=True, timeout=600,
        check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = optuna.load_study(study_name="xgboost_optuna-synthetic",
                              storage=make_storage(str(tmp_path / "optuna.journal")))
    assert study.metric_names == ["val_f1"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for trial in study.trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.tags["optuna.trial_number"] == str(trial.number)
        assert run.info.run_name.endswith(f"/s0/t{trial.number}")
    best = study.best_trial
    said = result.stdout + result.stderr
    assert (f"Best trial {best.number}: val_f1={best.value:.4f}; params {best.params}; "
            f"MLflow run {best.user_attrs['mlflow_run_id']}") in said
    assert "3 cells: 3 FINISHED" in said and "[trials] 3/3 done" in said


def test_a_failed_job_is_a_failed_line_with_its_error():
    from hydra.core.utils import JobReturn, JobStatus

    from bench.callbacks import job_line

    cfg = _config(tracking={"experiment": None, "trial_number": None},
                  hydra={"job": {"num": 4}, "runtime": {"choices": {"dataset": "unsw"}},
                         "overrides": {"task": ["model=dfnn", "++tracking.trial_number=3"]}})
    ret = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("bad input"))
    line = job_line(cfg, ret, None)
    assert line["status"] == "FAILED" and line["job"] == 4 and line["cell"] == "model=dfnn"
    assert line["error"] == "ValueError: bad input" and line["experiment"] == "unsw"
    done = job_line(cfg, JobReturn(status=JobStatus.COMPLETED, _return_value=0.5),
                    cells.CellOutcome(cells.SKIPPED, "r1", 0.5, 0.4, 0.0))
    assert done["status"] == "SKIPPED" and done["run_id"] == "r1" and "error" not in done
