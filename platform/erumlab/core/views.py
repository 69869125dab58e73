from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from erumlab.accounts.selectors import collaborations_of
from erumlab.core.health import run_checks


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("core:dashboard")
    return render(request, "core/home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "core/dashboard.html",
        {"collaborations": collaborations_of(request.user)},
    )


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and `erumlab up`: 200 when database and Redis answer."""
    checks = run_checks()
    ok = all(check.ok for check in checks)
    # Failure details can name hosts and paths: only staff see them.
    show_detail = request.user.is_staff
    body = {
        "status": "ok" if ok else "failing",
        "checks": {
            check.name: "ok" if check.ok else (check.detail if show_detail else "failing")
            for check in checks
        },
    }
    return JsonResponse(body, status=200 if ok else 503)
