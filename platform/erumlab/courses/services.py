"""Writes for courses: install, offerings and people, releases, submissions, grading.

Grading follows the jobs' rules: the database is the truth; a Celery message
only says "grade submission X with dispatch token T"; the task claims the
submission atomically and drops stale messages, and the reconciler sends
again whatever may have been lost. A submission is stored before anything
else happens, so nothing a student hands in is lost.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import slugify

from erumlab.accounts.models import User
from erumlab.core.dispatch import ReconcileReport, reconcile
from erumlab.courses import material, selectors
from erumlab.courses.models import (
    Course,
    Extension,
    Invitation,
    Lecture,
    Member,
    Offering,
    Release,
    Role,
    ScoreOverride,
    Submission,
)

log = logging.getLogger(__name__)


# Installing course material ---------------------------------------------------------------


@dataclass
class InstallReport:
    course: Course
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


def _lecture_fields(spec: material.LectureSpec) -> dict[str, Any]:
    notebooks, digest = {}, hashlib.sha256()
    for name in spec.notebooks:
        text = spec.path(name).read_text()
        digest.update(name.encode() + b"\0" + text.encode())
        if name != spec.exercise:
            notebook = material.read_notebook(text, what=str(spec.path(name)))
            notebooks[name] = nbformat.writes(material.clean_copy(notebook))
    files = {}
    for path in sorted(spec.folder.glob("*.py")):
        files[path.name] = path.read_text()
        digest.update(path.name.encode() + b"\0" + files[path.name].encode())
    instructor = material.read_notebook(spec.path(spec.exercise).read_text(),
                                        what=str(spec.path(spec.exercise)))
    try:
        student = material.student_version(instructor)
    except material.MaterialError as exc:
        raise material.MaterialError(f"lecture {spec.number} ({spec.slug}): {exc}") from None
    tests = [{"grade_id": t.grade_id, "points": t.points} for t in material.tests_of(instructor)]
    return {
        "slug": spec.slug, "title": spec.title, "notebooks": notebooks, "files": files,
        "exercise_name": spec.exercise, "exercise_source": nbformat.writes(instructor),
        "exercise_student": nbformat.writes(student), "tests": tests,
        "max_points": sum(t["points"] for t in tests), "content_hash": digest.hexdigest(),
        "is_active": True,
    }


def course_install(*, folder: Path) -> InstallReport:
    """Load (or update) a course from its folder; all lectures or none.

    Releases already made keep the material they were released with.
    """
    spec = material.load_course(folder)
    prepared = {lecture.number: _lecture_fields(lecture) for lecture in spec.lectures}
    with transaction.atomic():
        course, _ = Course.objects.update_or_create(
            slug=spec.slug, defaults={"title": spec.title, "description": spec.description,
                                      "installed_at": timezone.now()})
        report = InstallReport(course)
        for number, fields in prepared.items():
            lecture = Lecture.objects.filter(course=course, number=number).first()
            if lecture is None:
                Lecture.objects.create(course=course, number=number, **fields)
                report.created.append(number)
            elif lecture.content_hash != fields["content_hash"] or not lecture.is_active:
                for name, value in fields.items():
                    setattr(lecture, name, value)
                lecture.save()
                report.updated.append(number)
            else:
                report.unchanged.append(number)
        course.lectures.exclude(number__in=list(prepared)).update(is_active=False)
    return report


def courses_install_all(*, root: Path) -> list[InstallReport]:
    return [course_install(folder=spec.folder) for spec in material.find_courses(root)]


# Offerings and people -----------------------------------------------------------------


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


@transaction.atomic
def offering_create(*, course: Course, term: str, actor: User) -> Offering:
    _require(selectors.can_create_offerings(actor),
             "Only instructors can create offerings (ask an administrator for the permission "
             "'Can create course offerings').")
    term = term.strip()
    if not term:
        raise ValidationError({"term": "Name the term, e.g. 'Winter 2026/27'."})
    if Offering.objects.filter(course=course, term=term).exists():
        raise ValidationError({"term": f"{course.title} already has an offering for {term}."})
    offering = Offering.objects.create(course=course, term=term, created_by=actor)
    Member.objects.create(offering=offering, user=actor, role=Role.INSTRUCTOR)
    return offering


def _set_member(offering: Offering, user: User, role: str) -> Member:
    member, created = Member.objects.get_or_create(offering=offering, user=user,
                                                   defaults={"role": role})
    # Joining never demotes: an instructor who uses the student code stays instructor.
    rank = {Role.STUDENT: 0, Role.TUTOR: 1, Role.INSTRUCTOR: 2}
    if not created and rank[Role(role)] > rank[Role(member.role)]:
        member.role = role
        member.save(update_fields=["role"])
    return member


@transaction.atomic
def member_add(*, offering: Offering, actor: User, username: str, role: str) -> Member:
    _require(selectors.can_instruct(offering, actor), "Only instructors can add people.")
    if role not in Role.values:
        raise ValidationError({"role": f"unknown role {role!r}"})
    user = User.objects.filter(username=username.strip()).first()
    if user is None:
        raise ValidationError({"username": f"No user named {username.strip()!r}; invite them "
                                           f"by e-mail instead."})
    member = Member.objects.filter(offering=offering, user=user).first()
    if member is not None:
        member.role = role  # an instructor may set any role explicitly
        member.save(update_fields=["role"])
        return member
    return Member.objects.create(offering=offering, user=user, role=role)


@transaction.atomic
def member_remove(*, offering: Offering, actor: User, user: User) -> None:
    _require(selectors.can_instruct(offering, actor), "Only instructors can remove people.")
    member = Member.objects.filter(offering=offering, user=user).first()
    if member is None:
        return
    if member.role == Role.INSTRUCTOR and not offering.members.filter(
            role=Role.INSTRUCTOR).exclude(pk=member.pk).exists():
        raise ValidationError("An offering keeps at least one instructor.")
    member.delete()  # their submissions stay: grades are records


@dataclass
class InviteReport:
    enrolled: list[str] = field(default_factory=list)
    invited: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def invite(*, offering: Offering, actor: User, emails: str, role: str = Role.STUDENT,
           accept_url: Any = None) -> InviteReport:
    """Enrol the people with accounts at once; send the others a link.

    ``accept_url(token)`` makes the link (the view knows the site's address).
    """
    _require(selectors.can_instruct(offering, actor), "Only instructors can invite people.")
    if role not in Role.values:
        raise ValidationError({"role": f"unknown role {role!r}"})
    report = InviteReport()
    to_send: list[Invitation] = []
    with transaction.atomic():
        for raw in re.split(r"[\s,;]+", emails):
            email = raw.strip().lower()
            if not email:
                continue
            if not EMAIL.match(email):
                report.invalid.append(raw.strip())
                continue
            user = User.objects.filter(email__iexact=email).first()
            if user is not None:
                _set_member(offering, user, role)
                report.enrolled.append(email)
                continue
            invitation, _ = Invitation.objects.update_or_create(
                offering=offering, email=email,
                defaults={"role": role, "invited_by": actor, "accepted_at": None})
            to_send.append(invitation)
            report.invited.append(email)
    for invitation in to_send:
        link = accept_url(invitation.token) if accept_url else invitation.token
        try:
            send_mail(
                subject=f"Invitation: {offering}",
                message=(f"{actor.get_full_name() or actor.username} invites you to {offering} "
                         f"on erumlab as {invitation.get_role_display().lower()}.\n\n"
                         f"Accept (sign up or log in first): {link}\n"),
                from_email=None, recipient_list=[invitation.email])
        except Exception:  # the invitation stands; the instructor can resend
            log.warning("could not send the invitation to %s", invitation.email, exc_info=True)
    return report


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Member:
    invitation = Invitation.objects.select_for_update().filter(token=token).first()
    if invitation is None:
        raise ValidationError("This invitation link is not valid (it may have been replaced).")
    if invitation.accepted_at and invitation.accepted_by_id != user.pk:
        raise ValidationError("This invitation has already been used by someone else.")
    member = _set_member(invitation.offering, user, invitation.role)
    invitation.accepted_by, invitation.accepted_at = user, timezone.now()
    invitation.save(update_fields=["accepted_by", "accepted_at"])
    return member


@transaction.atomic
def enrol_with_code(*, user: User, code: str) -> Member:
    offering = Offering.objects.filter(enrolment_code=code.strip().upper()).first()
    if offering is None:
        raise ValidationError({"code": "No course has this enrolment code."})
    if not offering.enrolment_open:
        raise ValidationError({"code": f"Enrolment in {offering} is closed; ask an instructor."})
    return _set_member(offering, user, Role.STUDENT)


# Releases and deadlines -------------------------------------------------------------------


@transaction.atomic
def release_lecture(*, offering: Offering, lecture: Lecture, actor: User, due_at: datetime,
                    opens_at: datetime | None = None) -> Release:
    _require(selectors.can_instruct(offering, actor), "Only instructors can release lectures.")
    if lecture.course_id != offering.course_id or not lecture.is_active:
        raise ValidationError({"lecture": "This lecture is not part of the offering's course."})
    opens_at = opens_at or timezone.now()
    if due_at <= opens_at:
        raise ValidationError({"due_at": "The due date must come after the release."})
    if Release.objects.filter(offering=offering, lecture=lecture).exists():
        raise ValidationError({"lecture": f"Lecture {lecture.number} is already released; "
                                          f"change its dates instead."})
    return Release.objects.create(
        offering=offering, lecture=lecture, opens_at=opens_at, due_at=due_at, released_by=actor,
        notebooks=lecture.notebooks, files=lecture.files, exercise_name=lecture.exercise_name,
        exercise_source=lecture.exercise_source, exercise_student=lecture.exercise_student,
        tests=lecture.tests, max_points=lecture.max_points,
        time_limit=settings.ERUMLAB_GRADING_TIME_LIMIT)


@transaction.atomic
def release_reschedule(*, release: Release, actor: User, due_at: datetime,
                       opens_at: datetime | None = None) -> Release:
    _require(selectors.can_instruct(release.offering, actor),
             "Only instructors can change release dates.")
    opens_at = opens_at or release.opens_at
    if due_at <= opens_at:
        raise ValidationError({"due_at": "The due date must come after the release."})
    release.opens_at, release.due_at = opens_at, due_at
    release.save(update_fields=["opens_at", "due_at"])
    return release


def due_for(release: Release, student: User) -> datetime:
    extension = Extension.objects.filter(release=release, student=student).first()
    return max(release.due_at, extension.due_at) if extension else release.due_at


@transaction.atomic
def extension_grant(*, release: Release, student: User, due_at: datetime, actor: User,
                    reason: str = "") -> Extension:
    _require(selectors.can_teach(release.offering, actor),
             "Only the offering's instructors and tutors can extend deadlines.")
    if selectors.role_in(release.offering, student) != Role.STUDENT:
        raise ValidationError({"student": f"{student.username} is not a student of "
                                          f"{release.offering}."})
    if due_at <= release.due_at:
        raise ValidationError({"due_at": "An extension must end after the regular due date "
                                         f"({release.due_at:%Y-%m-%d %H:%M})."})
    extension, _ = Extension.objects.update_or_create(
        release=release, student=student,
        defaults={"due_at": due_at, "reason": reason.strip()[:300], "granted_by": actor,
                  "granted_at": timezone.now()})
    return extension


# Submissions ----------------------------------------------------------------------


def _check_matches(release: Release, notebook: nbformat.NotebookNode) -> None:
    expected = {test["grade_id"] for test in release.tests}
    answers = {material.grade_id(cell) for cell in nbformat.reads(
        release.exercise_student, as_version=4).cells if material.is_solution(cell)}
    present = {material.grade_id(cell) for cell in notebook.cells}
    if not (expected | answers) & present:
        raise ValidationError({"notebook": f"This notebook is not the exercise of lecture "
                                           f"{release.lecture.number} ({release.lecture.title}): "
                                           f"none of its cells are there."})


def submission_create(*, release: Release, student: User, content: str | bytes,
                      source: str) -> Submission:
    """Store a student's notebook and queue its grading (once the record is committed)."""
    offering = release.offering
    if selectors.role_in(offering, student) != Role.STUDENT:
        raise PermissionDenied(f"Only students of {offering} can submit.")
    if not release.is_open:
        raise ValidationError(f"Lecture {release.lecture.number} is not released yet.")
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError({"notebook": "The notebook is not UTF-8 text."}) from None
    try:
        notebook = material.read_notebook(content, what="The submitted notebook")
    except material.MaterialError as exc:
        raise ValidationError({"notebook": str(exc)}) from None
    _check_matches(release, notebook)
    now = timezone.now()
    with transaction.atomic():
        # One student at a time numbers their attempts: lock the student's row.
        User.objects.select_for_update().filter(pk=student.pk).first()
        last = (Submission.objects.filter(release=release, student=student)
                .order_by("-attempt").values_list("attempt", flat=True).first()) or 0
        due = due_for(release, student)
        submission = Submission.objects.create(
            release=release, student=student, attempt=last + 1, notebook=content,
            source=source, submitted_at=now, due_at=due, late=now > due,
            max_score=release.max_points)
        _dispatch(submission)
    return submission


@transaction.atomic
def submission_regrade(*, submission: Submission, actor: User) -> Submission:
    _require(selectors.can_teach(submission.release.offering, actor),
             "Only the offering's instructors and tutors can grade again.")
    submission = Submission.objects.select_for_update().get(pk=submission.pk)
    if submission.state in (Submission.State.QUEUED, Submission.State.GRADING):
        raise ValidationError("This submission is being graded already.")
    submission.state = Submission.State.QUEUED
    submission.grading_attempts = 0
    submission.save(update_fields=["state", "grading_attempts"])
    _dispatch(submission)
    return submission


@transaction.atomic
def score_override(*, submission: Submission, actor: User, score: float,
                   reason: str) -> ScoreOverride:
    _require(selectors.can_teach(submission.release.offering, actor),
             "Only the offering's instructors and tutors can change scores.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why the score changes; the student sees it."})
    if not 0 <= score <= submission.max_score:
        raise ValidationError({"score": f"The score must lie between 0 and "
                                        f"{submission.max_score:g}."})
    return ScoreOverride.objects.create(submission=submission, score=score,
                                        reason=reason.strip(), author=actor)


