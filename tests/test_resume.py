"""Resume and orphans (docs/resume.md): a cell's identity, finished cells skipped, runs and
trials of killed processes ended, torn journals repaired, tampered cache files rebuilt.

Real processes, a real sqlite store and real Optuna journals; nothing of MLflow or Optuna is
mocked. The kill -9 tests are slow."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf

from bench import cells, resume, tracking
from bench.data import nslkdd
from bench.data.cache import CacheWarning
from bench.sweeps.resume import (
    KILLED_ATTR,
    RERUN_ATTR,
    fail_orphaned_trials,
    requeue_killed,
    trials_to_run,
)
from bench.sweeps.storage import make_storage

REPO_ROOT = Path(__file__).resolve().parent.parent
NSL_ROW = ("0,tcp,http,SF,{b},0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,1,1,0.0,0.0,0.0,0.0,1.0,0.0,"
           "0.0,9,9,1.0,0.0,0.11,0.0,0.0,0.0,0.0,0.0,{label},21\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg"}


def _nsl_file(folder: Path, name: str, n: int, attack_every: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(NSL_ROW.format(b=100 + i, label="neptune" if i % attack_every == 0
                                           else "normal") for i in range(n)))
    return path


# ------------------------------------------------------------------------- cell identity
def test_identity_follows_config_seed_and_data_but_not_where_runs_are_logged(compose_cfg):
    base, choices = compose_cfg("model=logreg")
    same = resume.cell_identity(base, choices)
    elsewhere, ch = compose_cfg("model=logreg", "tracking.experiment=x", "resume=true",
                                "resume_code=any", "evaluation.latency_batch_rows=7")
    assert resume.cell_identity(elsewhere, ch) == same
    other_seed, ch = compose_cfg("model=logreg", "seed=1")
    changed = resume.cell_identity(other_seed, ch)
    assert changed.cell_id != same.cell_id and changed.config_id == same.config_id
    assert changed.data_hash != same.data_hash  # the generator draws other rows
    other_model, ch = compose_cfg("model=logreg", "model.C=0.5")
    assert resume.cell_identity(other_model, ch).cell_id != same.cell_id
    assert same.code_version.startswith(("git:", "bench-"))
    assert same.base_id != same.cell_id  # base_id leaves the code version out
    assert set(same.tags()) >= {"cell_id", "cell_base_id"}


def test_data_hash_is_the_content_of_the_named_files(tmp_path):
    data = tmp_path / "data"
    _nsl_file(data, "train.txt", 30)
    _nsl_file(data, "test.txt", 12)

    def digest(**extra: object) -> str:
        node = {"data_dir": str(data), "cache_dir": str(tmp_path / "cache"),
                "train_file": "train.txt", "test_file": "test.txt", **extra}
        return resume.data_hash(OmegaConf.create(node))

    first = digest()
    assert first.startswith("files:") and digest() == first
    resume._hashed.clear()
    time.sleep(0.01)
    _nsl_file(data, "test.txt", 12, attack_every=4)  # same size, other labels
    assert digest() != first
    assert digest(extra_test_files={"test21": "missing.txt"}) == digest()  # absent: not read


# ---------------------------------------------------------------------- resume, in-process
def _run_cell(cfg, choices) -> float:
    from bench.app import _job

    return _job(cfg, choices)


def test_resume_skips_a_finished_cell_and_returns_its_objective(compose_cfg, capsys):
    cfg, choices = compose_cfg("model=logreg")
    first = _run_cell(cfg, choices)
    assert cells.take().status == cells.FINISHED
    again, choices = compose_cfg("model=logreg", "resume=true")
    assert _run_cell(again, choices) == pytest.approx(first)
    outcome = cells.take()
    assert outcome.status == cells.SKIPPED and outcome.objective == pytest.approx(first)
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[resume]")]
    assert len(line) == 1 and outcome.run_id in line[0]
    runs = tracking.runs_by_id(str(cfg.tracking.uri))
    assert len(runs) == 1  # nothing new was logged
    ((status, tags),) = runs.values()
    assert status == "FINISHED"
    assert tags["cell_id"] == resume.cell_identity(cfg, choices).cell_id
    assert tags[tracking.PID_TAG] == str(os.getpid())

    # without the flag a cell runs as before; another code version is reused only with any
    plain, choices = compose_cfg("model=logreg")
    _run_cell(plain, choices)
    assert cells.take().status == cells.FINISHED
    assert len(tracking.runs_by_id(str(cfg.tracking.uri))) == 2


def test_resume_code_any_reuses_runs_of_another_code_version(compose_cfg, monkeypatch):
    cfg, choices = compose_cfg("model=logreg")
    _run_cell(cfg, choices)
    monkeypatch.setattr(resume, "code_version", lambda: "git:another-commit")
    strict, choices = compose_cfg("model=logreg", "resume=true")
    identity = resume.cell_identity(strict, choices)
    assert resume.reuse_finished(strict, choices, identity) is None
    relaxed, choices = compose_cfg("model=logreg", "resume=true", "resume_code=any")
    assert resume.reuse_finished(relaxed, choices, identity) is not None
    cells.take()


# ---------------------------------------------------------------------------- orphans
def _die_holding_a_run(uri: str) -> str:
    """A separate process starts a run and is killed (SIGKILL) inside it; returns its id."""
    script = textwrap.dedent(f"""
        import os, signal
        from bench import tracking
        with tracking.tracked_run({uri!r}, "orphans", "victim", {{}}) as run:
            print(run.info.run_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_env(), timeout=120, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    return result.stdout.split()[0]


def test_runs_of_dead_processes_are_ended_killed_and_live_ones_kept(tracking_uri):
    victim = _die_holding_a_run(tracking_uri)
    assert tracking.get_run(tracking_uri, victim).info.status == "RUNNING"
    tracking.preflight(tracking_uri)  # what every command does first
    run = tracking.get_run(tracking_uri, victim)
    assert run.info.status == "KILLED"
    assert "died without ending the run" in run.data.tags[tracking.KILLED_TAG]
    with tracking.tracked_run(tracking_uri, "orphans", "alive", {}) as alive:
        assert tracking.reap_orphans(tracking_uri) == []
        assert tracking.get_run(tracking_uri, alive.info.run_id).info.status == "RUNNING"
    assert tracking.get_run(tracking_uri, alive.info.run_id).info.status == "FINISHED"


def test_a_failed_command_creates_no_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    tracking.preflight(uri)
    assert tracking.find_finished_cell(uri, "x", "cell_id", "0") is None
    assert not (tmp_path / "none" / "mlflow.db").exists()


def test_a_dead_sweeps_running_trial_fails_and_is_rerun_with_its_params(tmp_path):
    journal = tmp_path / "study.journal"
    script = textwrap.dedent(f"""
        import os, signal, optuna
        from bench.sweeps.resume import ask_owned
        from bench.sweeps.storage import make_storage
        study = optuna.create_study(study_name="s", storage=make_storage({str(journal)!r}))
        for x in (1.0, 2.0):
            study.enqueue_trial({{"x": x}})
        done = ask_owned(study); done.suggest_float("x", 0, 10); study.tell(done, 1.0)
        trial = ask_owned(study); trial.suggest_float("x", 0, 10)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], env=_env(), timeout=120,
                            capture_output=True, text=True, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    study = optuna.load_study(study_name="s", storage=make_storage(str(journal)))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    assert fail_orphaned_trials(study, str(journal)) == [1]
    killed = study.trials[1]
    assert killed.state.name == "FAIL" and KILLED_ATTR in killed.user_attrs
    assert trials_to_run(study, 3, resume=False) == 3
    assert trials_to_run(study, 3, resume=True) == 2  # 1 of 3 COMPLETE
    assert requeue_killed(study) == [1] and requeue_killed(study) == []
    again = study.ask()
    assert again.suggest_float("x", 0, 10) == 2.0 and again.user_attrs[RERUN_ATTR] == 1


# -------------------------------------------------------------------- journals and cache
def test_a_torn_last_journal_record_is_dropped_with_a_warning(tmp_path, caplog):
    journal = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=make_storage(str(journal)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "w", "trial_id": 1, "sta')
    with caplog.at_level(logging.WARNING):
        study = optuna.load_study(study_name="s", storage=make_storage(str(journal)))
    assert str(journal) in caplog.text and "torn record" in caplog.text
    assert journal.read_bytes() == whole
    assert (tmp_path / "study.journal.bak").read_bytes().startswith(whole)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5

    # a torn record that a later append already followed (the raw JSONDecodeError case): the
    # record merged with the torn one is lost, the rest of the study loads
    journal.write_bytes(journal.read_bytes() + b'{"op_code": 5, "tri')
    plain = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))  # no repair
    with pytest.raises(AttributeError):  # Optuna cannot find the trial it just created
        optuna.load_study(study_name="s", storage=plain).optimize(
            lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    study = optuna.load_study(study_name="s", storage=make_storage(str(journal)))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(study.trials) == 6


def test_a_tampered_cache_file_is_discarded_and_rebuilt(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    _nsl_file(data, "train.txt", 40)
    parsed = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    (target,) = cache.glob("*.parquet")
    tampered = parsed.train.iloc[: len(parsed.train) // 2].copy()
    tampered["label"] = 1 - tampered["label"]  # labels inverted, half the rows gone
    tampered.to_parquet(target)
    with pytest.warns(CacheWarning, match="discarding cache file"):
        again = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    pd.testing.assert_frame_equal(again.train, parsed.train)
    assert again.notes == parsed.notes
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # the rebuilt file is used silently
        third = nslkdd.load(data, cache, train_file="train.txt", test_file=None)
    pd.testing.assert_frame_equal(third.train, parsed.train)


# ---------------------------------------------------------------- kill -9, then resume
def _grid(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench", "-m", "model=logreg", "seed=0,1,2,3",
            "dataset.n_rows=2000", "resume=true", f"tracking.uri={_uri(tmp_path)}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}", *extra]


def _uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def _kill_after(command: list[str], seconds: float) -> int:
    """Start `command`, SIGKILL it after `seconds` (unless it ended); its return code."""
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


@pytest.mark.slow
def test_a_grid_killed_at_random_moments_resumes_to_one_finished_run_per_cell(tmp_path):
    rng = random.Random(13)
    for _ in range(3):
        _kill_after(_grid(tmp_path), rng.uniform(4.0, 12.0))
    result = subprocess.run(_grid(tmp_path), cwd=REPO_ROOT, env=_env(), capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = tracking.runs_by_id(_uri(tmp_path))
    statuses = Counter(status for status, _ in runs.values())
    assert statuses["RUNNING"] == 0, statuses
    finished = Counter(tags["seed"] for status, tags in runs.values() if status == "FINISHED")
    assert finished == {"0": 1, "1": 1, "2": 1, "3": 1}, finished
    assert all(tags.get(tracking.KILLED_TAG) for status, tags in runs.values()
               if status == "KILLED")


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_its_requested_complete_trials(tmp_path):
    journal = tmp_path / "optuna.journal"
    command = [sys.executable, "-m", "bench", "-m", "hparams_search=xgboost_optuna",
               "model.n_estimators=int(interval(5,20))", "hydra.sweeper.n_trials=4",
               "dataset.n_rows=2000", "resume=true", f"tracking.uri={_uri(tmp_path)}",
               f"hydra.sweeper.storage={journal}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    study_name = "xgboost_optuna-synthetic"
    deadline = time.time() + 300
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while time.time() < deadline:  # kill it once a trial is complete and another runs
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name=study_name, storage=make_storage(str(journal)))
        except KeyError:
            continue
        states = [t.state.name for t in study.trials]
        if "COMPLETE" in states and states[-1] == "RUNNING":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journal.write_bytes(journal.read_bytes() + b'{"op_code": 6, "worker')  # a torn record too
    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torn record" in result.stderr + result.stdout
    study = optuna.load_study(study_name=study_name, storage=make_storage(str(journal)))
    states = Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] == 4 and states["RUNNING"] == 0, states
    assert any(KILLED_ATTR in t.user_attrs for t in study.trials)
    runs = tracking.runs_by_id(_uri(tmp_path))
    assert not [r for r, (status, _) in runs.items() if status == "RUNNING"]
    parents = [s for s, tags in runs.values() if tags.get("bench.sweep") == "parent"]
    assert sorted(parents) == ["FINISHED", "KILLED"]


def _descendants(pid: int) -> set[int]:
    """The processes started by `pid` and by them, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_killed_joblib_grid_leaves_no_worker_running_and_resumes(tmp_path):
    """Warm joblib workers (bench.launchers.warm_workers) end with the launching process: a
    kill -9 of the grid stops its cells at once; the resumed grid has one run per cell."""
    command = _grid(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    "model=logreg,decision_tree")
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    cells_file = tmp_path / "multirun" / "cells.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (cells_file.exists() and cells_file.read_text()):
        time.sleep(0.2)  # the workers are warm and running cells
    started = _descendants(proc.pid)
    assert started, "the grid started no worker process"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(
            tracking.process_start(pid) not in (None, "zombie") for pid in started):
        time.sleep(0.2)
    left = [pid for pid in started if tracking.process_start(pid) not in (None, "zombie")]
    assert not left, f"processes of the killed grid still run: {left}"
    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = tracking.runs_by_id(_uri(tmp_path))
    assert Counter(status for status, _ in runs.values())["RUNNING"] == 0
    finished = Counter((tags["model"], tags["seed"]) for status, tags in runs.values()
                       if status == "FINISHED")
    assert sorted(finished.values()) == [1] * 8, finished


# ------------------------------------------------------------- dataset=table identity
def _table_csv(folder: Path, name: str, n: int = 240, attack_every: int = 3) -> Path:
    """A small labelled CSV for dataset=table (columns a, b, proto, Label)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    rows = [f"{i},{(i * 7) % 50},{'tcp' if i % 2 else 'udp'},"
            f"{'dos' if i % attack_every == 0 else 'BENIGN'}" for i in range(n)]
    path.write_text("\n".join(["a,b,proto,Label", *rows]) + "\n")
    return path


def _table_cell(compose_cfg, data: Path, *extra: str):
    return compose_cfg("dataset=table", "dataset.path=R.csv", "dataset.label=Label",
                       "dataset.normal=[BENIGN]", "model=logreg", f"paths.data_dir={data}",
                       f"paths.cache_dir={data.parent / 'cache'}", *extra, small=False)


def test_a_table_cell_runs_again_after_its_file_is_edited(compose_cfg, tmp_path):
    """dataset=table names its data with `path`: the cell's data hash is the content of the
    files it resolves to, so resume skips an unchanged file and runs an edited one again."""
    data = tmp_path / "data"
    _table_csv(data, "R.csv")
    cfg, choices = _table_cell(compose_cfg, data)
    _run_cell(cfg, choices)
    assert cells.take().status == cells.FINISHED
    again, choices = _table_cell(compose_cfg, data, "resume=true")
    _run_cell(again, choices)
    assert cells.take().status == cells.SKIPPED  # unchanged file: the finished run is reused
    before = resume.cell_identity(again, choices)

    _table_csv(data, "R.csv", attack_every=4)  # same columns, other labels
    edited = resume.cell_identity(again, choices)
    assert edited.data_hash != before.data_hash and edited.config_id == before.config_id
    _run_cell(again, choices)
    assert cells.take().status == cells.FINISHED  # edited file: the cell runs again
    runs = tracking.runs_by_id(str(cfg.tracking.uri))
    assert sorted(tags["cell.data_hash"] for _, tags in runs.values()) == sorted(
        [before.data_hash, edited.data_hash])


def test_table_data_hash_covers_every_file_path_and_test_path_resolve_to(tmp_path):
    data = tmp_path / "data"
    _table_csv(data / "days", "mon.csv")
    _table_csv(data / "days", "tue.csv", attack_every=5)
    _table_csv(data, "test.csv", attack_every=6)

    def digest(path: object, test_path: object = None) -> str:
        return resume.data_hash(OmegaConf.create(
            {"_target_": "bench.data.table.load", "data_dir": str(data), "cache_dir": None,
             "path": path, "test_path": test_path, "label": "Label"}))

    by_glob = digest("days/*.csv")
    assert by_glob == digest("days") == digest(["days/mon.csv", "days/tue.csv"])
    assert digest("days/mon.csv") != digest("days/tue.csv")  # not the hash of no files
    assert digest("days", "test.csv") != by_glob
    _table_csv(data / "days", "wed.csv")  # a new file behind the same glob
    assert digest("days/*.csv") != by_glob
    with_test = digest("days", "test.csv")
    _table_csv(data, "test.csv", attack_every=7)  # the TEST file edited
    assert digest("days", "test.csv") != with_test


def test_kept_data_is_loaded_again_when_a_table_file_changes(compose_cfg, tmp_path):
    """In a grid, the loaded split is reused only for the same file content
    (bench.data.kept.data_key follows the cell's data hash)."""
    from bench.data import kept
    from bench.experiment import _load_split_audit

    data = tmp_path / "data"
    _table_csv(data, "R.csv")
    cfg, choices = _table_cell(compose_cfg, data)
    kept.reuse_across_cells(True)
    try:
        first, *_ = _load_split_audit(cfg, choices)
        key = kept.data_key(cfg)
        assert _load_split_audit(cfg, choices)[0] is first and kept.reused("split")
        _table_csv(data, "R.csv", attack_every=4)  # another file's content under this name
        assert kept.data_key(cfg) != key
        second, *_ = _load_split_audit(cfg, choices)
        assert not kept.reused("split") and second is not first
        assert second.train["label"].sum() != first.train["label"].sum()
    finally:
        kept.reuse_across_cells(False)


@pytest.mark.slow
def test_two_resuming_grids_started_together_compute_each_cell_once(tmp_path):
    """Both commands claim each cell before computing it: the second waits for the first's
    run and reuses it (before, 3 of 4 cells had 2 FINISHED runs)."""
    tracking.open_store(_uri(tmp_path))  # a store exists: both start at the first cell
    procs = [subprocess.Popen(
        [*_grid(tmp_path, "evaluation.plots=none"), f"hydra.sweep.dir={tmp_path / str(n)}"],
        cwd=REPO_ROOT, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for n in range(2)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    runs = tracking.runs_by_id(_uri(tmp_path))
    finished = Counter(tags["seed"] for status, tags in runs.values() if status == "FINISHED")
    assert finished == {"0": 1, "1": 1, "2": 1, "3": 1}, (finished, outputs)
    assert all(status == "FINISHED" for status, _ in runs.values())
    reused = sum(out.count("[resume] skipped cell") for out in outputs)
    assert reused == 4, outputs  # every cell ran in one command and was reused by the other


def _interrupted(tmp_path: Path, signum: int, command: list[str]) -> subprocess.CompletedProcess:
    """Start `command` in its own process group, send `signum` to the group (as a terminal's
    Ctrl-C or a scheduler's stop does) once one of its runs is RUNNING; its result."""
    uri = _uri(tmp_path)
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True,  # a terminal's Ctrl-C: SIGINT not ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if tracking.store_exists(uri) and any(
                status == "RUNNING" for status, _ in tracking.runs_by_id(uri).values()):
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signum)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("signum, name", [(signal.SIGTERM, "SIGTERM"),
                                          (signal.SIGINT, "Ctrl-C (SIGINT)")])
def test_an_interrupted_grid_says_so_in_one_line_and_leaves_no_run_running(tmp_path, signum,
                                                                           name):
    """Before, SIGTERM killed the command silently with its runs RUNNING (and its figure
    helper's run too); Ctrl-C printed two tracebacks."""
    tracking.open_store(_uri(tmp_path))
    result = _interrupted(tmp_path, signum, _grid(tmp_path, "dataset.n_rows=60000",
                                                  "model=xgboost"))
    assert result.returncode == 128 + signum, result.stderr[-3000:]
    assert f"interrupted by {name}: runs in progress were ended" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    runs = tracking.runs_by_id(_uri(tmp_path))
    assert runs and not [status for status, _ in runs.values() if status == "RUNNING"], runs
    killed = [tags for status, tags in runs.values() if status == "KILLED"]
    assert killed and all("interrupted" in tags[tracking.KILLED_TAG] for tags in killed)


@pytest.mark.slow
def test_a_resumed_grid_repeating_a_cell_does_not_wait_for_its_own_run(tmp_path):
    """The second `seed=0` finds the first one's run RUNNING until its figures are logged by
    this same process: the claim waits only for other processes' runs (else 600 s)."""
    command = [sys.executable, "-m", "bench", "-m", "model=logreg", "seed=0,0",
               "dataset.n_rows=2000", "resume=true", f"tracking.uri={_uri(tmp_path)}",
               f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True,
                            text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = tracking.runs_by_id(_uri(tmp_path))
    assert sorted(status for status, _ in runs.values()) in (["FINISHED"], ["FINISHED"] * 2)
