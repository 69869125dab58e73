from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from erumlab.sessions import services
from erumlab.sessions.hub import HubClient, HubUnavailable, SpawnFailed
from erumlab.sessions.models import Grant, WaitingStart

# Where the browser goes once the server is ready, if not JupyterLab's start page:
# set by pages that start the server on the user's behalf (a portal path only).
AFTER_START = "sessions_after_start"


def start_for(request: HttpRequest, *, then: str) -> str:
    """Start the user's server with their default profile, then continue at ``then``.

    Returns where to send the browser: ``then`` if the server is up already,
    else the Notebooks page, which follows the start and goes on to ``then``
    (with the reason as a message when it cannot start).
    """
    if not then.startswith("/") or then.startswith("//"):
        raise ValueError("then must be a path on the portal")
    from django.urls import reverse

    try:
        profile = services.session_check(user=request.user)
        answer = HubClient.from_settings().start_server(request.user.username,
                                                        profile=profile.slug)
    except (services.SessionRefused, SpawnFailed, HubUnavailable) as exc:
        messages.error(request, f"Could not start your notebook server: {exc}")
        return reverse("sessions:notebooks")
    if answer == "started":
        return then
    request.session[AFTER_START] = then
    messages.info(request, f"Starting your notebook server ({profile.name}); you will be "
                           f"taken on once it is ready.")
    return reverse("sessions:notebooks")


def _status_context(request: HttpRequest, *, was_starting: bool = False) -> dict:
    try:
        hub = HubClient.from_settings()
        status = hub.server_status(request.user.username)
        # While starting: the newest progress event. Right after a start that ended
        # without a server: the hub's failure event, which says why.
        wants_progress = status.state == "starting" or (was_starting and not status.running)
        progress = hub.progress(request.user.username) if wants_progress else None
        error = ""
    except HubUnavailable as exc:
        status, progress, error = None, None, str(exc)
    grant = (Grant.objects.filter(user=request.user, server="", ended_at__isnull=True)
             .select_related("profile").first())
    waiting = (WaitingStart.objects.filter(user=request.user, server="")
               .select_related("profile").first())
    return {
        "waiting": waiting,
        "position": services.waiting_position(waiting) if waiting else None,
        "status": status,
        "progress": progress,
        "grant": grant,
        "hub_error": error,
        "open_url": f"{settings.ERUMLAB_HUB_URL}/hub/spawn",
        "lab_url": f"{settings.ERUMLAB_HUB_URL}/user/{request.user.username}/lab",
    }


@login_required
def notebooks(request: HttpRequest) -> HttpResponse:
    context = _status_context(request)
    quota = services.quota_for(request.user)
    # GPU profiles only where the site has GPUs (profiles_for) and the quota allows them.
    context.update(profiles=[p for p in services.profiles_for(request.user)
                             if p.gpus <= quota.max_gpus],
                   quota=quota,
                   gpu_refused=request.session.get("sessions_gpu_refused", ""))
    return render(request, "sessions/notebooks.html", context)


@login_required
def status(request: HttpRequest) -> HttpResponse:
    """The status card alone, polled by htmx; lands the user in JupyterLab once ready."""
    was_starting = request.GET.get("starting") == "1"
    context = _status_context(request, was_starting=was_starting)
    response = render(request, "sessions/_status.html", context)
    if was_starting and context["status"] is not None and context["status"].running:
        # A page that started the server for something (open a lecture) continues there.
        # Kept, not popped: a poll already in flight gets the same answer, so a second
        # redirect cannot cut the first one short. A start from this page clears it.
        response["HX-Redirect"] = request.session.get(AFTER_START) or context["lab_url"]
    return response


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    request.session.pop(AFTER_START, None)  # a start from here lands in JupyterLab
    try:
        profile = services.session_check(user=request.user,
                                         profile_slug=request.POST.get("profile", ""))
        HubClient.from_settings().start_server(request.user.username, profile=profile.slug)
    except services.SessionRefused as refused:
        messages.error(request, str(refused))
    except SpawnFailed as exc:
        messages.error(request, f"Could not start your server: {exc}")
        if profile.gpus:  # offer the line, or a CPU session, instead of a dead end
            request.session["sessions_gpu_refused"] = profile.slug
    except HubUnavailable as exc:
        messages.error(request, f"Could not start your server: {exc}")
    else:
        request.session.pop("sessions_gpu_refused", None)
        messages.success(request, f"Starting your server ({profile.name}).")
    return redirect("sessions:notebooks")


@login_required
@require_POST
def wait(request: HttpRequest) -> HttpResponse:
    """Join the line for a GPU profile: the server starts as soon as GPUs free up."""
    request.session.pop(AFTER_START, None)
    try:
        entry = services.session_wait(user=request.user,
                                      profile_slug=request.POST.get("profile", ""))
    except services.SessionRefused as refused:
        messages.error(request, str(refused))
    else:
        request.session.pop("sessions_gpu_refused", None)
        messages.success(request, f"You are in line for {entry.profile.name}; your server "
                                  f"starts when a GPU is free. You may leave this page.")
    return redirect("sessions:notebooks")


@login_required
@require_POST
def leave_line(request: HttpRequest) -> HttpResponse:
    if services.session_leave_line(user=request.user):
        messages.success(request, "You left the line.")
    return redirect("sessions:notebooks")


@login_required
@require_POST
def stop(request: HttpRequest) -> HttpResponse:
    # Always the caller's own server: the username comes from the session, never the form.
    try:
        HubClient.from_settings().stop_server(request.user.username)
    except HubUnavailable as exc:
        messages.error(request, f"Could not stop your server: {exc}")
    else:
        messages.success(request, "Your notebook server is stopping.")
    return redirect("sessions:notebooks")


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    """Administrators: every server, and who holds which GPU."""
    try:
        servers, error = HubClient.from_settings().active_servers(), ""
    except HubUnavailable as exc:
        servers, error = [], str(exc)
    grants = {(g.user.username, g.server): g for g in Grant.objects.filter(
        ended_at__isnull=True).select_related("user", "profile")}
    for server in servers:
        server["grant"] = grants.get((server["user"], server["server"]))
    holders: dict[str, list[Grant]] = defaultdict(list)
    for grant in grants.values():
        for device in grant.gpus:
            holders[device].append(grant)
    gpus = [{"id": device, "holders": holders.pop(device, [])}
            for device in services.site_gpu_ids()]
    gpus += [{"id": device, "holders": held, "unknown": True} for device, held in holders.items()]
    waiting = WaitingStart.objects.select_related("user", "profile")
    return render(request, "sessions/overview.html",
                  {"servers": servers, "gpus": gpus, "waiting": waiting, "hub_error": error})


@staff_member_required
@require_POST
def stop_any(request: HttpRequest) -> HttpResponse:
    username = request.POST.get("user", "").strip()
    if not username:
        messages.error(request, "Name the user whose server to stop.")
        return redirect("sessions:overview")
    try:
        HubClient.from_settings().stop_server(username)
    except HubUnavailable as exc:
        messages.error(request, f"Could not stop {username}'s server: {exc}")
    else:
        messages.success(request, f"{username}'s server is stopping.")
    return redirect("sessions:overview")
