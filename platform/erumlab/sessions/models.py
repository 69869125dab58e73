"""Notebook sessions: the profiles users start servers with, quotas, and what each server got.

The hub asks the portal before every spawn (``services.session_authorize``):
the portal decides whether the user may start this profile now, and issues
the API token the server's erumlab.client uses. The hub allocates GPUs
itself (erumlab_spawners.gpus) and reports them back, so the portal can show
occupancy; when the server stops, the hub says so and the token is revoked.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class Profile(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100, help_text='Shown to users, e.g. "CPU: 2 cores, 4 GB".')
    description = models.CharField(max_length=300, blank=True)
    cpus = models.FloatField(validators=[MinValueValidator(0.1)], default=2,
                             help_text="CPU cores the server may use.")
    memory_gb = models.FloatField(validators=[MinValueValidator(0.25)], default=4,
                                  help_text="Memory limit in GB.")
    gpus = models.PositiveSmallIntegerField(default=0, help_text="GPUs given to the server.")
    gpu_share = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="How many servers of this profile may share one GPU (time-slicing); 1 means "
                  "each server has its GPUs to itself.")
    collaborations = models.ManyToManyField(
        "accounts.Collaboration", blank=True, related_name="session_profiles",
        help_text="Only members of these collaborations may use it; none means everyone.")
    order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "gpus", "slug"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.gpus == 0 and self.gpu_share != 1:
            raise ValidationError({"gpu_share": "Sharing applies to GPU profiles only."})

    def as_spec(self) -> dict:
        """What the hub applies to the server."""
        return {"slug": self.slug, "name": self.name, "cpus": self.cpus,
                "memory_gb": self.memory_gb, "gpus": self.gpus, "gpu_share": self.gpu_share}


class Quota(models.Model):
    """Limits for one user or one collaboration's members (the most generous applies)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="session_quota")
    collaboration = models.OneToOneField("accounts.Collaboration", null=True, blank=True,
                                         on_delete=models.CASCADE, related_name="session_quota")
    max_servers = models.PositiveSmallIntegerField(default=1)
    max_gpus = models.PositiveSmallIntegerField(default=1)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=(models.Q(user__isnull=True) ^ models.Q(collaboration__isnull=True)),
            name="quota_for_user_xor_collaboration")]

    def __str__(self) -> str:
        whom = self.user or self.collaboration
        return f"{whom}: {self.max_servers} servers, {self.max_gpus} GPUs"


class Grant(models.Model):
    """One server start the portal allowed: its profile, token, GPUs and lifetime."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="session_grants")
    server = models.CharField(max_length=100, blank=True, help_text="Empty: the default server.")
    profile = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="grants")
    api_token = models.ForeignKey("accounts.ApiToken", null=True, on_delete=models.SET_NULL,
                                  related_name="+")
    gpus = models.JSONField(default=list, blank=True, help_text="Device ids the hub allocated.")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(
            fields=["user", "server"], condition=models.Q(ended_at__isnull=True),
            name="one_active_grant_per_server")]
        indexes = [models.Index(fields=["ended_at"])]

    def __str__(self) -> str:
        return f"{self.user}/{self.server or 'default'} ({self.profile.slug})"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class WaitingStart(models.Model):
    """A user waiting in line for GPUs: their server starts when enough free up.

    First come, first served per profile; the line moves whenever a server
    stops and at every reconciliation. A start that the portal refuses for
    another reason (quota, profile closed) leaves the line with that reason.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="waiting_starts")
    server = models.CharField(max_length=100, blank=True)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="waiting")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["user", "server"],
                                               name="one_waiting_start_per_server")]

    def __str__(self) -> str:
        return f"{self.user} waits for {self.profile.slug}"
