"""Writes for accounts: sign-up, collaborations, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from erumlab.accounts.models import ApiToken, Collaboration, Membership, User

ADMIN_GROUP = "erumlab-admins"


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


@transaction.atomic
def user_sign_up(*, username: str, email: str, password: str, first_name: str = "",
                 last_name: str = "") -> User:
    user = User(username=username, email=email.lower(), first_name=first_name,
                last_name=last_name)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


def api_token_issue(*, user: User, name: str, lifetime: timedelta | None = None) -> IssuedToken:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. 'laptop'."})
    if lifetime is not None and lifetime <= timedelta(0):
        raise ValidationError({"expires_in_days": "A token's lifetime must be positive."})
    secret = settings.ERUMLAB_API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at: datetime | None = timezone.now() + lifetime if lifetime else None
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=secret[:12],
        digest=token_digest(secret),
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=secret)


def api_token_authenticate(*, secret: str) -> ApiToken | None:
    """The active token whose secret this is, or None. Records when it was used."""
    if not secret.startswith(settings.ERUMLAB_API_TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user")
        .filter(digest=token_digest(secret), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Writing on every request would turn reads into writes; a minute is precise enough.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def api_token_revoke(*, user: User, token_id: int) -> None:
    updated = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        raise ApiToken.DoesNotExist(f"No active token {token_id} of yours.")


@transaction.atomic
def collaboration_create(*, creator: User, name: str, description: str = "",
                         slug: str = "") -> Collaboration:
    collaboration = Collaboration(
        name=name.strip(), slug=slug.strip() or slugify(name)[:60], description=description
    )
    if collaboration.slug == ADMIN_GROUP:
        raise ValidationError({"slug": f"'{ADMIN_GROUP}' is reserved for administrators."})
    collaboration.full_clean()
    collaboration.save()
    Membership.objects.create(
        user=creator, collaboration=collaboration, role=Membership.Role.MAINTAINER
    )
    return collaboration


def _require_maintainer(collaboration: Collaboration, actor: User) -> None:
    if actor.is_superuser:
        return
    if not Membership.objects.filter(
        collaboration=collaboration, user=actor, role=Membership.Role.MAINTAINER
    ).exists():
        raise PermissionDenied("Only maintainers of this collaboration can change its members.")


@transaction.atomic
def membership_add(*, collaboration: Collaboration, actor: User, username: str,
                   role: str = Membership.Role.MEMBER) -> Membership:
    _require_maintainer(collaboration, actor)
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    user = User.objects.filter(username=username.strip().lower(), is_active=True).first()
    if user is None:
        raise ValidationError({"username": f"No active user named {username!r}."})
    membership, created = Membership.objects.get_or_create(
        user=user, collaboration=collaboration, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, collaboration: Collaboration, actor: User, username: str) -> None:
    leaving_self = actor.username == username
    if not leaving_self:
        _require_maintainer(collaboration, actor)
    membership = (
        Membership.objects.select_for_update()
        .filter(collaboration=collaboration, user__username=username)
        .first()
    )
    if membership is None:
        raise ValidationError({"username": f"{username!r} is not a member."})
    if membership.role == Membership.Role.MAINTAINER:
        others = Membership.objects.filter(
            collaboration=collaboration, role=Membership.Role.MAINTAINER
        ).exclude(pk=membership.pk)
        if not others.exists():
            raise ValidationError(
                {"username": "A collaboration needs at least one maintainer: "
                 "make someone else maintainer first."}
            )
    membership.delete()
