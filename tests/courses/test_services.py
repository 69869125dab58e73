"""Offerings, people, releases, submissions and grades, with the permission matrix across
two offerings (students see only their own work; teachers only their offerings')."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from erumlab.courses import selectors, services
from erumlab.courses.check import solved
from erumlab.courses.models import Course, Lecture, Role, Submission
from tests.factories import UserFactory

TINY = Path(__file__).parent / "tiny-course"
pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    return services.course_install(folder=TINY).course


def _instructor(name="prof"):
    user = UserFactory(username=name)
    user.user_permissions.add(Permission.objects.get(codename="create_offering"))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def world(course):
    """Two offerings of the course, each with its instructor, tutor and students."""
    people = {}
    offerings = []
    for term in ("A", "B"):
        instructor = _instructor(f"prof{term}")
        offering = services.offering_create(course=course, term=f"Term {term}", actor=instructor)
        tutor, student, student2 = (UserFactory(username=f"{kind}{term}")
                                    for kind in ("tutor", "student", "second"))
        services.member_add(offering=offering, actor=instructor, username=tutor.username,
                            role=Role.TUTOR)
        for s in (student, student2):
            services.enrol_with_code(user=s, code=offering.enrolment_code.lower())
        release = services.release_lecture(offering=offering, lecture=course.lectures.get(),
                                           actor=instructor,
                                           due_at=timezone.now() + timedelta(days=7))
        people[term] = {"instructor": instructor, "tutor": tutor, "student": student,
                        "second": student2, "offering": offering, "release": release}
        offerings.append(offering)
    return people


def _answers(release, *, right=True):
    instructor = nbformat.reads(release.exercise_source, as_version=4)
    released = nbformat.reads(release.exercise_student, as_version=4)
    notebook = solved(instructor, released) if right else released
    return nbformat.writes(notebook)


def _grade_now(submission):
    assert services.submission_claim(submission_id=str(submission.pk),
                                     token=submission.dispatch_token, worker="test") == "run"
    return services.submission_grade(submission_id=str(submission.pk))


def test_install_is_idempotent_and_keeps_released_material(course, world):
    lecture = course.lectures.get()
    assert (lecture.max_points, [t["grade_id"] for t in lecture.tests]) == (
        5, ["square-tests", "hypotenuse-tests"])
    assert "raise NotImplementedError" in lecture.exercise_student
    assert list(lecture.notebooks) == ["lecture.ipynb"] and list(lecture.files) == ["helpers.py"]
    again = services.course_install(folder=TINY)
    assert again.unchanged == [1] and not again.created and not again.updated
    # A changed lecture updates the course, but not what was released already.
    Lecture.objects.filter(pk=lecture.pk).update(content_hash="old", exercise_source="{}")
    assert services.course_install(folder=TINY).updated == [1]
    assert world["A"]["release"].exercise_source != "{}"


def test_bad_material_installs_nothing(tmp_path):
    import shutil

    folder = tmp_path / "course"
    shutil.copytree(TINY, folder)
    (folder / "01-squares" / "exercise.ipynb").write_text("{not json")
    with pytest.raises(services.material.MaterialError, match="not a valid Jupyter notebook"):
        services.course_install(folder=folder)
    assert not Course.objects.exists()


def test_only_instructors_create_offerings(course):
    with pytest.raises(PermissionDenied, match="Only instructors"):
        services.offering_create(course=course, term="X", actor=UserFactory())
    prof = _instructor()
    offering = services.offering_create(course=course, term="Winter", actor=prof)
    assert selectors.role_in(offering, prof) == Role.INSTRUCTOR
    with pytest.raises(ValidationError, match="already has an offering"):
        services.offering_create(course=course, term="Winter", actor=prof)


def test_enrolment_code_and_invitations(world, settings):
    a = world["A"]
    offering = a["offering"]
    with pytest.raises(ValidationError, match="No course has this enrolment code"):
        services.enrol_with_code(user=UserFactory(), code="NOPE")
    offering.enrolment_open = False
    offering.save()
    with pytest.raises(ValidationError, match="closed"):
        services.enrol_with_code(user=UserFactory(), code=offering.enrolment_code)
    # Joining with the code never demotes a teacher.
    offering.enrolment_open = True
    offering.save()
    services.enrol_with_code(user=a["tutor"], code=offering.enrolment_code)
    assert selectors.role_in(offering, a["tutor"]) == Role.TUTOR

    existing = UserFactory(email="known@example.org")
    report = services.invite(offering=offering, actor=a["instructor"],
                             emails="known@example.org, new@example.org\nnot-an-address",
                             accept_url=lambda token: f"https://portal/courses/invitations/{token}/")
    assert report.enrolled == ["known@example.org"] and report.invited == ["new@example.org"]
    assert report.invalid == ["not-an-address"]
    assert selectors.role_in(offering, existing) == Role.STUDENT
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.org"]
    token = mail.outbox[0].body.split("/courses/invitations/")[1].split("/")[0]
    newcomer = UserFactory(email="new@example.org")
    services.invitation_accept(token=token, user=newcomer)
    assert selectors.role_in(offering, newcomer) == Role.STUDENT
    with pytest.raises(ValidationError, match="already been used"):
        services.invitation_accept(token=token, user=UserFactory())
    with pytest.raises(PermissionDenied):
        services.invite(offering=offering, actor=a["tutor"], emails="x@example.org")


def test_the_enrolment_link_joins_as_student(world, client):
    offering = world["A"]["offering"]
    newcomer = UserFactory()
    client.force_login(newcomer)
    link = f"/courses/join/{offering.enrolment_code}/"
    assert offering.course.title in client.get(link).content.decode()
    assert client.post(link).status_code == 302
    assert selectors.role_in(offering, newcomer) == Role.STUDENT
    assert client.get("/courses/join/NOSUCH/").status_code == 404


def test_releases_and_their_dates(world, course):
    a = world["A"]
    with pytest.raises(ValidationError, match="already released"):
        services.release_lecture(offering=a["offering"], lecture=course.lectures.get(),
                                 actor=a["instructor"], due_at=timezone.now() + timedelta(days=1))
    with pytest.raises(PermissionDenied):
        services.release_reschedule(release=a["release"], actor=a["tutor"],
                                    due_at=timezone.now() + timedelta(days=1))
    with pytest.raises(ValidationError, match="after the release"):
        services.release_reschedule(release=a["release"], actor=a["instructor"],
                                    due_at=a["release"].opens_at - timedelta(hours=1))
    # A scheduled release is invisible to students until it opens.
    services.release_reschedule(release=a["release"], actor=a["instructor"],
                                opens_at=timezone.now() + timedelta(days=1),
                                due_at=timezone.now() + timedelta(days=2))
    assert not selectors.releases_visible_to(a["offering"], a["student"]).exists()
    assert selectors.releases_visible_to(a["offering"], a["tutor"]).exists()
    with pytest.raises(ValidationError, match="not released yet"):
        services.submission_create(release=a["release"], student=a["student"],
                                   content=_answers(a["release"]), source="upload")


def test_bad_submissions_are_refused_with_the_reason(world):
    a, b = world["A"], world["B"]
    release = a["release"]
    with pytest.raises(PermissionDenied, match="Only students"):
        services.submission_create(release=release, student=b["student"],
                                   content=_answers(release), source="upload")
    with pytest.raises(PermissionDenied):
        services.submission_create(release=release, student=a["tutor"],
                                   content=_answers(release), source="upload")
    with pytest.raises(ValidationError, match="not a valid Jupyter notebook"):
        services.submission_create(release=release, student=a["student"], content="{oops",
                                   source="upload")
    with pytest.raises(ValidationError, match="not UTF-8"):
        services.submission_create(release=release, student=a["student"], content=b"\xff\xfe",
                                   source="upload")
    other = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    with pytest.raises(ValidationError, match="not the exercise of lecture 1"):
        services.submission_create(release=release, student=a["student"], content=other,
                                   source="upload")
    assert not Submission.objects.exists()


def test_attempts_late_flags_and_extensions(world):
    a = world["A"]
    release, student = a["release"], a["student"]
    first = services.submission_create(release=release, student=student,
                                       content=_answers(release), source="upload")
    assert (first.attempt, first.late, first.state) == (1, False, "queued")
    release.due_at = timezone.now() - timedelta(minutes=1)
    release.save()
    late = services.submission_create(release=release, student=student,
                                      content=_answers(release), source="upload")
    assert (late.attempt, late.late) == (2, True)  # kept and marked, not refused
    with pytest.raises(PermissionDenied):
        services.extension_grant(release=release, student=student, actor=world["B"]["tutor"],
                                 due_at=timezone.now() + timedelta(days=1))
    with pytest.raises(ValidationError, match="after the regular due date"):
        services.extension_grant(release=release, student=student, actor=a["tutor"],
                                 due_at=release.due_at - timedelta(days=1))
    services.extension_grant(release=release, student=student, actor=a["tutor"],
                             due_at=timezone.now() + timedelta(days=1), reason="ill")
    on_time = services.submission_create(release=release, student=student,
                                         content=_answers(release), source="upload")
    assert (on_time.attempt, on_time.late) == (3, False)
    # The extension is for this student only.
    other = services.submission_create(release=release, student=a["second"],
                                       content=_answers(release), source="upload")
    assert other.late


@pytest.mark.django_db(transaction=True)
def test_grading_overrides_gradebook_and_csv(world):
    a = world["A"]
    release = a["release"]
    good = _grade_now(services.submission_create(release=release, student=a["student"],
                                                 content=_answers(release), source="upload"))
    assert (good.state, good.score, good.max_score) == ("graded", 5, 5)
    assert good.graded_notebook and good.graded_html
    poor = _grade_now(services.submission_create(release=release, student=a["second"],
                                                 content=_answers(release, right=False),
                                                 source="upload"))
    assert poor.score == 0 and poor.results[0]["message"] == "NotImplementedError"
    # A stale or repeated message does nothing.
    assert services.submission_claim(submission_id=str(poor.pk), token="stale",
                                     worker="x") == "drop"
    assert services.submission_claim(submission_id=str(poor.pk), token=poor.dispatch_token,
                                     worker="x") == "drop"

    with pytest.raises(ValidationError, match="between 0 and 5"):
        services.score_override(submission=poor, actor=a["tutor"], score=7, reason="why")
    with pytest.raises(ValidationError, match="Say why"):
        services.score_override(submission=poor, actor=a["tutor"], score=1, reason=" ")
    with pytest.raises(PermissionDenied):
        services.score_override(submission=poor, actor=world["B"]["instructor"], score=1,
                                reason="not mine")
    services.score_override(submission=poor, actor=a["tutor"], score=1.5, reason="good idea")
    assert Submission.objects.get(pk=poor.pk).effective_score == 1.5

    book = services.gradebook(offering=a["offering"], actor=a["tutor"])
    totals = {student.username: total for student, _, total in book.rows}
    assert totals == {"studentA": 5, "secondA": 1.5}
    with pytest.raises(PermissionDenied):
        services.gradebook(offering=a["offering"], actor=a["student"])
    rows = list(csv.DictReader(io.StringIO(
        services.grades_csv(offering=a["offering"], actor=a["instructor"]))))
    assert [(r["username"], r["lecture 01 score"], r["lecture 01 late"], r["total"])
            for r in sorted(rows, key=lambda r: r["username"])] == [
        ("secondA", "1.5", "no", "1.5"), ("studentA", "5", "no", "5")]


@pytest.mark.django_db(transaction=True)
def test_a_lost_grading_worker_is_noticed_and_the_submission_graded_again(world, settings):
    a = world["A"]
    submission = services.submission_create(release=a["release"], student=a["student"],
                                            content=_answers(a["release"]), source="upload")
    services.submission_claim(submission_id=str(submission.pk), token=submission.dispatch_token,
                              worker="dies")
    Submission.objects.filter(pk=submission.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.ERUMLAB_JOB_STALE_AFTER + 5))
    report = services.submissions_reconcile()
    assert report.requeued_lost == [str(submission.pk)]
    submission.refresh_from_db()
    assert submission.state == "queued"
    assert _grade_now(submission).score == 5


@pytest.mark.django_db(transaction=True)
def test_permission_matrix_across_two_offerings(world, client):
    a, b = world["A"], world["B"]
    for term in ("A", "B"):
        release = world[term]["release"]
        for who in ("student", "second"):
            services.submission_create(release=release, student=world[term][who],
                                       content=_answers(release), source="upload")
    mine = Submission.objects.get(student=a["student"])
    visible = {
        name: set(selectors.submissions_visible_to(user).values_list("student__username",
                                                                      flat=True))
        for name, user in (("studentA", a["student"]), ("tutorA", a["tutor"]),
                           ("profB", b["instructor"]))}
    assert visible == {"studentA": {"studentA"}, "tutorA": {"studentA", "secondA"},
                       "profB": {"studentB", "secondB"}}
    pages = {
        "offering": f"/courses/{a['offering'].pk}/",
        "gradebook": f"/courses/{a['offering'].pk}/gradebook/",
        "csv": f"/courses/{a['offering'].pk}/grades.csv",
        "release": f"/courses/lectures/{a['release'].pk}/",
        "submission": f"/courses/submissions/{mine.pk}/",
        "graded": f"/courses/submissions/{mine.pk}/graded.html",
    }
    expected = {  # who → page → status (graded.html: 404 until graded, teachers only)
        "studentA": {"offering": 200, "gradebook": 403, "csv": 403, "release": 200,
                     "submission": 200, "graded": 404},
        "secondA": {"offering": 200, "gradebook": 403, "csv": 403, "release": 200,
                    "submission": 404, "graded": 404},
        "tutorA": {"offering": 200, "gradebook": 200, "csv": 200, "release": 200,
                   "submission": 200, "graded": 404},
        "studentB": {"offering": 404, "gradebook": 404, "csv": 404, "release": 404,
                     "submission": 404, "graded": 404},
        "profB": {"offering": 404, "gradebook": 404, "csv": 404, "release": 404,
                  "submission": 404, "graded": 404},
    }
    users = {"studentA": a["student"], "secondA": a["second"], "tutorA": a["tutor"],
             "studentB": b["student"], "profB": b["instructor"]}
    seen = {}
    for name, user in users.items():
        client.force_login(user)
        seen[name] = {page: client.get(url).status_code for page, url in pages.items()}
    assert seen == expected
    # Students never get the graded notebook (it holds the hidden tests), even graded.
    _grade_now(mine)
    client.force_login(a["student"])
    assert client.get(pages["graded"]).status_code == 404
    body = client.get(pages["submission"]).content.decode()
    assert "5</strong> of 5 points" in body and "square(-4)" not in body
    client.force_login(a["tutor"])
    assert "### BEGIN HIDDEN TESTS" in client.get(pages["graded"]).content.decode()


def test_submit_from_a_notebook_through_the_api(world, api_client):
    from erumlab.accounts.services import api_token_issue

    a = world["A"]
    token = api_token_issue(user=a["student"], name="nb").secret
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    files = services.student_files(a["release"])
    exercise = json.loads(files["exercise.ipynb"])
    assert exercise["metadata"]["erumlab"]["release"] == a["release"].pk
    assert services.release_of_notebook(files["exercise.ipynb"]) == a["release"].pk
    response = api_client.post("/api/v1/course-submissions/",
                               {"release": a["release"].pk, "notebook": files["exercise.ipynb"]},
                               format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["attempt"], response.json()["state"]) == (1, "queued")
    # Another offering's release is not there for this student.
    response = api_client.post("/api/v1/course-submissions/",
                               {"release": world["B"]["release"].pk,
                                "notebook": files["exercise.ipynb"]}, format="json")
    assert response.status_code == 404
    listed = api_client.get("/api/v1/course-submissions/").json()["results"]
    assert [s["student"] for s in listed] == ["studentA"]
    api_client.credentials()
    assert api_client.get("/api/v1/course-submissions/").status_code in (401, 403)
