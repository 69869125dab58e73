"""Course material on disk: manifests, nbgrader cell metadata, student versions, assembly.

Free of Django, so authors can check a lecture without a portal
(``python -m erumlab.courses.check``) and the grader can run anywhere.

The material uses nbgrader's cell metadata (schema 3) and its preprocessors
(ClearSolutions, ClearHiddenTests, LockCells, ComputeChecksums, ...): the same
notebook works in nbgrader and here. What nbgrader keeps in its gradebook
database (the instructor's cells, their checksums) erumlab keeps with the
lecture: the instructor's notebook and the student version generated from it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

SCHEMA_VERSION = 3
NOTEBOOK_MAX_BYTES = 20_000_000


class MaterialError(ValueError):
    """Course material that cannot be used as it is; the message says what and where."""


# Manifests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LectureSpec:
    number: int
    slug: str
    title: str
    folder: Path
    notebooks: tuple[str, ...]
    exercise: str

    def path(self, name: str) -> Path:
        return self.folder / name


@dataclass(frozen=True)
class CourseSpec:
    slug: str
    title: str
    description: str
    folder: Path
    lectures: tuple[LectureSpec, ...] = field(default_factory=tuple)


def load_course(folder: Path, *, only: str | None = None) -> CourseSpec:
    """Read ``course.json`` in ``folder`` and check that every file it names exists.

    ``only``: a lecture folder's name; the other lectures' files are not checked
    (an author checking one lecture while others are being written).
    """
    manifest = folder / "course.json"
    try:
        data = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise MaterialError(f"{manifest}: no course.json") from None
    except json.JSONDecodeError as exc:
        raise MaterialError(f"{manifest}: not valid JSON ({exc})") from None
    for key in ("slug", "title", "lectures"):
        if key not in data:
            raise MaterialError(f"{manifest}: missing {key!r}")
    lectures = []
    seen: set[int] = set()
    for entry in data["lectures"]:
        try:
            number, slug = int(entry["number"]), str(entry["slug"])
            lecture_folder = folder / str(entry.get("folder", slug))
            notebooks = tuple(entry.get("notebooks", ["lecture.ipynb", "exercise.ipynb"]))
            exercise = str(entry.get("exercise", "exercise.ipynb"))
            title = str(entry["title"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MaterialError(
                f"{manifest}: a lecture entry is incomplete: {entry!r} ({exc})") from None
        if number in seen:
            raise MaterialError(f"{manifest}: lecture number {number} appears twice")
        seen.add(number)
        if exercise not in notebooks:
            raise MaterialError(f"{manifest}: lecture {number}: exercise {exercise!r} is not one "
                                f"of its notebooks {list(notebooks)}")
        for name in notebooks:
            if only in (None, lecture_folder.name) and not (lecture_folder / name).is_file():
                raise MaterialError(f"lecture {number} ({slug}): missing {lecture_folder / name}")
        lectures.append(LectureSpec(number, slug, title, lecture_folder, notebooks, exercise))
    return CourseSpec(slug=str(data["slug"]), title=str(data["title"]),
                      description=str(data.get("description", "")), folder=folder,
                      lectures=tuple(sorted(lectures, key=lambda lecture: lecture.number)))


def find_courses(root: Path) -> list[CourseSpec]:
    """Every course under ``root`` (a folder with a course.json)."""
    return [load_course(manifest.parent) for manifest in sorted(root.glob("*/course.json"))]


# Notebooks and cell metadata --------------------------------------------------------------


def read_notebook(text: str | bytes, *, what: str = "The notebook") -> NotebookNode:
    """Parse and validate notebook JSON, with an error that names the problem."""
    if len(text) > NOTEBOOK_MAX_BYTES:
        raise MaterialError(f"{what} is larger than {NOTEBOOK_MAX_BYTES // 1_000_000} MB.")
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except (ValueError, nbformat.ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise MaterialError(f"{what} is not a valid Jupyter notebook: {str(exc)[:300]}") from None
    return notebook


def meta(cell: NotebookNode) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell: NotebookNode) -> str:
    return str(meta(cell).get("grade_id", ""))


def is_solution(cell: NotebookNode) -> bool:
    return bool(meta(cell).get("solution"))


def is_grade(cell: NotebookNode) -> bool:
    return bool(meta(cell).get("grade"))


def is_locked(cell: NotebookNode) -> bool:
    """Locked as nbgrader sees it: marked locked, or a test cell that is not an answer."""
    m = meta(cell)
    return bool(m.get("locked")) or (bool(m.get("grade")) and not m.get("solution"))


def source(cell: NotebookNode) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


@dataclass(frozen=True)
class Test:
    grade_id: str
    points: float


def tests_of(notebook: NotebookNode) -> list[Test]:
    """The autograded test cells and their points, in notebook order."""
    return [Test(grade_id(cell), float(meta(cell).get("points", 0)))
            for cell in notebook.cells if is_grade(cell) and cell.cell_type == "code"]


def validate(notebook: NotebookNode, *, where: str = "exercise") -> None:
    """Check an instructor's exercise notebook; raises MaterialError naming every problem."""
    problems = []
    seen: set[str] = set()
    for index, cell in enumerate(notebook.cells, start=1):
        m = meta(cell)
        if not m:
            continue
        gid = grade_id(cell)
        label = f"cell {index} ({gid or 'no grade_id'})"
        if not gid:
            problems.append(f"{label}: nbgrader metadata without a grade_id")
        elif gid in seen:
            problems.append(f"{label}: grade_id used twice")
        seen.add(gid)
        if m.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            problems.append(f"{label}: nbgrader schema_version {m.get('schema_version')} "
                            f"(expected {SCHEMA_VERSION})")
        text = source(cell)
        if m.get("grade"):
            if cell.cell_type != "code":
                problems.append(f"{label}: a test cell must be a code cell")
            try:
                points = float(m.get("points", 0))
            except (TypeError, ValueError):
                points = 0
            if points <= 0:
                problems.append(f"{label}: a test cell needs points > 0")
            if m.get("solution"):
                problems.append(f"{label}: answer cells graded by hand are not supported; "
                                f"split it into an answer cell and a test cell")
        if m.get("solution") and cell.cell_type == "code" and "BEGIN SOLUTION" not in text:
            problems.append(f"{label}: an answer cell without ### BEGIN SOLUTION")
        if not m.get("solution") and "BEGIN SOLUTION" in text:
            problems.append(f"{label}: a solution region in a cell not marked as an answer")
        if ("BEGIN HIDDEN TESTS" in text) != ("END HIDDEN TESTS" in text):
            problems.append(f"{label}: unbalanced HIDDEN TESTS markers")
    if not tests_of(notebook):
        problems.append("no autograded test cells")
    if problems:
        raise MaterialError(f"{where}: " + "; ".join(problems))


