"""The run's helper process (bench.helper): the skops file it writes is the one written inline,
the parent never imports skops when the helper writes it, replies reach the job they answer,
and a job the helper cannot do is done inline with its own error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bench import helper
from bench.evaluation import figures
from bench.models import decision as dm


def _pipeline() -> Pipeline:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, y)


def _content(dumped: tuple[bytes, list[str]]) -> tuple[list[float], list[str]]:
    """What a skops dump of `_pipeline()` holds: its loaded model's probabilities on fixed
    rows, and the untrusted types listed (two dumps differ in object ids and timestamps)."""
    data, types = dumped
    rows = np.linspace(-2, 2, 30).reshape(10, 3)
    return skops.io.loads(data, trusted=types).predict_proba(rows).round(12).tolist(), types


def test_the_helper_writes_the_skops_file_and_the_parent_never_imports_skops(tmp_path):
    program = """
import sys, time
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from bench import helper
from bench.models import decision as dm
helper.warm_up()
X = np.arange(40.0).reshape(20, 2); y = np.arange(20) % 2
m = make_pipeline(LogisticRegression()).fit(X, y)
dm.save_decision(dm.Decision(m, 0.5), sys.argv[1])
print("skops imported here:", "skops.io" in sys.modules)
model = dm.load_decision(sys.argv[1]).pipeline
print("same model:", np.array_equal(model.predict_proba(X), m.predict_proba(X)))
"""
    done = subprocess.run([sys.executable, "-c", program, str(tmp_path / "model")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skops imported here: False" in done.stdout
    assert "same model: True" in done.stdout


def test_the_helpers_skops_file_equals_the_inline_one_and_loads():
    pipeline = _pipeline()
    helper.warm_up()
    ticket = helper.submit("skops", pipeline)
    assert ticket is not None
    assert _content(ticket.wait()) == _content(dm.skops_dump(pipeline))


def test_replies_reach_the_job_they_answer_whatever_order_they_are_read_in():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = rng.random(300) + y
    drawing = figures.start(figures.FigureData(y, scores, y, scores, 0.8, "t", ("roc",)))
    pipeline = _pipeline()
    assert _content(helper.call("skops", pipeline, dm.skops_dump)) == _content(
        dm.skops_dump(pipeline))
    assert [p.name for p in drawing.files()] == ["roc.png"]  # answered before, read after
    drawing.discard()


def test_a_job_the_helper_cannot_do_is_done_inline_with_its_own_error():
    helper.warm_up()

    def inline(payload):
        raise ValueError(f"inline saw {payload!r}")

    with pytest.raises(ValueError, match="inline saw 'x'"):  # unknown job: fails there
        helper.call("no such job", "x", inline)
    assert helper.call("skops", lambda: None, lambda payload: "done here") == "done here"
    assert helper.running() is not None  # the helper still serves


def test_a_helper_killed_before_answering_leaves_the_work_to_the_parent():
    process = helper.running(start=True)
    assert process is not None
    process.process.kill()
    process.process.wait()
    pipeline = _pipeline()
    assert _content(helper.call("skops", pipeline, dm.skops_dump)) == _content(
        dm.skops_dump(pipeline))


@pytest.fixture
def no_helper():
    """No helper running before the test, and none left after it."""
    def stop():
        if helper._helper is not None:
            helper._helper.process.kill()
            helper._helper.process.wait()
        helper._helper = None

    stop()
    yield
    stop()


@pytest.mark.parametrize(("argv", "started"), [
    ([], True),  # a run: its figures and skops file
    (["evaluation.plots=none", "tracking.model_format=cloudpickle"], False),  # nothing to do
    (["evaluation.plots=none"], True),  # the skops file
    (["-m", "seed=0,1"], True),  # a grid whose cells run here, in turn
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "seed=0,1"], True),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1"], False),  # workers
    (["--help"], False),
])
def test_a_valid_command_starts_the_helper_before_hydra_runs_only_when_its_runs_use_it(
        no_helper, argv, started, tmp_path):
    from bench.app import CONFIG_DIR, _warm_up_helper
    from bench.validate import preflight

    first = preflight([*argv, f"tracking.uri=sqlite:///{tmp_path}/s.db"], CONFIG_DIR)
    if first is not None:
        _warm_up_helper(first)
    assert (helper.running() is not None) is started


def test_a_helper_with_no_job_left_ends_with_its_parent_even_while_importing():
    program = """
from bench import helper
helper.warm_up()
print(helper.running().process.pid, flush=True)
"""  # the parent ends at once, while the helper imports skops and matplotlib (seconds)
    done = subprocess.run([sys.executable, "-c", program], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, timeout=300)
    assert done.returncode == 0
    pid = int(done.stdout.split()[0])
    status = Path(f"/proc/{pid}/status")
    assert not status.exists() or "zombie" in status.read_text()
