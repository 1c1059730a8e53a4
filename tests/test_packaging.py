"""bench as a user installs it: a wheel that carries its configs, a `bench` console script that
runs from any directory, and Hydra's shell completion through that script."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(REPO_ROOT)],
                   check=True, capture_output=True, text=True, timeout=300, cwd=out)
    (wheel,) = out.glob("bench-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed (without dependencies, which the test venv has) into a folder."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(root)
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    return site


@pytest.mark.slow
def test_wheel_carries_every_config(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "bench").rglob("*.yaml")}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "bench/conf/config.yaml" in names
    assert "bench/analyze/conf/analyze.yaml" in names
    assert "bench/report/literature/nslkdd.csv" in names  # the report's published figures
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bench = bench.app:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}


@pytest.mark.slow
def test_installed_console_script_runs_outside_the_clone(installed: Path,
                                                         tmp_path: Path) -> None:
    where = subprocess.run([sys.executable, "-c", "import bench; print(bench.__file__)"],
                           env=_env(installed), cwd=tmp_path, capture_output=True, text=True,
                           check=True).stdout
    assert Path(where.strip()).is_relative_to(installed)  # the wheel's copy, not the clone
    result = subprocess.run([str(installed / "bin" / "bench"), "model=logreg",
                             "dataset.n_rows=2000"], env=_env(installed), cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MLflow run" in result.stdout
    assert (tmp_path / "mlruns" / "mlflow.db").exists()


@pytest.mark.slow
def test_help_shows_benchs_header_and_not_analyze_groups(installed: Path,
                                                         tmp_path: Path) -> None:
    out = subprocess.run([str(installed / "bin" / "bench"), "--help"], env=_env(installed),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.startswith("bench: one intrusion-detection experiment")
    assert "Examples:" in out and "bench -m hparams_search=xgboost_optuna" in out
    assert "analyze/columns" not in out and "powered by Hydra" not in out


@pytest.mark.slow
def test_shell_completion_through_the_console_script(installed: Path, tmp_path: Path) -> None:
    def complete(line: str) -> list[str]:
        out = subprocess.run([str(installed / "bin" / "bench"), "-sc", "query=bash"],
                             env={**_env(installed), "COMP_LINE": line}, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return out.split()

    assert "model=" in complete("bench mod")
    assert complete("bench model=xgb") == ["model=xgboost"]
    install = subprocess.run([str(installed / "bin" / "bench"), "-sc", "install=bash"],
                             env=_env(installed), cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert "complete -o nospace -o default -F hydra_bash_completion bench" in install
