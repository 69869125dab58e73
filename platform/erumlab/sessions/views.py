from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from erumlab.sessions.hub import HubClient, HubUnavailable


def _status_context(request: HttpRequest) -> dict:
    try:
        status = HubClient.from_settings().server_status(request.user.username)
        error = ""
    except HubUnavailable as exc:
        status, error = None, str(exc)
    return {
        "status": status,
        "hub_error": error,
        "open_url": f"{settings.ERUMLAB_HUB_URL}/hub/spawn",
    }


@login_required
def notebooks(request: HttpRequest) -> HttpResponse:
    return render(request, "sessions/notebooks.html", _status_context(request))


@login_required
def status(request: HttpRequest) -> HttpResponse:
    """The server-status card alone: htmx polls it while a server starts or stops."""
    return render(request, "sessions/_status.html", _status_context(request))


@login_required
@require_POST
def stop(request: HttpRequest) -> HttpResponse:
    try:
        HubClient.from_settings().stop_server(request.user.username)
    except HubUnavailable as exc:
        messages.error(request, f"Could not stop your server: {exc}")
    else:
        messages.success(request, "Your notebook server is stopping.")
    return redirect("sessions:notebooks")