# Grading (dispatch, claim, run, reconcile) ---------------------------------------------


class Claim:
    RUN = "run"
    DROP = "drop"


def _marker(submission_id: uuid.UUID | str) -> str:
    return f"courses:dispatched:{submission_id}"


def _send(submission_id: str, token: str) -> None:
    from erumlab.courses.tasks import grade_submission

    try:
        cache.set(_marker(submission_id), token, timeout=None)
        grade_submission.apply_async(args=[submission_id, token],
                                     queue=settings.ERUMLAB_GRADING_QUEUE, task_id=token)
    except Exception:  # the broker is down: the submission waits for the reconciler
        log.warning("could not queue grading of %s now; the reconciler will", submission_id,
                    exc_info=True)


def _dispatch(submission: Submission) -> None:
    token = uuid.uuid4().hex
    submission.dispatch_token, submission.dispatched_at = token, timezone.now()
    Submission.objects.filter(pk=submission.pk).update(
        dispatch_token=token, dispatched_at=submission.dispatched_at)
    submission_id = str(submission.pk)
    transaction.on_commit(lambda: _send(submission_id, token))


def _stale(submission: Submission, now: datetime) -> bool:
    limit = timedelta(seconds=settings.ERUMLAB_JOB_STALE_AFTER)
    return submission.heartbeat_at is None or now - submission.heartbeat_at > limit


