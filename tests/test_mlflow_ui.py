"""The MLflow UI, as a user sees it in a browser: a 2-seed grid shows distinct run names, and a
run's model-metrics tab holds model metrics, no audit counts.

Headless Chromium renders the real `mlflow server` pages (tests/test_report.py's finder; skipped
with an install hint without a browser). Screenshots are kept under the test's tmp_path."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_report import _browser

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1600,1000",
                  "--virtual-time-budget=20000")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server at {url} did not become healthy")


def _page(browser: str, url: str, tmp_path: Path, name: str) -> str:
    """The page's DOM once rendered; its screenshot is saved as tmp_path/<name>.png."""
    profile = tmp_path / f"profile-{name}"
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    subprocess.run([*common, f"--screenshot={tmp_path / f'{name}.png'}", url],
                   capture_output=True, timeout=180, check=False)
    result = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                            timeout=180, check=False)
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(_browser() is None, reason="no headless browser found (chromium, "
                    "google-chrome, or $CHROME_BIN); on Debian: apt-get install chromium")
def test_a_two_seed_grid_reads_well_in_the_mlflow_ui(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    grid = subprocess.run(
        [sys.executable, "-m", "bench", "-m", "model=logreg", "seed=0,1", "dataset.n_rows=2000",
         f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "CI": "true"})
    assert grid.returncode == 0, grid.stderr[-3000:]
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "synthetic"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["synthetic/none/logreg/s0",
                                                      "synthetic/none/logreg/s1"]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(url)
        browser = _browser()
        assert browser is not None
        table = _page(browser, f"{url}/#/experiments/{experiment.experiment_id}/runs", tmp_path,
                      "runs")
        assert "synthetic/none/logreg/s0" in table and "synthetic/none/logreg/s1" in table
        run = runs[0]
        page = _page(browser, f"{url}/#/experiments/{experiment.experiment_id}/runs/"
                     f"{run.info.run_id}/model-metrics", tmp_path, "model_metrics")
        # the tab's heading counts its charts (they render lazily): exactly the run's model
        # metrics, among which no audit count (those are audit.* tags)
        shown = re.search(r"Model metrics[^(]*\((\d+)\)", re.sub(r"<[^>]+>", "", page))
        assert shown, page[-2000:]
        assert int(shown.group(1)) == len(run.data.metrics)
        assert not [m for m in run.data.metrics if m.startswith("audit")]
        assert "audit_" not in page and run.data.tags["audit.dropped_declared"] == "2"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "runs.png").stat().st_size > 10_000
