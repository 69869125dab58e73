"""Autograding one submitted notebook: assemble, execute under limits, score.

Free of Django (the worker's task and ``erumlab.courses.check`` both call it).
The submitted notebook runs with the instructor's tests put back, every cell
even after a failing one, under a wall-time limit, in a kernel that has no
secrets in its environment and may neither reach the network nor start
programs (an audit hook the notebook's own code cannot remove). Whatever the
notebook does (fails, loops, kills its kernel, edits the tests) the result is a
score with a message saying what happened, never a stuck grading.

The guard works at the Python level; a deployment adds a worker without a
route to the outside (docker-compose.yml: the grading worker's network is
internal), which also covers code that bypasses Python.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from erumlab.courses import material

GUARD_TAG = "erumlab-grading-guard"
# Runs first in the grading kernel. Audit hooks cannot be removed once added.
GUARD_SOURCE = '''\
def _erumlab_grading_guard():
    import socket
    import sys

    network = {socket.AF_INET, socket.AF_INET6}

    def hook(event, args):
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"):
            if getattr(args[0], "family", None) in network:
                raise PermissionError("network access is disabled while grading")
        elif event == "socket.getaddrinfo":
            raise PermissionError("network access is disabled while grading")
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"):
            raise PermissionError("starting programs is disabled while grading")

    sys.addaudithook(hook)


_erumlab_grading_guard()
del _erumlab_grading_guard
'''


class _Quiet:
    """Observer for run_notebook that only relays the stop check."""

    def __init__(self, observer: Any | None) -> None:
        self.observer = observer
        self.last_started: int | None = None  # the cell running when a run is cut short

    def cell_started(self, index: int, total: int, description: str) -> None:
        self.last_started = index
        if self.observer is not None:
            self.observer.cell_started(index, total, description)

    def cell_finished(self, index: int, total: int) -> None:
        if self.observer is not None:
            self.observer.cell_finished(index, total)

    def stream(self, text: str) -> None:
        pass  # students' prints stay in the graded notebook, not in a log

    def stop_reason(self) -> str | None:
        return self.observer.stop_reason() if self.observer is not None else None

    def close(self) -> None:
        if self.observer is not None:
            self.observer.close()


@dataclass
class GradeReport:
    outcome: str  # "graded": every cell ran; "timeout", "crashed": it stopped early
    results: list[material.TestResult]
    tampered: list[str] = field(default_factory=list)
    message: str = ""
    notebook: NotebookNode | None = None  # executed, for instructors (hidden tests inside)
    wall_seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(result.points for result in self.results)

    @property
    def max_score(self) -> float:
        return sum(result.max_points for result in self.results)


def grade(*, instructor: NotebookNode, released: NotebookNode, submitted: NotebookNode,
          time_limit: float, kernel_env: dict[str, str], workdir: Path | None = None,
          observer: Any | None = None, files: dict[str, bytes] | None = None) -> GradeReport:
    """Grade ``submitted`` against the instructor's notebook it was released from.

    ``files``: files the notebook expects next to it (the lecture's helpers).
    """
    from erumlab.jobs.execution import run_notebook

    assembly = material.assemble(instructor=instructor, released=released, submitted=submitted)
    notebook = assembly.notebook
    guard = nbformat.v4.new_code_cell(GUARD_SOURCE)
    guard.metadata["tags"] = [GUARD_TAG]
    notebook.cells.insert(0, guard)
    owned = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="erumlab-grade-")) if owned else workdir
    try:
        work = folder / "work"
        work.mkdir(parents=True, exist_ok=True)
        for name, content in (files or {}).items():
            (work / Path(name).name).write_bytes(content)
        output = folder / "graded.ipynb"
        env = dict(kernel_env)
        env.setdefault("HOME", str(folder / "home"))
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        quiet = _Quiet(observer)
        result = run_notebook(notebook=notebook, parameters={}, workdir=work, output_path=output,
                              kernel_env=env, observer=quiet,
                              wall_time_limit=time_limit, allow_errors=True)
        executed = nbformat.read(output, as_version=4) if output.exists() else notebook
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
    guard_failed = _guard_failed(executed)
    executed.cells = [cell for cell in executed.cells
                      if GUARD_TAG not in cell.get("metadata", {}).get("tags", [])]
    tests = material.tests_of(instructor)
    if guard_failed:
        # Without the guard nothing counts (it never fails for a sound kernel).
        results = [material.TestResult(t.grade_id, 0.0, t.points, False, "not run")
                   for t in tests]
        return GradeReport("crashed", results, assembly.tampered,
                           f"The grading kernel could not be prepared: {guard_failed}",
                           executed, result.wall_seconds)
    if result.outcome == "succeeded":
        outcome, message, stopped = "graded", "", None
    else:
        # The cell that was running when the kernel stopped (the guard cell was first).
        stopped = (quiet.last_started - 1 if quiet.last_started
                   else material.first_unrun(executed))
        where = _where(executed, stopped)
        if result.outcome == "timeout":
            outcome = "timeout"
            message = (f"Stopped at the time limit of {time_limit:.0f} s{where}; tests after "
                       f"that point scored 0.")
            reason = "the time limit was reached"
        else:
            outcome = "crashed"
            detail = (result.error or {}).get("evalue") or result.message
            message = (f"The notebook's kernel died{where} ({str(detail)[:200]}); tests after "
                       f"that point scored 0.")
            reason = "the kernel died"
        results = material.score(executed, tests, stopped_at=stopped, stop_reason=reason)
        return GradeReport(outcome, results, assembly.tampered, message, executed,
                           result.wall_seconds)
    results = material.score(executed, tests)
    if assembly.tampered:
        message = "Changed test or locked cells were restored before grading."
    return GradeReport(outcome, results, assembly.tampered, message, executed,
                       result.wall_seconds)


def _guard_failed(executed: NotebookNode) -> str:
    for cell in executed.cells:
        if GUARD_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return f"{out.get('ename')}: {out.get('evalue')}"
            return ""
    return ""


def _where(executed: NotebookNode, index: int | None) -> str:
    if index is None:
        return ""
    cell = executed.cells[index]
    first = next((line for line in material.source(cell).splitlines() if line.strip()), "")
    with contextlib.suppress(Exception):
        gid = material.grade_id(cell)
        if gid:
            return f" in cell {gid!r}"
    return f" in the cell starting {first[:60]!r}"
