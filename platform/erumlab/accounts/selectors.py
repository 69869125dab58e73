"""Reads for accounts. Visibility of collaborations is decided here only."""

from __future__ import annotations

from django.db.models import QuerySet

from erumlab.accounts.models import ApiToken, Collaboration, Membership, User
from erumlab.accounts.services import ADMIN_GROUP


def collaborations_visible_to(user: User) -> QuerySet[Collaboration]:
    """Members see their collaborations; administrators see all."""
    if not user.is_authenticated:
        return Collaboration.objects.none()
    if user.is_superuser:
        return Collaboration.objects.all()
    return Collaboration.objects.filter(memberships__user=user).distinct()


def collaborations_of(user: User) -> QuerySet[Collaboration]:
    return Collaboration.objects.filter(memberships__user=user).order_by("name")


def collaboration_role(collaboration: Collaboration, user: User) -> str | None:
    membership = Membership.objects.filter(collaboration=collaboration, user=user).first()
    return membership.role if membership else None


def user_group_names(user: User) -> list[str]:
    """The groups a user belongs to, as JupyterHub sees them (OIDC ``groups`` claim)."""
    names = list(collaborations_of(user).values_list("slug", flat=True))
    if user.is_superuser:
        names.append(ADMIN_GROUP)
    return names


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")
