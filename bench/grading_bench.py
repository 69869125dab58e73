"""Autograding throughput: a class of 100 submissions of one exercise, 1 and 2 worker processes.

    .venv/bin/python bench/grading_bench.py [--submissions 100] [--course DIR] [--lecture N]

The class hands in a mix (60 % right, 30 % with the last answer missing, 10 % untouched) of one
exercise, by default the tiny exercise of the test suite (tests/courses/
tiny-course: its run is kernel start and a few cells, so the figure shows the
grader's own cost); --course and --lecture pick a lecture of a real course
(each submission then costs that exercise's runtime).

Printed, measured side by side in one run:
- submissions per minute through the platform (submit -> Celery -> claim ->
  grade -> recorded) with 1 and with 2 worker processes, and their ratio;
- the overhead ratio: the platform's time per submission with one worker over
  the grader called directly in this process (no Celery, no database), on the
  same notebooks.

Runs on embedded defaults (temporary SQLite and Redis) unless DATABASE_URL /
REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchenv import bench_platform

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--course", type=Path, default=ROOT / "tests" / "courses" / "tiny-course")
    parser.add_argument("--lecture", type=int, default=1)
    parser.add_argument("--direct", type=int, default=20,
                        help="submissions graded directly, for the overhead ratio")
    args = parser.parse_args()
    with bench_platform():
        run(args)


def _class_notebooks(release, count: int) -> list[str]:  # noqa: ANN001
    import nbformat

    from erumlab.courses import material
    from erumlab.courses.check import solved

    instructor = nbformat.reads(release.exercise_source, as_version=4)
    released = nbformat.reads(release.exercise_student, as_version=4)
    right = nbformat.writes(solved(instructor, released))
    partial = solved(instructor, released)  # the last answer left as it came
    last = max(i for i, cell in enumerate(partial.cells) if material.is_solution(cell))
    partial.cells[last] = released.cells[last]
    wrong_nb = partial
    wrong = nbformat.writes(wrong_nb)
    untouched = nbformat.writes(released)
    pattern = [right] * 6 + [wrong] * 3 + [untouched]
    return [pattern[i % len(pattern)] for i in range(count)]


def run(args: argparse.Namespace) -> None:
    import nbformat
    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from erumlab.accounts.models import User
    from erumlab.cli import worker_argv
    from erumlab.courses import grading, services
    from erumlab.courses.models import Submission
    from erumlab.jobs.execution import base_kernel_env
    from erumlab.testing.processes import running

    course = services.course_install(folder=args.course).course
    lecture = course.lectures.get(number=args.lecture)
    prof = User.objects.create_user(username="prof", email="prof@example.org")
    prof.user_permissions.add(Permission.objects.get(codename="create_offering"))
    prof = User.objects.get(pk=prof.pk)
    offering = services.offering_create(course=course, term="Bench", actor=prof)
    release = services.release_lecture(offering=offering, lecture=lecture, actor=prof,
                                       due_at=timezone.now() + timedelta(days=1))
    students = [User.objects.create_user(username=f"s{i:03d}", email=f"s{i}@example.org")
                for i in range(args.submissions)]
    for student in students:
        services.enrol_with_code(user=student, code=offering.enrolment_code)
    notebooks = _class_notebooks(release, args.submissions)

    def direct(count: int) -> list[float]:
        times = []
        folder = Path(tempfile.mkdtemp(prefix="erumlab-grade-bench-"))
        for i, text in enumerate(notebooks[:count]):
            started = time.perf_counter()
            grading.grade(instructor=nbformat.reads(release.exercise_source, as_version=4),
                          released=nbformat.reads(release.exercise_student, as_version=4),
                          submitted=nbformat.reads(text, as_version=4),
                          time_limit=release.time_limit,
                          kernel_env=base_kernel_env(folder / "home"), workdir=folder / str(i),
                          files={k: v.encode() for k, v in release.files.items()})
            times.append(time.perf_counter() - started)
        return times

    def through_platform(concurrency: int) -> tuple[float, list[Submission]]:
        Submission.objects.all().delete()
        log = Path(os.environ["ERUMLAB_DATA_DIR"]) / f"worker-{concurrency}.log"
        with running(worker_argv(queues="default", concurrency=str(concurrency)),
                     env=dict(os.environ), log=log):
            # Warm-up: worker start and first imports are not per-submission costs.
            warm = [services.submission_create(release=release, student=students[i],
                                               content=notebooks[0], source="upload")
                    for i in range(concurrency)]
            _wait(Submission, [s.pk for s in warm])
            started = time.perf_counter()
            made = [services.submission_create(release=release, student=student, content=text,
                                               source="upload")
                    for student, text in zip(students, notebooks, strict=True)]
            _wait(Submission, [s.pk for s in made])
            elapsed = time.perf_counter() - started
        done = list(Submission.objects.filter(pk__in=[s.pk for s in made]))
        assert all(s.state == "graded" for s in done), [s.message for s in done]
        return elapsed, done

    direct_before = direct(args.direct)
    one, graded = through_platform(1)
    two, _ = through_platform(2)
    direct_after = direct(args.direct)
    per_direct = min(statistics.median(direct_before), statistics.median(direct_after))
    scores = sorted(s.score for s in graded)
    n = args.submissions
    print(f"exercise: {course.title}, lecture {lecture.number} ({lecture.title}); "
          f"{n} submissions; database {_vendor()}; "
          f"redis {'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'}")
    print(f"scores: median {statistics.median(scores):g} of {release.max_points:g}, "
          f"{sum(s == release.max_points for s in scores)} full marks")
    print(f"grader called directly:      {per_direct:6.2f} s per submission "
          f"(median of {args.direct}, before/after: {statistics.median(direct_before):.2f} / "
          f"{statistics.median(direct_after):.2f})")
    print(f"platform, 1 worker process:  {one:7.1f} s -> {60 * n / one:6.1f} submissions/min")
    print(f"platform, 2 worker processes:{two:7.1f} s -> {60 * n / two:6.1f} submissions/min")
    print(f"throughput ratio (2 / 1 processes): {one / two:.2f}")
    print(f"overhead ratio (platform per submission, 1 process / direct): "
          f"{one / n / per_direct:.2f}")


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def _wait(model, ids, timeout: float = 3600) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while model.objects.filter(pk__in=ids).exclude(state__in=("graded", "failed")).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("submissions were not graded in time")
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
