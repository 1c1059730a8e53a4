"""Output files are written whole: a full disk leaves the previous file, never a truncated one
under the final name, and ends in one error line naming the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.outputs import OutputError, write_csv, write_whole

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_write_whole_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "report.html"
    write_whole(target, "<p>one</p>")
    write_whole(target, b"<p>two</p>")
    assert target.read_text() == "<p>two</p>"
    write_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "a\n1\n2\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["report.html", "sub", "t.csv"]


def test_a_full_disk_keeps_the_previous_file_and_names_the_path(tmp_path):
    """A real short write: the process may not write files over 4 KiB (RLIMIT_FSIZE), as a
    full disk would stop it."""
    target = tmp_path / "report.html"
    target.write_text("previous report")
    script = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from bench.errors import exit_code_reporting_user_errors
        from bench.outputs import write_whole
        raise SystemExit(exit_code_reporting_user_errors(
            lambda: write_whole({str(target)!r}, "x" * 100_000) and 0))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, text=True,
                            capture_output=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: cannot write {target}: File too large")
    assert "Traceback" not in result.stderr
    assert target.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left


def test_a_folder_that_cannot_hold_the_file_is_an_output_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"cannot write .*file/report\.md"):
        write_whole(tmp_path / "file" / "report.md", "x")
