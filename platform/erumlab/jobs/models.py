"""Notebook templates and the batch jobs that run them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Template(models.Model):
    """A notebook with a typed parameters cell, runnable as a job."""

    class Source(models.TextChoices):
        BUNDLED = "bundled", "Bundled with erumlab"
        UPLOADED = "uploaded", "Uploaded"
        SERVER = "server", "From a notebook server"

    slug = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="job_templates", help_text="Empty for bundled templates.",
    )
    notebook = models.TextField(help_text="The notebook (nbformat JSON).")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the notebook.")
    parameters = models.JSONField(
        default=list, help_text="Declared parameters: name, type, default, help."
    )
    default_queue = models.CharField(max_length=20, default="default")
    wall_time_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds; empty for the site default."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug"], condition=models.Q(owner__isnull=True),
                name="unique_bundled_template_slug",
            ),
            models.UniqueConstraint(
                fields=["owner", "slug"], condition=models.Q(owner__isnull=False),
                name="unique_user_template_slug",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Job(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    collaboration = models.ForeignKey(
        "accounts.Collaboration", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="jobs", help_text="Shared with this collaboration's members.",
    )
    template = models.ForeignKey(
        Template, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    template_title = models.CharField(max_length=200)
    template_hash = models.CharField(max_length=64)
    input_notebook = models.TextField(help_text="The template as it was when submitted.")
    parameters = models.JSONField(default=dict)
    queue = models.CharField(max_length=20, default="default")
    wall_time_limit = models.PositiveIntegerField(help_text="Seconds.")
    cloned_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones"
    )

    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED,
                             db_index=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Every dispatch gets a fresh token; a message carrying an older one is stale and dropped.
    dispatch_token = models.CharField(max_length=64, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    cells_total = models.PositiveIntegerField(default=0)
    cells_done = models.PositiveIntegerField(default=0)
    current_cell = models.CharField(max_length=200, blank=True)
    log = models.TextField(blank=True)

    output_notebook = models.CharField(max_length=300, blank=True, help_text="Storage key.")
    output_html = models.CharField(max_length=300, blank=True, help_text="Storage key.")
    error = models.JSONField(
        null=True, blank=True, help_text="Failing cell, exception name and value, traceback."
    )
    message = models.TextField(blank=True, help_text="Why the job ended as it did.")
    wall_seconds = models.FloatField(null=True, blank=True)
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    api_token = models.OneToOneField(
        "accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="job", help_text="The short-lived token the running notebook uses.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "state"])]

    def __str__(self) -> str:
        return f"{self.template_title} ({self.short_id})"

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL

    @property
    def progress_percent(self) -> int:
        if self.state == self.State.SUCCEEDED:
            return 100
        if not self.cells_total:
            return 0
        return min(100, round(100 * self.cells_done / self.cells_total))


class Artifact(models.Model):
    """A file the job wrote into its working directory."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    # As the notebook named it, relative to its working directory: shown, never used as a path.
    name = models.CharField(max_length=500)
    storage_key = models.CharField(max_length=300, unique=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
