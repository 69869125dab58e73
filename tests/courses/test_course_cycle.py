"""The whole cycle with a real JupyterHub and a real Celery worker: an instructor releases a
lecture, students open it in their own notebook servers, one answers and submits with one
call from the notebook, another from the portal; the worker grades; the instructor sees the
gradebook, overrides a score, exports CSV; a late submission is marked and an extension
lifts it."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from erumlab.courses import services
from erumlab.courses.models import Submission
from erumlab.sessions.hub import HubClient
from erumlab.testing.hub import run_in_kernel
from tests.factories import UserFactory

TINY = Path(__file__).parent / "tiny-course"
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("session_profiles")]

ANSWER_AND_SUBMIT = """
import json, pathlib
path = pathlib.Path({path!r})
notebook = json.loads(path.read_text())
answers = {{"square": "def square(x):\\n    return x * x",
            "hypotenuse": "def hypotenuse(a, b):\\n    return math.hypot(a, b)"}}
for cell in notebook["cells"]:
    grade_id = cell["metadata"].get("nbgrader", {{}}).get("grade_id")
    if grade_id in answers:
        cell["source"] = answers[grade_id]
path.write_text(json.dumps(notebook))
from erumlab.client import Client
submission = Client().submit_exercise(path, wait=True, timeout=240)
print(submission["state"], submission["score"], submission["max_score"], submission["late"])
"""


def wait(predicate, *, timeout: float = 120, what: str = ""):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def graded(submission: Submission) -> Submission:
    return wait(lambda: Submission.objects.filter(pk=submission.pk, state="graded").first(),
                what=f"grading of {submission}")


def test_release_open_submit_autograde_gradebook_override_csv_late_and_extension(
        test_hub, start_worker, client, settings):
    instructor = UserFactory(username="prof")
    instructor.user_permissions.add(Permission.objects.get(codename="create_offering"))
    instructor = type(instructor).objects.get(pk=instructor.pk)
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    course = services.course_install(folder=TINY).course
    offering = services.offering_create(course=course, term="Winter", actor=instructor)
    for student in (ada, bob):
        services.enrol_with_code(user=student, code=offering.enrolment_code)
    release = services.release_lecture(offering=offering, lecture=course.lectures.get(),
                                       actor=instructor,
                                       due_at=timezone.now() + timedelta(hours=1))
    start_worker()
    hub = HubClient.from_settings()
    folder = services.workspace_folder(release)
    with test_hub.run():
        # Opening starts the student's server, then copies the lecture into it.
        client.force_login(ada)
        opened = client.get(f"/courses/lectures/{release.pk}/open/")
        assert opened.status_code == 302
        wait(lambda: hub.server_status("ada").running, what="ada's server")
        opened = client.get(f"/courses/lectures/{release.pk}/open/")
        assert opened.status_code == 302
        assert opened["Location"] == (f"{test_hub.url}/user/ada/lab/tree/{folder}/exercise.ipynb")
        copied = nbformat.reads(hub.read_notebook(user="ada", path=f"{folder}/exercise.ipynb",
                                                  server_url=test_hub.url), as_version=4)
        assert copied.metadata["erumlab"]["release"] == release.pk
        assert "square(-4)" not in nbformat.writes(copied)  # no hidden tests, no solutions
        assert "return x * x" not in nbformat.writes(copied)

        # Ada answers in her notebook and submits with one call from it.
        cell = run_in_kernel(f"{test_hub.url}/user/ada/", django_settings.ERUMLAB_HUB_API_TOKEN,
                             ANSWER_AND_SUBMIT.format(path=f"{folder}/exercise.ipynb"),
                             timeout=300)
        assert cell.error == ""
        assert cell.stdout.split() == ["graded", "5.0", "5.0", "False"]
        # Opening again never overwrites her work.
        client.get(f"/courses/lectures/{release.pk}/open/")
        kept = hub.read_notebook(user="ada", path=f"{folder}/exercise.ipynb",
                                 server_url=test_hub.url)
        assert "math.hypot(a, b)" in kept

        # Bob submits the untouched notebook from the portal (from his server).
        client.force_login(bob)
        client.get(f"/courses/lectures/{release.pk}/open/")
        wait(lambda: hub.server_status("bob").running, what="bob's server")
        client.get(f"/courses/lectures/{release.pk}/open/")
        response = client.post(f"/courses/lectures/{release.pk}/submit/")
        assert response.status_code == 302
        first = graded(Submission.objects.get(student=bob))
        assert (first.score, first.late, first.source) == (0, False, "server")

    # After the due date: kept and marked late; an extension makes the next one on time.
    release.due_at = timezone.now() - timedelta(minutes=5)
    release.save()
    content = services.student_files(release)["exercise.ipynb"]
    late = graded(services.submission_create(release=release, student=bob, content=content,
                                             source="upload"))
    assert (late.attempt, late.late) == (2, True)
    client.force_login(instructor)
    response = client.post(f"/courses/lectures/{release.pk}/extend/",
                           {"student": "bob", "reason": "ill",
                            "due_at": (timezone.localtime() + timedelta(days=2))
                            .strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    on_time = graded(services.submission_create(release=release, student=bob, content=content,
                                                source="upload"))
    assert (on_time.attempt, on_time.late) == (3, False)

    # The instructor overrides Bob's score with a reason; gradebook and CSV agree.
    response = client.post(f"/courses/submissions/{on_time.pk}/override/",
                           {"score": "2", "reason": "right idea, wrong function name"})
    assert response.status_code == 302
    page = client.get(f"/courses/{offering.pk}/gradebook/").content.decode()
    assert "ada" in page and "bob" in page
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(
        client.get(f"/courses/{offering.pk}/grades.csv").content.decode()))}
    assert (rows["ada"]["lecture 01 score"], rows["ada"]["lecture 01 late"]) == ("5", "no")
    assert (rows["bob"]["lecture 01 score"], rows["bob"]["total"]) == ("2", "2")
    # Bob sees his score and the reason, not the hidden tests.
    client.force_login(bob)
    body = client.get(f"/courses/submissions/{on_time.pk}/").content.decode()
    assert "right idea, wrong function name" in body and "HIDDEN" not in body
