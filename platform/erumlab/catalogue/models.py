"""The dataset catalogue: datasets, immutable published versions, their files."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from erumlab.core.visibility import Visibility  # noqa: F401 (re-exported)


class DataLevel(models.TextChoices):
    RAW = "raw", "Raw"
    CALIBRATED = "calibrated", "Calibrated"
    RECONSTRUCTED = "reconstructed", "Reconstructed"
    HIGH_LEVEL = "high-level", "High-level"
    SIMULATED = "simulated", "Simulated"


LICENCES = [
    ("CC-BY-4.0", "Creative Commons Attribution 4.0"),
    ("CC0-1.0", "CC0 1.0 (public domain dedication)"),
    ("CC-BY-SA-4.0", "Creative Commons Attribution-ShareAlike 4.0"),
    ("CC-BY-NC-4.0", "Creative Commons Attribution-NonCommercial 4.0"),
    ("ODbL-1.0", "Open Data Commons Open Database License 1.0"),
    ("LicenseRef-collaboration-internal", "Collaboration-internal use only"),
]


class Dataset(models.Model):
    slug = models.SlugField(max_length=100, unique=True,
                            validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$")])
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="datasets")
    collaboration = models.ForeignKey("accounts.Collaboration", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="datasets")
    visibility = models.CharField(max_length=20, choices=Visibility.choices,
                                  default=Visibility.PRIVATE)
    experiment = models.CharField(max_length=100, blank=True,
                                  help_text="e.g. CMS, IceCube, Pierre Auger, toy MC")
    data_level = models.CharField(max_length=20, choices=DataLevel.choices,
                                  default=DataLevel.SIMULATED)
    licence = models.CharField(max_length=60, choices=LICENCES, default="CC-BY-4.0")
    keywords = models.JSONField(default=list, blank=True)
    # Title, description, keywords, experiment and creators in one text: what search reads.
    search_document = models.TextField(blank=True, editable=False)
    # Its parsed form for PostgreSQL's full-text search (GIN-indexed; unused on SQLite).
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["visibility"]), models.Index(fields=["experiment"])]

    def __str__(self) -> str:
        return self.title


class DatasetVersion(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    changelog = models.TextField(blank=True)
    creators = models.JSONField(
        default=list, blank=True,
        help_text='[{"name": "Family, Given", "orcid": "0000-...", "affiliation": "..."}]',
    )
    identifier = models.CharField(max_length=200, unique=True, null=True, blank=True,
                                  help_text="Persistent identifier, given at publication.")
    # What a citation says, frozen at publication so it never changes afterwards.
    citation = models.JSONField(default=dict, blank=True)
    derived_from = models.ManyToManyField("self", symmetrical=False, blank=True,
                                          related_name="derivatives")
    produced_by = models.ForeignKey("jobs.Job", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="dataset_versions")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"],
                                               name="one_number_per_dataset")]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.number}"

    @property
    def is_published(self) -> bool:
        return self.state == self.State.PUBLISHED


class DatasetFile(models.Model):
    class Preview(models.TextChoices):
        PENDING = "pending", "Being computed"
        READY = "ready", "Ready"
        FAILED = "failed", "Cannot preview"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255, help_text="The uploaded file's name (a label).")
    storage_key = models.CharField(max_length=300)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100)
    format = models.CharField(max_length=20)
    preview_state = models.CharField(max_length=20, choices=Preview.choices,
                                     default=Preview.PENDING)
    preview = models.JSONField(null=True, blank=True)
    preview_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="unique_file_name"),
            models.UniqueConstraint(fields=["version", "sha256"], name="unique_file_content"),
        ]

    def __str__(self) -> str:
        return self.name


class Upload(models.Model):
    """A resumable upload: chunks land in a scratch file until the whole file is checked."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE,
                                related_name="uploads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="uploads")
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True,
                              help_text="Declared by the client; checked at the end.")
    received = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.received}/{self.size})"
