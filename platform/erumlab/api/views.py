from __future__ import annotations

from datetime import timedelta

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from kombu.exceptions import OperationalError
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from erumlab.accounts import selectors, services
from erumlab.accounts.models import ApiToken, Collaboration
from erumlab.api.serializers import (
    ApiTokenSerializer,
    CollaborationSerializer,
    IssuedApiTokenSerializer,
    MeSerializer,
)
from erumlab.core.errors import as_api_error
from erumlab.core.tasks import health


class MeView(generics.RetrieveUpdateAPIView):
    """The authenticated user: profile and collaborations."""

    serializer_class = MeSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):  # noqa: ANN201
        return self.request.user


class ApiTokenViewSet(mixins.ListModelMixin, mixins.CreateModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's personal API tokens. Creating returns the secret once."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()  # typed path parameters for the schema

    def get_queryset(self):  # noqa: ANN201
        return selectors.api_tokens_of(self.request.user).filter(revoked_at__isnull=True)

    @extend_schema(responses={201: IssuedApiTokenSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:  # noqa: ANN002, ANN003
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        days = serializer.validated_data.get("expires_in_days")
        try:
            issued = services.api_token_issue(
                user=request.user,
                name=serializer.validated_data["name"],
                lifetime=timedelta(days=days) if days else None,
            )
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        data = IssuedApiTokenSerializer(issued.token).data
        data["token"] = issued.secret
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        services.api_token_revoke(user=self.request.user, token_id=instance.pk)


class CollaborationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Collaborations the caller belongs to (all of them, for administrators)."""

    serializer_class = CollaborationSerializer
    queryset = Collaboration.objects.none()  # typed path parameters for the schema
    lookup_field = "slug"

    def get_queryset(self):  # noqa: ANN201
        return selectors.collaborations_visible_to(self.request.user).prefetch_related(
            "memberships__user"
        )

    def perform_create(self, serializer: CollaborationSerializer) -> None:
        try:
            serializer.instance = services.collaboration_create(
                creator=self.request.user,
                name=serializer.validated_data["name"],
                slug=serializer.validated_data.get("slug", ""),
                description=serializer.validated_data.get("description", ""),
            )
        except DjangoValidationError as error:
            raise as_api_error(error) from error


@extend_schema(
    request=None,
    responses={
        200: inline_serializer(
            "WorkerPing",
            {
                "echo": serializers.CharField(),
                "hostname": serializers.CharField(),
                "pid": serializers.IntegerField(),
                "python": serializers.CharField(),
                "database": serializers.CharField(),
                "database_ok": serializers.IntegerField(),
                "at": serializers.DateTimeField(),
            },
        ),
        503: inline_serializer("WorkerUnavailable", {"detail": serializers.CharField()}),
    },
)
@api_view(["POST"])
@permission_classes([IsAdminUser])
def worker_ping(request: Request) -> Response:
    """Administrators: run the health task on a worker and wait up to 10 s for it."""
    try:
        result = health.apply_async(kwargs={"echo": "api"}, queue="default").get(timeout=10)
    except (CeleryTimeout, OperationalError) as exc:
        return Response({"detail": f"No worker answered: {exc}"}, status=503)
    return Response(result)
