"""Check course material the way the portal will use it.

    python -m erumlab.courses.check courses/<course>            # every lecture
    python -m erumlab.courses.check courses/<course>/<lecture>  # one lecture

For each lecture: the exercise's nbgrader metadata is valid; the lecture
notebooks run top to bottom; a student who answers with the solutions gets
every point from the real grader; the student version runs without error up
to its first unanswered exercise. Prints the time each step took; exits 1 if
anything failed. Free of Django.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from erumlab.courses import grading, material


@dataclass
class LectureCheck:
    number: int
    slug: str
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    points: tuple[float, float] = (0.0, 0.0)

    @property
    def ok(self) -> bool:
        return not self.problems


def solved(instructor: NotebookNode, released: NotebookNode) -> NotebookNode:
    """The student version with every answer cell filled in as the instructor's solution."""
    answers = {material.grade_id(cell): material.source(cell) for cell in instructor.cells
               if material.is_solution(cell)}
    notebook = copy.deepcopy(released)
    for cell in notebook.cells:
        gid = material.grade_id(cell)
        if gid in answers:
            cell.source = answers[gid]
    return notebook


def _env(folder: Path) -> dict[str, str]:
    from erumlab.jobs.execution import base_kernel_env

    return base_kernel_env(folder / "home")


def _helpers(lecture: material.LectureSpec) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(lecture.folder.glob("*.py"))}


def run_plain(notebook: NotebookNode, folder: Path, *, time_limit: float,
              files: dict[str, bytes],
              extra_env: dict[str, str] | None = None) -> tuple[str, dict | None, float]:
    """Execute a notebook as a student would (stops at the first error)."""
    from erumlab.jobs.execution import run_notebook

    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (work / name).write_bytes(content)
    result = run_notebook(notebook=notebook, parameters={}, workdir=work,
                          output_path=folder / "out.ipynb",
                          kernel_env={**_env(folder), **(extra_env or {})},
                          observer=_NoObserver(), wall_time_limit=time_limit)
    return result.outcome, result.error, result.wall_seconds


class _NoObserver:
    def cell_started(self, index: int, total: int, description: str) -> None: ...

    def cell_finished(self, index: int, total: int) -> None: ...

    def stream(self, text: str) -> None: ...

    def stop_reason(self) -> str | None:
        return None

    def close(self) -> None: ...


def check_lecture(lecture: material.LectureSpec, *, time_limit: float = 600,
                  lectures: bool = True, parallel: bool = False) -> LectureCheck:
    report = LectureCheck(lecture.number, lecture.slug)
    files = _helpers(lecture)
    exercise_path = lecture.path(lecture.exercise)
    try:
        instructor = material.read_notebook(exercise_path.read_text(), what=str(exercise_path))
        released = material.student_version(instructor)
    except material.MaterialError as exc:
        report.problems.append(str(exc))
        return report
    with tempfile.TemporaryDirectory(prefix="erumlab-check-") as tmp:
        root = Path(tmp)
        # The runs are independent kernels: side by side they take about as long as the
        # longest, not the sum (each kernel then gets one thread, as on a shared grader).
        runs: dict[str, Callable[[], Any]] = {}
        threads = {"OMP_NUM_THREADS": "1"} if parallel else {}
        if lectures:
            for name in lecture.notebooks:
                if name != lecture.exercise:
                    notebook = nbformat.read(lecture.path(name), as_version=4)
                    runs[name] = partial(run_plain, notebook, root / name, time_limit=time_limit,
                                         files=files, extra_env=threads)
        runs["grade"] = partial(
            grading.grade, instructor=instructor, released=released,
            submitted=solved(instructor, released), time_limit=time_limit,
            kernel_env={**_env(root / "grade"), **threads}, workdir=root / "grade", files=files)
        runs["student"] = partial(run_plain, released, root / "student", time_limit=time_limit,
                                  files=files, extra_env=threads)
        with ThreadPoolExecutor(max_workers=len(runs) if parallel else 1) as pool:
            futures = {key: pool.submit(run) for key, run in runs.items()}
            results = {key: future.result() for key, future in futures.items()}
        for name, result in results.items():
            if name in ("grade", "student"):
                continue
            outcome, error, seconds = result
            report.seconds[name] = seconds
            if outcome != "succeeded":
                report.problems.append(f"{name}: {outcome}: {_describe(error)}")
        graded = results["grade"]
        report.seconds["exercise (solutions, graded)"] = graded.wall_seconds
        report.points = (graded.score, graded.max_score)
        if graded.outcome != "graded":
            report.problems.append(f"solutions: {graded.message}")
        if graded.tampered:
            report.problems.append(f"solutions flagged as tampering: {graded.tampered}")
        for result in graded.results:
            if not result.passed:
                report.problems.append(f"solutions fail test {result.grade_id!r}: {result.message}")
        outcome, error, seconds = results["student"]
        report.seconds["student version (to first exercise)"] = seconds
        problem = student_version_problem(released, outcome, error)
        if problem:
            report.problems.append(problem)
    return report


def student_version_problem(released: NotebookNode, outcome: str, error: dict | None) -> str:
    """Empty when the student version stopped exactly at its first unanswered exercise."""
    first = next((index for index, cell in enumerate(released.cells)
                  if material.is_solution(cell) and cell.cell_type == "code"), None)
    if first is None:
        return "student version: no answer cell"
    if outcome != "failed" or not error:
        return f"student version: expected to stop at its first exercise, but {outcome}"
    if error.get("ename") != "NotImplementedError":
        return f"student version fails before its first exercise: {_describe(error)}"
    # The stub raises in the answer cell, or in its test when the answer is a function.
    # papermill numbers cells from 0 in the notebook it ran (nothing injected: no parameters).
    test = next((index for index, cell in enumerate(released.cells)
                 if index > first and material.is_grade(cell)), first)
    index = error.get("cell_index")
    if index is not None and not first <= index <= test:
        return (f"student version stopped at cell {index}, not at its first exercise "
                f"(cells {first}-{test}): {_describe(error)}")
    return ""


def _describe(error: dict | None) -> str:
    if not error:
        return "no details"
    return f"{error.get('ename', 'Error')}: {str(error.get('evalue', ''))[:300]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a course folder or one lecture folder in it")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds per notebook")
    parser.add_argument("--exercises-only", action="store_true",
                        help="skip the lecture notebooks")
    parser.add_argument("--parallel", action="store_true",
                        help="run a lecture's notebooks side by side, one thread each")
    args = parser.parse_args(argv)
    path = args.path.resolve()
    try:
        if (path / "course.json").is_file():
            course, only = material.load_course(path), None
        else:
            course, only = material.load_course(path.parent, only=path.name), path.name
    except material.MaterialError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = [lecture for lecture in course.lectures if only in (None, lecture.folder.name)]
    if not chosen:
        print(f"error: no lecture in {course.folder} has the folder {only!r}", file=sys.stderr)
        return 2
    failed = 0
    for lecture in chosen:
        started = time.monotonic()
        report = check_lecture(lecture, time_limit=args.time_limit,
                               lectures=not args.exercises_only, parallel=args.parallel)
        status = "ok" if report.ok else "FAILED"
        print(f"lecture {report.number:2d} {report.slug}: {status} "
              f"({report.points[0]:g}/{report.points[1]:g} points, "
              f"{time.monotonic() - started:.1f} s)")
        for step, seconds in report.seconds.items():
            print(f"    {step}: {seconds:.1f} s")
        for problem in report.problems:
            print(f"    problem: {problem}")
        failed += not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