def _preprocess(notebook: NotebookNode, *steps: Any) -> NotebookNode:
    resources: dict[str, Any] = {}
    for step in steps:
        notebook, resources = step.preprocess(notebook, resources)
    return notebook


def student_version(instructor: NotebookNode) -> NotebookNode:
    """What students get: solutions and hidden tests removed, outputs cleared, checksums kept.

    nbgrader's own generate-assignment steps, in its order, without its database.
    """
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )

    validate(instructor)
    notebook = copy.deepcopy(instructor)
    return _preprocess(notebook, LockCells(), ClearSolutions(), ClearOutput(),
                       CheckCellMetadata(), ComputeChecksums(), ClearHiddenTests(),
                       ComputeChecksums(), CheckCellMetadata())


def clean_copy(notebook: NotebookNode) -> NotebookNode:
    """A lecture notebook as students get it: outputs cleared, nothing else changed."""
    from nbgrader.preprocessors import ClearOutput

    return _preprocess(copy.deepcopy(notebook), ClearOutput())


def checksum(cell: NotebookNode) -> str:
    from nbgrader.utils import compute_checksum

    return compute_checksum(cell)


# Assembling what gets graded ---------------------------------------------------------------


@dataclass
class Assembly:
    notebook: NotebookNode
    tampered: list[str] = field(default_factory=list)  # what the student changed, in words
    missing_answers: list[str] = field(default_factory=list)


