"""Courses, their offerings, releases of lectures, submissions and grades."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


def _code() -> str:
    # No look-alike characters: codes are read out in lecture halls.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


def _token() -> str:
    return secrets.token_urlsafe(24)


class Course(models.Model):
    """Course material installed from a folder under courses/ (see courses/AUTHORING.md)."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    installed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Lecture(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lectures")
    number = models.PositiveSmallIntegerField()
    slug = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    # What a release copies: the lecture notebooks (outputs cleared), the
    # instructor's exercise, the student version generated from it, helper files.
    notebooks = models.JSONField(default=dict, help_text="Lecture notebooks: name → JSON text.")
    files = models.JSONField(default=dict, help_text="Helper files: name → text.")
    exercise_name = models.CharField(max_length=100, default="exercise.ipynb")
    exercise_source = models.TextField(help_text="The instructor's version (solutions, tests).")
    exercise_student = models.TextField(help_text="The student version generated from it.")
    tests = models.JSONField(default=list, help_text="Autograded tests: grade_id and points.")
    max_points = models.FloatField(default=0)
    content_hash = models.CharField(max_length=64)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["course", "number"]
        constraints = [models.UniqueConstraint(fields=["course", "number"],
                                               name="unique_lecture_number")]

    def __str__(self) -> str:
        return f"{self.number}. {self.title}"


class Offering(models.Model):
    """A course given in one term, with its own people, releases and grades."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="offerings")
    term = models.CharField(max_length=100, help_text="e.g. 'Winter 2026/27'")
    enrolment_code = models.CharField(max_length=16, unique=True, default=_code)
    enrolment_open = models.BooleanField(
        default=True, help_text="Students may join with the enrolment code.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["course", "term"],
                                               name="unique_offering_term")]
        permissions = [("create_offering", "Can create course offerings (be an instructor)")]

    def __str__(self) -> str:
        return f"{self.course.title} ({self.term})"


class Role(models.TextChoices):
    INSTRUCTOR = "instructor", "Instructor"
    TUTOR = "tutor", "Tutor"
    STUDENT = "student", "Student"


class Member(models.Model):
    offering = models.ForeignKey(Offering, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="course_memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["role", "user__username"]
        constraints = [models.UniqueConstraint(fields=["offering", "user"],
                                               name="unique_course_member")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.offering}"


class Invitation(models.Model):
    """An invitation by e-mail for someone without an account yet (or not logged in)."""

    offering = models.ForeignKey(Offering, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STUDENT)
    token = models.CharField(max_length=64, unique=True, default=_token)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["offering", "email"],
                                               name="unique_invitation")]

    def __str__(self) -> str:
        return f"{self.email} ({self.role}) to {self.offering}"


class Release(models.Model):
    """A lecture opened to an offering's students, frozen as it was released."""

    offering = models.ForeignKey(Offering, on_delete=models.CASCADE, related_name="releases")
    lecture = models.ForeignKey(Lecture, on_delete=models.PROTECT, related_name="releases")
    opens_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # The material as released: later changes to the course do not alter a running exercise.
    notebooks = models.JSONField(default=dict)
    files = models.JSONField(default=dict)
    exercise_name = models.CharField(max_length=100)
    exercise_source = models.TextField()
    exercise_student = models.TextField()
    tests = models.JSONField(default=list)
    max_points = models.FloatField()
    time_limit = models.PositiveIntegerField(help_text="Seconds the grader gives one submission.")

    class Meta:
        ordering = ["lecture__number"]
        constraints = [models.UniqueConstraint(fields=["offering", "lecture"],
                                               name="unique_release")]

    def __str__(self) -> str:
        return f"{self.lecture} in {self.offering}"

    @property
    def is_open(self) -> bool:
        return self.opens_at <= timezone.now()


class Extension(models.Model):
    """A later deadline for one student."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="+")
    due_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "student"],
                                               name="unique_extension")]

    def __str__(self) -> str:
        return f"{self.student} until {self.due_at:%Y-%m-%d %H:%M}"


class Submission(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for the grader"
        GRADING = "grading", "Being graded"
        GRADED = "graded", "Graded"
        FAILED = "failed", "Could not be graded"

    class Source(models.TextChoices):
        SERVER = "server", "From the notebook server"
        UPLOAD = "upload", "Uploaded"
        API = "api", "From a notebook (API)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="submissions")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="course_submissions")
    attempt = models.PositiveSmallIntegerField()
    notebook = models.TextField(help_text="The notebook as submitted.")
    source = models.CharField(max_length=20, choices=Source.choices)
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    due_at = models.DateTimeField(help_text="The deadline in force when it was submitted.")
    late = models.BooleanField(default=False)

    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED,
                             db_index=True)
    outcome = models.CharField(max_length=20, blank=True,
                               help_text="graded, timeout or crashed: how the run ended.")
    score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(default=0)
    results = models.JSONField(default=list, help_text="Per test: points, max, message.")
    tampered = models.JSONField(default=list)
    message = models.TextField(blank=True)
    graded_notebook = models.CharField(max_length=300, blank=True, help_text="Storage key.")
    graded_html = models.CharField(max_length=300, blank=True, help_text="Storage key.")
    wall_seconds = models.FloatField(null=True, blank=True)
    graded_at = models.DateTimeField(null=True, blank=True)

    dispatch_token = models.CharField(max_length=64, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    grading_attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [models.UniqueConstraint(fields=["release", "student", "attempt"],
                                               name="unique_submission_attempt")]
        indexes = [models.Index(fields=["release", "student"])]

    def __str__(self) -> str:
        return f"{self.student} · {self.release.lecture} · attempt {self.attempt}"

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    def current_override(self) -> ScoreOverride | None:
        # .all() uses a prefetch when the caller made one (gradebook): newest first by Meta.
        overrides = list(self.overrides.all())
        return overrides[0] if overrides else None

    @property
    def effective_score(self) -> float | None:
        override = self.current_override()
        return override.score if override is not None else self.score


class ScoreOverride(models.Model):
    """A score set by hand; the newest counts, the older ones stay as history."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="overrides")
    score = models.FloatField()
    reason = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                               related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.score:g} ({self.reason[:40]})"