def submission_claim(*, submission_id: str, token: str, worker: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None or submission.dispatch_token != token:
            return Claim.DROP
        if submission.state in (Submission.State.GRADED, Submission.State.FAILED):
            return Claim.DROP
        if submission.state == Submission.State.GRADING and not _stale(submission, now):
            return Claim.DROP  # another worker has it
        if submission.grading_attempts >= settings.ERUMLAB_JOB_MAX_ATTEMPTS:
            _fail(submission, f"The grader's worker was lost {submission.grading_attempts} "
                              f"times while grading this notebook; an instructor can grade it "
                              f"again.")
            return Claim.DROP
        submission.state = Submission.State.GRADING
        submission.grading_attempts += 1
        submission.worker = worker
        submission.heartbeat_at = now
        submission.save(update_fields=["state", "grading_attempts", "worker", "heartbeat_at"])
    cache.delete(_marker(submission_id))
    return Claim.RUN


def _fail(submission: Submission, message: str) -> None:
    submission.state = Submission.State.FAILED
    submission.message = message
    submission.graded_at = timezone.now()
    submission.save(update_fields=["state", "message", "graded_at"])


class _Heartbeat:
    """Keeps the claim fresh while the grader runs (the watcher polls about once a second)."""

    def __init__(self, submission: Submission) -> None:
        self.submission_id = submission.pk
        self.every = settings.ERUMLAB_JOB_HEARTBEAT_SECONDS
        self.last = 0.0

    def cell_started(self, index: int, total: int, description: str) -> None: ...

    def cell_finished(self, index: int, total: int) -> None: ...

    def stop_reason(self) -> str | None:
        import time

        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            try:
                Submission.objects.filter(pk=self.submission_id).update(
                    heartbeat_at=timezone.now())
            except DatabaseError:  # a missed beat is harmless; the next one may pass
                log.warning("grading heartbeat of %s not written", self.submission_id,
                            exc_info=True)
        return None

    def close(self) -> None:
        from django.db import connection

        connection.close()  # the watcher thread's own connection


def submission_grade(*, submission_id: str) -> Submission:
    """Run the grader on a claimed submission and record the result. Never leaves it grading."""
    from erumlab.courses import grading
    from erumlab.jobs.execution import base_kernel_env

    submission = Submission.objects.select_related("release").get(pk=submission_id)
    release = submission.release
    folder = Path(settings.ERUMLAB_JOB_SCRATCH) / f"grade-{submission.pk}"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        report = grading.grade(
            instructor=nbformat.reads(release.exercise_source, as_version=4),
            released=nbformat.reads(release.exercise_student, as_version=4),
            submitted=nbformat.reads(submission.notebook, as_version=4),
            time_limit=release.time_limit, kernel_env=base_kernel_env(folder / "home"),
            workdir=folder, observer=_Heartbeat(submission),
            files={name: text.encode() for name, text in release.files.items()})
        return _record(submission, report)
    except Exception as exc:
        log.exception("grading of submission %s failed inside erumlab", submission.pk)
        _fail(submission, f"erumlab could not grade this notebook: {type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _record(submission: Submission, report: Any) -> Submission:
    base = f"courses/submissions/{submission.pk}"
    notebook_key = html_key = ""
    if report.notebook is not None:
        text = nbformat.writes(report.notebook)
        notebook_key = default_storage.save(f"{base}/graded.ipynb", ContentFile(text.encode()))
        try:
            from erumlab.jobs.execution import render_html  # papermill: workers only

            html_key = default_storage.save(f"{base}/graded.html",
                                            ContentFile(render_html(report.notebook).encode()))
        except Exception:
            log.warning("could not render submission %s", submission.pk, exc_info=True)
    with transaction.atomic():
        current = Submission.objects.select_for_update().get(pk=submission.pk)
        current.state = Submission.State.GRADED
        current.outcome = report.outcome
        current.score = report.score
        current.max_score = report.max_score
        current.results = [result.as_dict() for result in report.results]
        current.tampered = report.tampered
        current.message = report.message
        current.graded_notebook = notebook_key
        current.graded_html = html_key
        current.wall_seconds = report.wall_seconds
        current.graded_at = timezone.now()
        current.save()
    return current


def submissions_reconcile() -> ReconcileReport:
    """Grading whose worker died goes back to the queue; lost or overdue messages are resent."""
    return reconcile(
        Submission, running=Submission.State.GRADING, queued=Submission.State.QUEUED,
        marker=_marker, dispatch=_dispatch, is_stale=_stale,
        stale_after=timedelta(seconds=settings.ERUMLAB_JOB_STALE_AFTER),
        overdue_after=timedelta(seconds=settings.ERUMLAB_JOB_REDISPATCH_AFTER))


# Gradebook --------------------------------------------------------------------------


@dataclass
class Cell:
    submission: Submission | None
    score: float | None
    late: bool
    extended: datetime | None


@dataclass
class Gradebook:
    offering: Offering
    releases: list[Release]
    rows: list[tuple[User, list[Cell], float]]


def gradebook(*, offering: Offering, actor: User) -> Gradebook:
    """Per student and released exercise: the newest submission counts (an override wins)."""
    _require(selectors.can_teach(offering, actor),
             "Only the offering's instructors and tutors see the gradebook.")
    releases = list(offering.releases.select_related("lecture").order_by("lecture__number"))
    students = list(User.objects.filter(course_memberships__offering=offering,
                                        course_memberships__role=Role.STUDENT)
                    .order_by("last_name", "first_name", "username"))
    newest: dict[tuple[int, int], Submission] = {}
    for submission in (Submission.objects.filter(release__offering=offering)
                       .prefetch_related("overrides").order_by("attempt")):
        newest[(submission.release_id, submission.student_id)] = submission
    extensions = {(e.release_id, e.student_id): e.due_at
                  for e in Extension.objects.filter(release__offering=offering)}
    rows = []
    for student in students:
        cells, total = [], 0.0
        for release in releases:
            submission = newest.get((release.pk, student.pk))
            score = submission.effective_score if submission else None
            total += score or 0.0
            cells.append(Cell(submission, score, bool(submission and submission.late),
                              extensions.get((release.pk, student.pk))))
        rows.append((student, cells, total))
    return Gradebook(offering, releases, rows)


def grades_csv(*, offering: Offering, actor: User) -> str:
    book = gradebook(offering=offering, actor=actor)
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["username", "name", "email"]
    for release in book.releases:
        number = release.lecture.number
        header += [f"lecture {number:02d} score", f"lecture {number:02d} late"]
    header += ["total", "max total"]
    writer.writerow(header)
    max_total = sum(release.max_points for release in book.releases)
    for student, cells, total in book.rows:
        row = [student.username, student.get_full_name(), student.email]
        for cell in cells:
            row += ["" if cell.score is None else f"{cell.score:g}",
                    "yes" if cell.late else ("" if cell.submission is None else "no")]
        row += [f"{total:g}", f"{max_total:g}"]
        writer.writerow(row)
    return out.getvalue()


# The student's notebook server --------------------------------------------------------------


def workspace_folder(release: Release) -> str:
    """Where a release's notebooks live in the student's home: courses/<offering>/<lecture>."""
    offering = release.offering
    return (f"courses/{slugify(offering.course.slug)}-{slugify(offering.term)}/"
            f"{release.lecture.slug}")


def student_files(release: Release) -> dict[str, str]:
    """The files a student gets: lecture notebooks, helpers, and the student exercise."""
    exercise = nbformat.reads(release.exercise_student, as_version=4)
    exercise.metadata["erumlab"] = {"release": release.pk, "offering": release.offering_id,
                                    "lecture": release.lecture.number}
    files = dict(release.notebooks)
    files.update(release.files)
    files[release.exercise_name] = nbformat.writes(exercise)
    return files


def lecture_open(*, release: Release, user: User) -> str:
    """Copy the release into the user's running server (never over their work); a lab path."""
    from erumlab.sessions.hub import HubClient

    if release not in selectors.releases_visible_to(release.offering, user):
        raise PermissionDenied("This lecture is not released to you.")
    folder = workspace_folder(release)
    hub = HubClient.from_settings()
    for name, text in student_files(release).items():
        hub.put_file(user=user.username, path=f"{folder}/{name}", text=text,
                     server_url=settings.ERUMLAB_HUB_PROXY_URL, overwrite=False)
    return f"{folder}/{release.exercise_name}"


def submission_from_server(*, release: Release, student: User) -> Submission:
    from erumlab.sessions.hub import HubClient

    path = f"{workspace_folder(release)}/{release.exercise_name}"
    try:
        content = HubClient.from_settings().read_notebook(
            user=student.username, path=path, server_url=settings.ERUMLAB_HUB_PROXY_URL)
    except FileNotFoundError:
        raise ValidationError(f"Your server has no {path}; open the lecture first.") from None
    return submission_create(release=release, student=student, content=content,
                             source=Submission.Source.SERVER)


def release_of_notebook(content: str | bytes) -> int | None:
    """The release a student notebook came from (its erumlab metadata), if it says."""
    try:
        data = json.loads(content)
        return int(data.get("metadata", {}).get("erumlab", {}).get("release"))
    except (ValueError, TypeError, AttributeError):
        return None
