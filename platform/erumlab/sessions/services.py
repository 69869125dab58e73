"""Writes for notebook sessions: the hub's OAuth client, and the grants behind each server.

Profiles and quotas live here; the hub enforces them by asking
``session_authorize`` before every spawn (see models.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_application_model

from erumlab.accounts.models import User
from erumlab.accounts.selectors import collaborations_of
from erumlab.accounts.services import api_token_issue, api_token_revoke
from erumlab.sessions.models import Grant, Profile, Quota


@transaction.atomic
def hub_client_ensure(*, hub_url: str | None = None):  # noqa: ANN201
    """Create or update the hub's OAuth application so that it matches the settings.

    Idempotent: run at every start, it fixes a changed secret or hub URL. The
    hub is a confidential client with RS256 ID tokens and skips the consent
    screen (the portal and hub are one platform to the user).
    """
    Application = get_application_model()
    redirect_uri = f"{(hub_url or settings.ERUMLAB_HUB_URL).rstrip('/')}/hub/oauth_callback"
    app = Application.objects.filter(client_id=settings.ERUMLAB_HUB_CLIENT_ID).first()
    if app is None:
        app = Application(client_id=settings.ERUMLAB_HUB_CLIENT_ID)
    elif (
        app.redirect_uris == redirect_uri
        and app.algorithm == Application.RS256_ALGORITHM
        # The secret is stored hashed: compare rather than re-hash on every start.
        and check_password(settings.ERUMLAB_HUB_CLIENT_SECRET, app.client_secret)
    ):
        return app
    app.name = "JupyterHub"
    app.client_type = Application.CLIENT_CONFIDENTIAL
    app.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    app.redirect_uris = redirect_uri
    app.algorithm = Application.RS256_ALGORITHM
    app.skip_authorization = True
    app.client_secret = settings.ERUMLAB_HUB_CLIENT_SECRET
    app.hash_client_secret = True
    app.save()
    return app


# Profiles, quotas and grants ----------------------------------------------------------


class SessionRefused(Exception):
    """The user may not start this server now; the message says why, for the user."""


def site_gpu_ids() -> list[str]:
    """The site's GPUs as the hub sees them (ERUMLAB_GPUS, else nvidia-smi; cached)."""
    return list(_site_gpu_ids(settings.ERUMLAB_GPUS))


@functools.lru_cache(maxsize=4)
def _site_gpu_ids(configured: str) -> tuple[str, ...]:
    if configured.strip().lower() == "none":
        return ()
    try:
        from erumlab_spawners.gpus import discover_devices
    except ImportError:  # a portal installed without the hub package sees no GPUs
        return ()
    return tuple(device.id for device in discover_devices(configured or None))


def profiles_for(user: User) -> list[Profile]:
    """Active profiles the user may start; GPU profiles only where the site has GPUs."""
    profiles = Profile.objects.filter(is_active=True).filter(
        Q(collaborations__isnull=True) | Q(collaborations__in=collaborations_of(user))
    ).distinct()
    if not site_gpu_ids():
        profiles = profiles.filter(gpus=0)
    return list(profiles)


@dataclass(frozen=True)
class Limits:
    max_servers: int
    max_gpus: int


def quota_for(user: User) -> Limits:
    """The user's own quota if set, else the most generous of their collaborations',
    else the site's defaults."""
    own = Quota.objects.filter(user=user).first()
    if own is not None:
        return Limits(own.max_servers, own.max_gpus)
    shared = list(Quota.objects.filter(collaboration__in=collaborations_of(user)))
    if shared:
        return Limits(max(q.max_servers for q in shared), max(q.max_gpus for q in shared))
    return Limits(settings.ERUMLAB_SESSION_MAX_SERVERS, settings.ERUMLAB_SESSION_MAX_GPUS)


def _check(user: User, server: str, profile: Profile, active: list[Grant]) -> None:
    others = [g for g in active if g.server != server]
    limits = quota_for(user)
    if len(others) >= limits.max_servers:
        raise SessionRefused(
            f"Your quota allows {limits.max_servers} running server(s) and "
            f"{len(others)} already run{'s' if len(others) == 1 else ''}: stop one first.")
    used = sum(g.profile.gpus for g in others)
    if profile.gpus and used + profile.gpus > limits.max_gpus:
        raise SessionRefused(
            f"{profile.name} needs {profile.gpus} GPU(s); your quota allows {limits.max_gpus} "
            f"and your other servers hold {used}. Stop one, or start a CPU profile.")


def profile_choose(user: User, slug: str) -> Profile:
    allowed = profiles_for(user)
    if not slug:
        if not allowed:
            raise SessionRefused("No notebook profile is open to you; ask an administrator.")
        return allowed[0]
    found = next((p for p in allowed if p.slug == slug), None)
    if found is None:
        raise SessionRefused(f"Profile {slug!r} does not exist or is not open to you "
                             f"(open to you: {', '.join(p.slug for p in allowed) or 'none'}).")
    return found


def session_check(*, user: User, server: str = "", profile_slug: str = "") -> Profile:
    """What the portal checks before asking the hub to start a server (no side effects)."""
    profile = profile_choose(user, profile_slug)
    active = list(user.session_grants.filter(ended_at__isnull=True).select_related("profile"))
    _check(user, server, profile, active)
    return profile


@dataclass(frozen=True)
class Authorized:
    grant: Grant
    token: str


@transaction.atomic
def session_authorize(*, username: str, server: str, profile_slug: str) -> Authorized:
    """The hub asks before a spawn: decide, and issue the server's API token.

    A grant still open for the same server (a hub that lost track of a crashed
    spawn) is ended first, and its token revoked.
    """
    user = User.objects.select_for_update().filter(username=username, is_active=True).first()
    if user is None:
        raise SessionRefused(f"No active erumlab account named {username!r}.")
    profile = profile_choose(user, profile_slug)
    active = list(user.session_grants.filter(ended_at__isnull=True).select_related("profile"))
    _check(user, server, profile, active)
    for stale in (g for g in active if g.server == server):
        _end(stale, "replaced by a new start")
    issued = api_token_issue(user=user, name=f"notebook server {server or 'default'}")
    grant = Grant.objects.create(user=user, server=server, profile=profile,
                                 api_token=issued.token)
    return Authorized(grant=grant, token=issued.secret)


def _end(grant: Grant, reason: str) -> None:
    grant.ended_at = timezone.now()
    grant.end_reason = reason[:200]
    grant.save(update_fields=["ended_at", "end_reason"])
    if grant.api_token is not None and grant.api_token.revoked_at is None:
        api_token_revoke(user=grant.user, token_id=grant.api_token.pk)


def _active_grant(username: str, server: str) -> Grant | None:
    return (Grant.objects.select_for_update().select_related("api_token")
            .filter(user__username=username, server=server, ended_at__isnull=True).first())


@transaction.atomic
def session_started(*, username: str, server: str, gpus: list[str]) -> Grant | None:
    """The hub reports the GPUs it allocated to a server the portal authorized."""
    grant = _active_grant(username, server)
    if grant is not None:
        grant.gpus = [str(g) for g in gpus]
        grant.save(update_fields=["gpus"])
    return grant


@transaction.atomic
def session_ended(*, username: str, server: str, reason: str = "stopped") -> Grant | None:
    """The server stopped (or its spawn failed): end the grant and revoke its token."""
    grant = _active_grant(username, server)
    if grant is not None:
        _end(grant, reason)
    return grant
