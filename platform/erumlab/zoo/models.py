"""The model zoo: trained networks, their immutable versions, files, metrics, aliases."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from erumlab.core.visibility import Visibility


class Task(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    REGRESSION = "regression", "Regression"
    GENERATION = "generation", "Generation"
    RECONSTRUCTION = "reconstruction", "Reconstruction"
    OTHER = "other", "Other"


class Domain(models.TextChoices):
    JETS = "jets", "Jets"
    CALORIMETER = "calorimeter-showers", "Calorimeter showers"
    TRACKING = "tracking", "Tracking"
    COSMIC_RAYS = "cosmic-rays", "Cosmic rays and air showers"
    NEUTRINOS = "neutrinos", "Neutrinos"
    GRAVITATIONAL_WAVES = "gravitational-waves", "Gravitational waves"
    FIELDS = "field-reconstruction", "Field reconstruction"
    CONDENSED_MATTER = "condensed-matter", "Condensed matter"
    OTHER = "other", "Other"


class Framework(models.TextChoices):
    PYTORCH = "pytorch", "PyTorch"
    ONNX = "onnx", "ONNX"


class Format(models.TextChoices):
    SAFETENSORS = "safetensors", "safetensors + architecture"
    ONNX = "onnx", "ONNX"


MODEL_LICENCES = [
    ("Apache-2.0", "Apache License 2.0"),
    ("MIT", "MIT License"),
    ("BSD-3-Clause", "BSD 3-Clause License"),
    ("CC-BY-4.0", "Creative Commons Attribution 4.0"),
    ("CC0-1.0", "CC0 1.0 (public domain dedication)"),
    ("LicenseRef-collaboration-internal", "Collaboration-internal use only"),
]

name_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]*$",
                                "Lower-case letters, digits and hyphens, starting with a "
                                "letter or digit.")


class Model(models.Model):
    name = models.SlugField(max_length=100, unique=True, validators=[name_validator])
    title = models.CharField(max_length=300)
    summary = models.CharField(max_length=500, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="models")
    collaboration = models.ForeignKey("accounts.Collaboration", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="models")
    visibility = models.CharField(max_length=20, choices=Visibility.choices,
                                  default=Visibility.PRIVATE)
    task = models.CharField(max_length=20, choices=Task.choices, default=Task.CLASSIFICATION)
    domain = models.CharField(max_length=30, choices=Domain.choices, default=Domain.OTHER)
    licence = models.CharField(max_length=60, choices=MODEL_LICENCES, default="Apache-2.0")
    keywords = models.JSONField(default=list, blank=True)
    finetune_template = models.ForeignKey(
        "jobs.Template", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The job template that fine-tunes this model (its `base_model` parameter).")
    search_document = models.TextField(blank=True, editable=False)
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["visibility"]), models.Index(fields=["task"]),
                   models.Index(fields=["domain"])]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """A published, immutable version: files, architecture, signature, card, metrics."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    framework = models.CharField(max_length=20, choices=Framework.choices)
    format = models.CharField(max_length=20, choices=Format.choices)
    architecture = models.CharField(max_length=100, blank=True,
                                    help_text="Registered name in erumlab.science.nn.")
    config = models.JSONField(default=dict, blank=True)
    signature = models.JSONField(default=dict)
    card = models.TextField(blank=True, help_text="Markdown model card.")
    changelog = models.TextField(blank=True)
    parameter_count = models.BigIntegerField(default=0)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="derivatives",
                               help_text="The version this one was fine-tuned from.")
    training_datasets = models.ManyToManyField("catalogue.DatasetVersion", blank=True,
                                               related_name="trained_models")
    produced_by = models.ForeignKey("jobs.Job", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="model_versions")
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    identifier = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"],
                                               name="one_number_per_model")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.number}"

    @property
    def weights(self) -> ModelFile | None:
        return next((f for f in self.files.all() if f.role == ModelFile.Role.WEIGHTS), None)

    @property
    def example_input(self) -> ModelFile | None:
        return next((f for f in self.files.all() if f.role == ModelFile.Role.EXAMPLE), None)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files.all())


class ModelFile(models.Model):
    class Role(models.TextChoices):
        WEIGHTS = "weights", "Weights"
        EXAMPLE = "example-input", "Example input"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="files")
    role = models.CharField(max_length=20, choices=Role.choices)
    name = models.CharField(max_length=255)
    storage_key = models.CharField(max_length=300)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100, default="application/octet-stream")

    class Meta:
        ordering = ["role", "name"]
        constraints = [models.UniqueConstraint(fields=["version", "role"],
                                               name="one_file_per_role")]

    def __str__(self) -> str:
        return self.name


class Metric(models.Model):
    """One figure of merit, optionally with the curve behind it (ROC, profile, ...)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100)
    value = models.FloatField()
    unit = models.CharField(max_length=50, blank=True)
    description = models.CharField(max_length=500, blank=True)
    dataset_version = models.ForeignKey("catalogue.DatasetVersion", null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+",
                                        help_text="The data it was measured on.")
    # {"kind": "roc"|"line"|"histogram", "x": [...], "y": [...], "x_label": .., "y_label": ..}
    curve = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["version", "name"],
                                               name="one_metric_name_per_version")]

    def __str__(self) -> str:
        return f"{self.name}={self.value:g}"


class Alias(models.Model):
    """A movable name for a version (``production``, ``staging``); ``latest`` is implicit."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases")
    name = models.SlugField(max_length=50, validators=[name_validator])
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"],
                                               name="unique_alias_per_model")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.name}"


class AliasMove(models.Model):
    """The history of an alias: who pointed it where, and when."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="alias_moves")
    alias = models.CharField(max_length=50)
    from_number = models.PositiveIntegerField(null=True, blank=True)
    to_number = models.PositiveIntegerField(null=True, blank=True)
    moved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                 on_delete=models.SET_NULL, related_name="+")
    moved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-moved_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.alias}: v{self.from_number} -> v{self.to_number}"


class Conversion(models.Model):
    """A pickle-based upload (.pt/.pth) waiting for a worker to turn it into safetensors."""

    class State(models.TextChoices):
        PENDING = "pending", "Converting"
        DONE = "done", "Published"
        FAILED = "failed", "Refused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="conversions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    original_name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    request = models.JSONField(default=dict, help_text="The rest of the publish request.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True)
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.state})"


class TryRun(models.Model):
    """An inference run on a version's example input, computed by a worker."""

    class State(models.TextChoices):
        PENDING = "pending", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE,
                                related_name="try_runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"try {self.version} ({self.state})"
