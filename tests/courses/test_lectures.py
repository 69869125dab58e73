"""The course material itself: every lecture notebook runs top to bottom on a CPU, every
exercise's solutions get full points from the real grader, and every student version runs
without error up to its first unanswered exercise. One test per lecture (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from erumlab.courses import material
from erumlab.courses.check import check_lecture
from erumlab.courses.models import Course

COURSE = Path(__file__).resolve().parents[2] / "courses" / "deep-learning-in-physics-research"
SPEC = material.load_course(COURSE)


def test_the_course_has_twelve_lectures_in_order():
    assert SPEC.title == "Deep Learning in Physics Research"
    assert [lecture.number for lecture in SPEC.lectures] == list(range(1, 13))


@pytest.mark.django_db
def test_one_command_installs_the_course_ready_to_offer():
    call_command("install_courses")
    course = Course.objects.get(slug=SPEC.slug)
    lectures = list(course.lectures.order_by("number"))
    assert len(lectures) == 12
    for lecture in lectures:
        assert lecture.max_points > 0 and lecture.tests, lecture
        assert "BEGIN SOLUTION" not in lecture.exercise_student, lecture
        assert "BEGIN HIDDEN TESTS" not in lecture.exercise_student, lecture
        assert "lecture.ipynb" in lecture.notebooks, lecture


@pytest.mark.slow
@pytest.mark.parametrize("lecture", SPEC.lectures, ids=[lecture.slug for lecture in SPEC.lectures])
def test_the_lecture_runs_and_its_solutions_pass_their_own_tests(lecture):
    report = check_lecture(lecture, time_limit=600, parallel=True)
    assert report.ok, "\n".join(report.problems)
    assert report.points[0] == report.points[1] > 0
