"""Writes for notebook sessions: the hub's OAuth client, and the grants behind each server.

Profiles and quotas live here; the hub enforces them by asking
``session_authorize`` before every spawn (see models.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_application_model

from erumlab.accounts.models import ApiToken, User
from erumlab.accounts.selectors import collaborations_of
from erumlab.accounts.services import api_token_issue, api_token_revoke
from erumlab.sessions.hub import HubClient, HubUnavailable, SpawnFailed
from erumlab.sessions.models import Grant, Profile, Quota, WaitingStart


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
    # The token lapses on its own unless the reconciler sees the server alive and
    # extends it: a server the portal lost track of cannot keep a working token.
    issued = api_token_issue(user=user, name=f"notebook server {server or 'default'}",
                             lifetime=session_token_lifetime())
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
    return (Grant.objects.select_for_update(of=("self",)).select_related("api_token")
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
        if grant.profile.gpus and WaitingStart.objects.exists():
            _advance_line_soon()  # its GPUs are free now (the hub released them first)
    return grant


def session_token_lifetime() -> timedelta:
    return timedelta(hours=settings.ERUMLAB_SESSION_TOKEN_HOURS)


def _advance_line_soon() -> None:
    from erumlab.sessions.tasks import advance_line

    transaction.on_commit(lambda: advance_line.apply_async(queue="default"))


# The reconciler -----------------------------------------------------------------------


@dataclass
class Reconciled:
    refreshed: int = 0
    ended: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


def sessions_reconcile(*, hub: HubClient | None = None,
                       grace: timedelta = timedelta(minutes=2)) -> Reconciled:
    """Bring the grants in line with the servers the hub runs, and move the GPU line.

    - A server still running gets its token's expiry pushed out again (the
      token the server was given at spawn is "refreshed" without changing it).
    - A grant whose server the hub no longer knows (a hub that crashed, a stop
      the portal never heard of) is ended and its token revoked. Grants
      younger than ``grace`` are left alone: their start may still be on its way.
    - Then whoever waits in line for GPUs gets a start, if the GPUs are free.

    Raises HubUnavailable when the hub cannot be asked: nothing is ended then.
    """
    hub = hub or HubClient.from_settings()
    alive = {(server["user"], server["server"]) for server in hub.active_servers()}
    now = timezone.now()
    result = Reconciled()
    running_tokens = []
    for grant in Grant.objects.filter(ended_at__isnull=True).select_related("user"):
        key = f"{grant.user.username}/{grant.server}"
        if (grant.user.username, grant.server) in alive:
            if grant.api_token_id is not None:
                running_tokens.append(grant.api_token_id)
        elif grant.created_at < now - grace and session_ended(
                username=grant.user.username, server=grant.server,
                reason="the hub no longer runs this server") is not None:
            result.ended.append(key)
    result.refreshed = ApiToken.objects.filter(
        pk__in=running_tokens, revoked_at__isnull=True).update(
        expires_at=now + session_token_lifetime())
    result.started = waiting_line_advance(hub=hub)
    return result


# The line for GPUs --------------------------------------------------------------------


def session_wait(*, user: User, profile_slug: str, server: str = "") -> WaitingStart:
    """Join the line for a GPU profile (or move to another profile, keeping one's place)."""
    profile = session_check(user=user, server=server, profile_slug=profile_slug)
    if not profile.gpus:
        raise SessionRefused(f"{profile.name} needs no GPU: start it right away.")
    entry, _ = WaitingStart.objects.update_or_create(user=user, server=server,
                                                     defaults={"profile": profile})
    _advance_line_soon()  # the GPUs may have freed up since the refusal
    return entry


def session_leave_line(*, user: User, server: str = "") -> bool:
    deleted, _ = WaitingStart.objects.filter(user=user, server=server).delete()
    return bool(deleted)


def waiting_position(entry: WaitingStart) -> int:
    """1 for the head of the line."""
    return WaitingStart.objects.filter(
        Q(created_at__lt=entry.created_at) | Q(created_at=entry.created_at, pk__lt=entry.pk)
    ).count() + 1


_LINE_LOCK = "sessions:gpu-line"


def waiting_line_advance(*, hub: HubClient | None = None) -> list[str]:
    """Start servers for the people in line, first come first served; returns who started.

    The head of the line is never overtaken: when its start fails (GPUs still
    busy), the rest wait too. People who meanwhile started a server some other
    way, or may no longer start this profile, leave the line.
    One advance at a time (a lock in the cache), since stops trigger it too.
    """
    if not cache.add(_LINE_LOCK, "1", timeout=120):
        return []
    hub = hub or HubClient.from_settings()
    started: list[str] = []
    try:
        for entry in WaitingStart.objects.select_related("user", "profile"):
            user = entry.user
            try:
                # A grant means a server running or on its way (a failed start ends
                # its grant before the hub answers): started some other way meanwhile.
                if Grant.objects.filter(user=user, server=entry.server,
                                        ended_at__isnull=True).exists():
                    entry.delete()
                    continue
                session_check(user=user, server=entry.server, profile_slug=entry.profile.slug)
                hub.start_server(user.username, profile=entry.profile.slug)
            except SessionRefused:
                entry.delete()
            except SpawnFailed:
                WaitingStart.objects.filter(pk=entry.pk).update(attempts=entry.attempts + 1)
                break
            except HubUnavailable:
                break
            else:
                entry.delete()
                started.append(user.username)
    finally:
        cache.delete(_LINE_LOCK)
    return started