def assemble(*, instructor: NotebookNode, released: NotebookNode,
             submitted: NotebookNode) -> Assembly:
    """The notebook the grader runs: the student's answers with the instructor's tests.

    Like nbgrader's OverwriteCells, it starts from the student's notebook and
    puts back every locked cell and test cell as the instructor wrote it
    (hidden tests included); a locked cell whose checksum differs from the
    released one, a test cell that was deleted, or a cell's kind changed is
    reported as tampering. Cells the student added stay where they are.
    """
    originals = {grade_id(cell): cell for cell in instructor.cells if grade_id(cell)}
    released_sums = {grade_id(cell): meta(cell).get("checksum") or checksum(cell)
                     for cell in released.cells if grade_id(cell)}
    order = [grade_id(cell) for cell in instructor.cells if grade_id(cell)]
    report = Assembly(notebook=copy.deepcopy(submitted))
    cells: list[NotebookNode] = []
    present: set[str] = set()
    for cell in report.notebook.cells:
        gid = grade_id(cell)
        if gid and gid in present:
            # A copied cell keeps its text but not its identity (nbgrader's DeduplicateIds).
            cell.metadata.pop("nbgrader", None)
            gid = ""
        original = originals.get(gid) if gid else None
        if original is None:
            if gid:  # a grade_id the exercise does not have: treat as the student's own cell
                cell.metadata.pop("nbgrader", None)
            _clear_outputs(cell)
            cells.append(cell)
            continue
        present.add(gid)
        if is_locked(original):
            if checksum(_as_released(cell)) != released_sums.get(gid) or \
                    cell.cell_type != original.cell_type:
                report.tampered.append(f"{'test' if is_grade(original) else 'locked'} cell "
                                       f"{gid!r} was changed; the original was restored")
            cells.append(_fresh(original))
        else:  # an answer cell: the student's text, the original's identity and kind
            restored = _fresh(original)
            restored.source = source(cell)
            cells.append(restored)
    for index, gid in enumerate(order):
        if gid in present:
            continue
        original = originals[gid]
        if is_locked(original):
            report.tampered.append(f"{'test' if is_grade(original) else 'locked'} cell {gid!r} "
                                   f"was deleted; the original was restored")
            insert = _fresh(original)
        else:
            report.missing_answers.append(gid)
            insert = _fresh(original)
            insert.source = _stub(original)
        # After the nearest earlier cell of the exercise that is in place.
        position = 0
        for earlier in reversed(order[:index]):
            found = next((i for i, c in enumerate(cells) if grade_id(c) == earlier), None)
            if found is not None:
                position = found + 1
                break
        cells.insert(position, insert)
        present.add(gid)
    report.notebook.cells = cells
    report.notebook.metadata["kernelspec"] = copy.deepcopy(
        instructor.metadata.get("kernelspec", {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}))
    return report


def _as_released(cell: NotebookNode) -> NotebookNode:
    plain = copy.deepcopy(cell)
    _clear_outputs(plain)
    return plain


def _fresh(cell: NotebookNode) -> NotebookNode:
    fresh = copy.deepcopy(cell)
    _clear_outputs(fresh)
    return fresh


def _clear_outputs(cell: NotebookNode) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None


def _stub(cell: NotebookNode) -> str:
    return "# YOUR CODE HERE\nraise NotImplementedError()" if cell.cell_type == "code" \
        else "YOUR ANSWER HERE"


# Scoring an executed notebook --------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    grade_id: str
    points: float
    max_points: float
    passed: bool
    message: str  # the error's name and value, empty when passed

    def as_dict(self) -> dict[str, Any]:
        return {"grade_id": self.grade_id, "points": self.points, "max_points": self.max_points,
                "passed": self.passed, "message": self.message}


def score(executed: NotebookNode, tests: list[Test], *, stopped_at: int | None = None,
          stop_reason: str = "") -> list[TestResult]:
    """Points per test: full points when the test cell ran without an error, else 0.

    ``stopped_at``: the index of the cell where execution ended early (time
    limit, dead kernel); test cells from there on did not run.
    """
    cells = {grade_id(cell): (index, cell) for index, cell in enumerate(executed.cells)
             if grade_id(cell)}
    results = []
    for test in tests:
        index, cell = cells.get(test.grade_id, (None, None))
        if cell is None:
            results.append(TestResult(test.grade_id, 0.0, test.points, False, "test cell missing"))
            continue
        errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        ran = cell.get("execution_count") is not None
        if stopped_at is not None and index is not None and index >= stopped_at and not errors:
            results.append(TestResult(test.grade_id, 0.0, test.points, False,
                                      f"not run: {stop_reason}" if stop_reason else "not run"))
        elif errors:
            error = errors[0]
            value = str(error.get("evalue", "")).strip()
            message = f"{error.get('ename', 'Error')}: {value}" if value else error.get("ename", "Error")
            results.append(TestResult(test.grade_id, 0.0, test.points, False, message[:500]))
        elif not ran:
            results.append(TestResult(test.grade_id, 0.0, test.points, False, "not run"))
        else:
            results.append(TestResult(test.grade_id, test.points, test.points, True, ""))
    return results


def first_unrun(executed: NotebookNode) -> int | None:
    """Index of the first code cell that did not run (no execution count)."""
    for index, cell in enumerate(executed.cells):
        if cell.cell_type == "code" and source(cell).strip() and cell.get("execution_count") is None:
            return index
    return None
