"""Student versions and the autograder on a tiny exercise: every way a notebook can go wrong
ends in a clear result (no stuck grading), and tampering with tests does not pay."""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from erumlab.courses import grading, material
from erumlab.courses.check import check_lecture, solved
from erumlab.jobs.execution import base_kernel_env

TINY = Path(__file__).parent / "tiny-course"


@pytest.fixture(scope="module")
def exercise():
    instructor = nbformat.read(TINY / "01-squares" / "exercise.ipynb", as_version=4)
    return instructor, material.student_version(instructor)


def _cell(notebook, gid):
    return next(cell for cell in notebook.cells if material.grade_id(cell) == gid)


def _grade(exercise, submitted, tmp_path, time_limit=60):
    instructor, released = exercise
    return grading.grade(instructor=instructor, released=released, submitted=submitted,
                         time_limit=time_limit, kernel_env=base_kernel_env(tmp_path / "home"),
                         workdir=tmp_path / "grade",
                         files={"helpers.py": (TINY / "01-squares" / "helpers.py").read_bytes()})


def _answered(exercise, **answers):
    instructor, released = exercise
    notebook = solved(instructor, released)
    for gid, text in answers.items():
        _cell(notebook, gid).source = text
    return notebook


def test_student_version_hides_solutions_and_hidden_tests_and_keeps_checksums(exercise):
    instructor, released = exercise
    answer = _cell(released, "square")
    assert "return x * x" not in answer.source
    assert "raise NotImplementedError()" in answer.source
    assert 'def square(x):' in answer.source  # the signature stays outside the region
    tests = _cell(released, "square-tests")
    assert "square(3) == 9" in tests.source and "square(-4)" not in tests.source
    assert "HIDDEN" not in tests.source
    for cell in released.cells:
        if material.grade_id(cell):
            assert material.meta(cell)["checksum"] == material.checksum(cell)
    # The instructor's notebook is untouched.
    assert "square(-4) == 16" in _cell(instructor, "square-tests").source


def test_invalid_material_names_every_problem(exercise):
    instructor, _ = exercise
    broken = copy.deepcopy(instructor)
    material.meta(_cell(broken, "square-tests"))["points"] = 0
    material.meta(_cell(broken, "hypotenuse"))["grade_id"] = "square"
    with pytest.raises(material.MaterialError) as error:
        material.validate(broken)
    assert "points > 0" in str(error.value) and "grade_id used twice" in str(error.value)


def test_the_solutions_score_full_points_and_an_empty_notebook_none(exercise, tmp_path):
    instructor, released = exercise
    full = _grade(exercise, solved(instructor, released), tmp_path / "a")
    assert full.outcome == "graded" and (full.score, full.max_score) == (5, 5)
    assert full.tampered == []
    empty = _grade(exercise, released, tmp_path / "b")
    assert empty.outcome == "graded" and empty.score == 0
    assert [r.message for r in empty.results] == ["NotImplementedError"] * 2


def test_hidden_tests_count(exercise, tmp_path):
    # Passes the visible assert (3*3) but not the hidden one (negative numbers).
    report = _grade(exercise, _answered(exercise, square="def square(x):\n    return abs(x) * 3"),
                    tmp_path)
    assert {r.grade_id: r.points for r in report.results} == {"square-tests": 0,
                                                              "hypotenuse-tests": 0}
    cheat = _answered(exercise, square="def square(x):\n    return 9 if x == 3 else x")
    assert _grade(exercise, cheat, tmp_path / "c").results[0].points == 0


def test_edited_and_deleted_tests_are_restored_and_reported(exercise, tmp_path):
    notebook = _answered(exercise, square="def square(x):\n    return 0")
    _cell(notebook, "square-tests").source = "pass  # nothing to see"
    notebook.cells = [c for c in notebook.cells if material.grade_id(c) != "hypotenuse-tests"]
    report = _grade(exercise, notebook, tmp_path)
    assert report.results[0].points == 0  # the original test ran, not "pass"
    assert any("'square-tests' was changed" in t for t in report.tampered)
    assert any("'hypotenuse-tests' was deleted" in t for t in report.tampered)
    assert "restored" in report.message
    # The deleted test was put back and ran: the correct hypotenuse needs a correct square.
    assert report.results[1].grade_id == "hypotenuse-tests"
    assert report.results[1].message.startswith("AssertionError")


def test_cells_a_student_adds_are_kept(exercise, tmp_path):
    notebook = _answered(exercise, square="def square(x):\n    return _mine(x)")
    notebook.cells.insert(2, nbformat.v4.new_code_cell("def _mine(x):\n    return x ** 2"))
    assert _grade(exercise, notebook, tmp_path).score == 5


def test_an_endless_loop_stops_at_the_time_limit_with_a_clear_result(exercise, tmp_path):
    notebook = _answered(exercise, hypotenuse="while True:\n    pass")
    report = _grade(exercise, notebook, tmp_path, time_limit=15)
    assert report.outcome == "timeout"
    assert "time limit of 15 s" in report.message and "'hypotenuse'" in report.message
    assert [r.points for r in report.results] == [2, 0]
    assert report.results[1].message == "not run: the time limit was reached"


def test_a_kernel_that_dies_gives_a_clear_result(exercise, tmp_path):
    notebook = _answered(exercise, hypotenuse="import os\nos._exit(3)")
    report = _grade(exercise, notebook, tmp_path)
    assert report.outcome == "crashed"
    assert "kernel died" in report.message
    assert [r.points for r in report.results] == [2, 0]


def test_the_grading_kernel_has_no_network_and_no_secrets(exercise, tmp_path, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    reached = []

    def accept():
        server.settimeout(20)
        with contextlib.suppress(OSError):
            reached.append(server.accept())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("ERUMLAB_SECRET_KEY", "never-in-a-kernel")
    notebook = _answered(exercise, square=(
        "import os, socket, subprocess, urllib.request\n"
        "problems = []\n"
        f"for attempt in (lambda: socket.create_connection(('127.0.0.1', {port}), timeout=3),\n"
        f"                lambda: urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=3),\n"
        "                lambda: subprocess.run(['true'])):\n"
        "    try:\n"
        "        attempt()\n"
        "        problems.append('allowed')\n"
        "    except PermissionError as error:\n"
        "        problems.append(str(error))\n"
        "    except Exception as error:\n"
        "        problems.append(repr(error))\n"
        "assert 'ERUMLAB_SECRET_KEY' not in os.environ\n"
        "print(problems)\n"
        "def square(x):\n"
        "    return x * x"))
    report = _grade(exercise, notebook, tmp_path)
    thread.join(timeout=1)
    server.close()
    assert report.score == 5, report.results
    assert reached == []
    printed = "".join(out.get("text", "") for cell in report.notebook.cells
                      if material.grade_id(cell) == "square" for out in cell.outputs)
    assert printed.count("network access is disabled while grading") == 2, printed
    assert "starting programs is disabled while grading" in printed


def test_the_authors_checker_passes_the_tiny_course():
    lecture = material.load_course(TINY).lectures[0]
    report = check_lecture(lecture)
    assert report.ok, report.problems
    assert report.points == (5, 5)


def test_the_checker_notices_a_student_version_that_fails_early(tmp_path):
    import shutil

    course = tmp_path / "course"
    shutil.copytree(TINY, course)
    path = course / "01-squares" / "exercise.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].source = "import math\nimport no_such_module"
    nbformat.write(notebook, path)
    report = check_lecture(material.load_course(course).lectures[0], lectures=False)
    assert not report.ok
    assert any("student version fails before its first exercise" in p for p in report.problems)
