"""Figures drawn in a helper process: the files, errors, a helper that dies, a parent that is
killed, a script without a __main__ guard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import helper
from bench.evaluation import PLOTS, figures


def _data(wanted: tuple[str, ...] = PLOTS) -> figures.FigureData:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    scores = rng.random(400) + y * 0.5
    return figures.FigureData(y, scores, y[::-1], scores[::-1], 0.7, "t", wanted,
                              negative_log_density=True)


def _pngs(folder: str) -> set[str]:
    return {p.name for p in Path(folder).glob("*.png") if p.stat().st_size > 1000}


def test_the_helper_draws_exactly_the_figures_asked_for():
    pending = figures.start(_data())
    try:
        assert _pngs(pending.folder()) == {
            "confusion_matrix_test.png", "roc.png", "precision_recall.png",
            "threshold_curve_val.png", "score_histogram_test.png", "epsilon_curve_val.png"}
    finally:
        pending.discard()
    assert not Path(pending._folder).exists()  # discard removes the temporary folder
    only_roc = figures.start(_data(("roc",)))
    assert _pngs(only_roc.folder()) == {"roc.png"}
    only_roc.discard()
    nothing = figures.start(_data(()))
    assert _pngs(nothing.folder()) == set()
    nothing.discard()


def test_folders_of_killed_processes_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    from bench import scratch

    monkeypatch.setattr(scratch.tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = tmp_path / f"bench-figures-{dead.stdout.strip()}-abc"
    left_model = tmp_path / f"bench-model-{dead.stdout.strip()}-abc"
    live = tmp_path / f"bench-figures-{os.getpid()}-def"
    for folder in (left, left_model, live):
        folder.mkdir()
    scratch.remove_folders_of_dead_processes()
    assert not left.exists() and not left_model.exists() and live.exists()


def test_a_helper_that_died_is_replaced_by_drawing_inline():
    process = helper.running(start=True)
    assert process is not None
    process.process.kill()
    process.process.wait()
    pending = figures.start(_data(("roc", "score_histogram")))
    assert _pngs(pending.folder()) == {"roc.png", "score_histogram_test.png"}
    pending.discard()
    again = figures.start(_data(("roc",)))  # a new helper next time
    assert _pngs(again.folder()) == {"roc.png"}
    again.discard()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX parent/child semantics")
def test_the_helper_exits_when_its_parent_is_killed(tmp_path):
    program = ("import os, sys\n"
               "from bench import helper\n"
               "print(helper.running(start=True).process.pid, flush=True)\n"
               "os.kill(os.getpid(), 9)\n")
    parent = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=120)
    assert parent.returncode == -signal.SIGKILL
    helper_pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(helper_pid):
        time.sleep(0.2)
    assert not _alive(helper_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_an_error_while_drawing_fails_with_the_helpers_traceback():
    bad = figures.FigureData(np.array([0, 1]), np.array([0.1]), np.array([0, 1]),
                             np.array([0.2, 0.9]), 0.5, "t", ("roc",))
    pending = figures.start(bad)
    with pytest.raises(helper.JobFailed, match="figures: failed in bench's helper process"):
        pending.folder()
    pending.discard()
    again = figures.start(_data(("roc",)))  # the helper still serves the next run
    assert _pngs(again.folder()) == {"roc.png"}
    again.discard()


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text("import numpy as np\n"
                      "from bench.evaluation import figures\n"
                      "print('script ran', flush=True)\n"
                      "y = np.array([0, 1] * 50); s = np.linspace(0, 1, 100)\n"
                      "data = figures.FigureData(y, s, y, s, 0.5, 't', ('roc',))\n"
                      "pending = figures.start(data)\n"
                      "print(sorted(p.name for p in __import__('pathlib').Path("
                      "pending.folder()).iterdir()))\n"
                      "pending.discard()\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("script ran") == 1
    assert "['roc.png']" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_grid_run_whose_figures_fail_later_ends_failed_and_its_cell_says_so(
        tmp_path, tracking_uri):
    """A sequential grid counts a cell FINISHED before its figures are drawn (bench.experiment:
    the next cell logs them); when drawing then fails, the run ends FAILED and the cell's
    line in cells.jsonl is corrected, so the summary does not call it FINISHED."""
    from bench import cells, experiment, tracking

    tracking.open_store(tracking_uri)
    experiment_id = tracking.get_or_create_experiment(tracking_uri, "figures-fail")
    good, bad = (tracking.create_run(tracking_uri, experiment_id, name, {})
                 for name in ("good", "bad"))
    cells_file = tmp_path / cells.CELLS_FILE
    for job, run_id in enumerate((good, bad)):
        cells.append_line(cells_file, {"job": job, "run_id": run_id,
                                       "status": cells.FINISHED})
    broken = figures.FigureData(np.array([0, 1]), np.array([0.1]), np.array([0, 1]),
                                np.array([0.2, 0.9]), 0.5, "t", ("roc",))
    cells.follow_grid(cells_file)
    try:
        for data, run_id in ((_data(("roc",)), good), (broken, bad)):  # one job at a time
            experiment._unfinished.append((figures.start(data), run_id, tracking_uri))
            experiment.finish_pending_runs()
    finally:
        cells.follow_grid(None)
    assert tracking.run_status(tracking_uri, good) == "FINISHED"
    assert tracking.run_status(tracking_uri, bad) == "FAILED"
    lines = {line["run_id"]: line for line in cells.read_lines(cells_file)}
    assert lines[good]["status"] == cells.FINISHED
    assert lines[bad]["status"] == cells.FAILED and "helper process" in lines[bad]["error"]
