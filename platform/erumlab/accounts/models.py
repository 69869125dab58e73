"""Users, collaborations (groups of physicists) and personal API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

orcid_validator = RegexValidator(
    r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$", "An ORCID iD looks like 0000-0002-1825-0097."
)


class User(AbstractUser):
    """A portal user. Usernames double as JupyterHub user names."""

    # Hub user names end up in URLs and folder names: keep them to a safe alphabet.
    username_validator = RegexValidator(
        r"^[a-z0-9][a-z0-9._-]{1,38}$",
        "Use 2-39 lower-case letters, digits, dots, hyphens or underscores, "
        "starting with a letter or digit.",
    )
    username = models.CharField(
        "username",
        max_length=39,
        unique=True,
        validators=[username_validator],
        help_text="2-39 characters: a-z, 0-9, '.', '-', '_'. Also your notebook server's name.",
        error_messages={"unique": "That username is taken."},
    )
    email = models.EmailField("e-mail address", unique=True)
    orcid = models.CharField("ORCID iD", max_length=19, blank=True, validators=[orcid_validator])
    affiliation = models.CharField(max_length=200, blank=True)

    REQUIRED_FIELDS = ["email"]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Collaboration(models.Model):
    """A group of users who share datasets, models and jobs."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(
        max_length=60,
        unique=True,
        help_text="Short name used in URLs and as the JupyterHub group name.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="collaborations"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MAINTAINER = "maintainer", "Maintainer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    collaboration = models.ForeignKey(
        Collaboration, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "collaboration"], name="one_membership_per_user")
        ]
        ordering = ["collaboration__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.collaboration} ({self.role})"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 digest of the secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop'.")
    # The first characters of the token, shown so users can tell tokens apart.
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
