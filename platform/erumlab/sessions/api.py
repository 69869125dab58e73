"""What the hub asks the portal: may this user start this profile, and what they got.

Authenticated with the hub's service token (the same shared secret the portal
uses to call the hub: ``Authorization: token <ERUMLAB_HUB_API_TOKEN>``).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from erumlab.accounts.models import User
from erumlab.sessions import services


class FromHub(BasePermission):
    message = "Only JupyterHub, with its service token, may call this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        expected = settings.ERUMLAB_HUB_API_TOKEN
        return (scheme.lower() == "token" and bool(secret) and bool(expected)
                and hmac.compare_digest(secret.encode(), expected.encode()))


class HubView(APIView):
    authentication_classes: list = []
    permission_classes = [FromHub]


class ServerSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150)
    server = serializers.CharField(max_length=100, allow_blank=True, default="")


class AuthorizeSerializer(ServerSerializer):
    profile = serializers.SlugField(allow_blank=True, default="")


class StartedSerializer(ServerSerializer):
    gpus = serializers.ListField(child=serializers.CharField(max_length=100), max_length=64)


class EndedSerializer(ServerSerializer):
    reason = serializers.CharField(max_length=200, default="stopped")


ProfileSpec = inline_serializer("ProfileSpec", {
    "slug": serializers.SlugField(), "name": serializers.CharField(),
    "cpus": serializers.FloatField(), "memory_gb": serializers.FloatField(),
    "gpus": serializers.IntegerField(), "gpu_share": serializers.IntegerField()})


class AuthorizeView(HubView):
    """Before a spawn: the profile to apply and the server's API token, or 403 with why."""

    @extend_schema(request=AuthorizeSerializer, responses={200: inline_serializer(
        "SessionAuthorized", {"profile": ProfileSpec, "api_token": serializers.CharField(),
                              "portal_url": serializers.URLField()})})
    def post(self, request: Request) -> Response:
        data = _valid(AuthorizeSerializer, request)
        try:
            authorized = services.session_authorize(
                username=data["user"], server=data["server"], profile_slug=data["profile"])
        except services.SessionRefused as refused:
            return Response({"detail": str(refused)}, status=status.HTTP_403_FORBIDDEN)
        return Response({"profile": authorized.grant.profile.as_spec(),
                         "api_token": authorized.token,
                         "portal_url": settings.ERUMLAB_PORTAL_INTERNAL_URL})


class StartedView(HubView):
    """The GPUs the hub allocated to an authorized server."""

    @extend_schema(request=StartedSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = _valid(StartedSerializer, request)
        services.session_started(username=data["user"], server=data["server"],
                                 gpus=data["gpus"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndedView(HubView):
    """A server stopped or failed to start: its token is revoked."""

    @extend_schema(request=EndedSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = _valid(EndedSerializer, request)
        services.session_ended(username=data["user"], server=data["server"],
                               reason=data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProfilesView(HubView):
    """The profiles a user may start (for the hub's own start form)."""

    @extend_schema(responses={200: ProfileSpec})
    def get(self, request: Request, username: str) -> Response:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            return Response({"detail": f"No active account {username!r}."},
                            status=status.HTTP_404_NOT_FOUND)
        return Response([{**p.as_spec(), "description": p.description}
                         for p in services.profiles_for(user)])


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
