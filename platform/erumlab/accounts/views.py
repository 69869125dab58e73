from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from erumlab.accounts import selectors, services
from erumlab.accounts.forms import (
    ApiTokenForm,
    CollaborationForm,
    MemberForm,
    ProfileForm,
    SignUpForm,
)
from erumlab.accounts.models import ApiToken, Membership
from erumlab.core.errors import add_to_form


def sign_up(request: HttpRequest) -> HttpResponse:
    if not settings.ERUMLAB_ALLOW_SIGNUP:
        raise Http404("Sign-up is closed on this site; ask an administrator for an account.")
    if request.user.is_authenticated:
        return redirect("core:dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_up(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data.get("first_name", ""),
                last_name=form.cleaned_data.get("last_name", ""),
            )
        except ValidationError as error:
            add_to_form(form, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to erumlab, {user.display_name}.")
            return redirect("core:dashboard")
    return render(request, "accounts/sign_up.html", {"form": form})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data.get("expires_in_days")
        try:
            issued = services.api_token_issue(
                user=request.user,
                name=form.cleaned_data["name"],
                lifetime=timedelta(days=days) if days else None,
            )
        except ValidationError as error:
            add_to_form(form, error)
        else:
            form = ApiTokenForm()
    context = {
        "form": form,
        "issued": issued,
        "tokens": selectors.api_tokens_of(request.user),
    }
    return render(request, "accounts/api_tokens.html", context)


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        services.api_token_revoke(user=request.user, token_id=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such active token.") from None
    messages.success(request, "Token revoked.")
    return redirect("accounts:api_tokens")


@login_required
def collaboration_list(request: HttpRequest) -> HttpResponse:
    form = CollaborationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            collaboration = services.collaboration_create(
                creator=request.user,
                name=form.cleaned_data["name"],
                slug=form.cleaned_data.get("slug") or "",
                description=form.cleaned_data.get("description", ""),
            )
        except ValidationError as error:
            add_to_form(form, error)
        else:
            messages.success(request, f"Collaboration {collaboration.name} created.")
            return redirect("accounts:collaboration", slug=collaboration.slug)
    collaborations = selectors.collaborations_visible_to(request.user).prefetch_related(
        "memberships"
    )
    return render(
        request,
        "accounts/collaboration_list.html",
        {"collaborations": collaborations, "form": form},
    )


@login_required
def collaboration_detail(request: HttpRequest, slug: str) -> HttpResponse:
    collaboration = get_object_or_404(
        selectors.collaborations_visible_to(request.user), slug=slug
    )
    role = selectors.collaboration_role(collaboration, request.user)
    can_manage = role == Membership.Role.MAINTAINER or request.user.is_superuser
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only maintainers can add members.")
        if form.is_valid():
            try:
                membership = services.membership_add(
                    collaboration=collaboration,
                    actor=request.user,
                    username=form.cleaned_data["username"],
                    role=form.cleaned_data["role"],
                )
            except ValidationError as error:
                add_to_form(form, error)
            else:
                messages.success(
                    request, f"{membership.user.username} is now {membership.get_role_display()}."
                )
                return redirect("accounts:collaboration", slug=slug)
    memberships = collaboration.memberships.select_related("user")
    return render(
        request,
        "accounts/collaboration_detail.html",
        {
            "collaboration": collaboration,
            "memberships": memberships,
            "role": role,
            "can_manage": can_manage,
            "form": form,
        },
    )


@login_required
@require_POST
def collaboration_member_remove(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    collaboration = get_object_or_404(
        selectors.collaborations_visible_to(request.user), slug=slug
    )
    try:
        services.membership_remove(
            collaboration=collaboration, actor=request.user, username=username
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("accounts:collaboration", slug=slug)
    if username == request.user.username:
        messages.success(request, f"You left {collaboration.name}.")
        return redirect("accounts:collaborations")
    messages.success(request, f"{username} removed from {collaboration.name}.")
    return redirect("accounts:collaboration", slug=slug)
