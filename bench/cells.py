"""What happened to the cell (one Hydra job) that this process ran last.

The task records its outcome here (FINISHED, or SKIPPED when `resume=true` reused a finished
run); Hydra callbacks that run in the same process after the job (the end-of-multirun summary)
read it with `take()`. A job that raised records nothing: its callbacks see Hydra's FAILED
status instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FINISHED, SKIPPED, FAILED = "FINISHED", "SKIPPED", "FAILED"


@dataclass
class CellOutcome:
    """`objective`: the value returned to the sweeper (VAL); `test_f1` is shown beside it."""

    status: str
    run_id: str | None = None
    objective: float | list[float] | None = None
    test_f1: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_last: CellOutcome | None = None


def record(outcome: CellOutcome) -> None:
    global _last
    _last = outcome


def take() -> CellOutcome | None:
    """The last recorded outcome, cleared so the next job starts empty."""
    global _last
    outcome, _last = _last, None
    return outcome


# -- the outcomes of a multirun, one JSON line per cell in <sweep dir>/cells.jsonl
CELLS_FILE = "cells.jsonl"


def append_line(path: Any, line: dict[str, Any]) -> None:
    """Append one JSON line; a single O_APPEND write, so jobs in several processes (joblib,
    Ray on one host or a shared disk) never interleave their lines."""
    import json
    import os

    data = (json.dumps(line, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_lines(path: Any) -> list[dict[str, Any]]:
    """Every complete cell line written so far (a line being written is skipped), with the
    later corrections (`correct`) applied to the line of their run."""
    import json
    from pathlib import Path

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "corrects" in item:
            for earlier in out:
                if earlier.get("run_id") == item["corrects"]:
                    earlier.update(status=item["status"], error=item.get("error"))
        else:
            out.append(item)
    return out


_grid_file: Any = None


def follow_grid(path: Any) -> None:
    """Where `correct` writes: the cells file of the multirun this process launched (its
    cells run here under Hydra's basic launcher); None when it has ended."""
    global _grid_file
    _grid_file = path


def correct(run_id: str, status: str, error: str) -> None:
    """A cell's run ended otherwise than its line says (a sequential grid's run whose figures
    failed after the cell was counted FINISHED): one more line, applied by `read_lines`, so
    the progress, the summary and summary.txt tell the run's real status."""
    if _grid_file is not None:
        append_line(_grid_file, {"corrects": run_id, "status": status, "error": error[:300]})
