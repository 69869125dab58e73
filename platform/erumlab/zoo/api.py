"""REST API for the model zoo (mounted under /api/v1/ by erumlab.api)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from erumlab.catalogue.api import OwnCollaborationMixin, ReadAnonymously
from erumlab.core.downloads import file_response
from erumlab.core.errors import as_api_error
from erumlab.jobs.selectors import job_for_token
from erumlab.zoo import selectors, services
from erumlab.zoo.models import Conversion, Metric, Model, ModelFile, ModelVersion, TryRun


class ModelFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelFile
        fields = ("id", "role", "name", "size", "sha256", "media_type")


class MetricSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(source="dataset_version", slug_field="identifier",
                                           read_only=True)

    class Meta:
        model = Metric
        fields = ("name", "value", "unit", "description", "dataset", "curve")


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    files = ModelFileSerializer(many=True, read_only=True)
    metrics = MetricSerializer(many=True, read_only=True)
    parent = serializers.SlugRelatedField(slug_field="identifier", read_only=True)
    training_datasets = serializers.SlugRelatedField(slug_field="identifier", many=True,
                                                     read_only=True)
    produced_by = serializers.PrimaryKeyRelatedField(read_only=True)
    published_by = serializers.CharField(source="published_by.username", read_only=True)
    aliases = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = ModelVersion
        fields = ("model", "number", "identifier", "framework", "format", "architecture",
                  "config", "signature", "card", "changelog", "parameter_count", "parent",
                  "training_datasets", "produced_by", "published_by", "created_at", "aliases",
                  "files", "metrics")
        read_only_fields = fields


class ModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    collaboration = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    collaboration_slug = serializers.SlugField(write_only=True, required=False,
                                               allow_blank=True)
    keywords = serializers.ListField(child=serializers.CharField(max_length=50),
                                     required=False, max_length=30)
    latest_version = serializers.SerializerMethodField()
    can_edit = serializers.SerializerMethodField(
        help_text="Whether you may publish versions and move aliases.")

    class Meta:
        model = Model
        fields = ("name", "title", "summary", "owner", "collaboration", "collaboration_slug",
                  "visibility", "task", "domain", "licence", "keywords", "created_at",
                  "updated_at", "latest_version", "can_edit")
        read_only_fields = ("owner", "created_at", "updated_at")
        extra_kwargs = {"name": {"required": False, "validators": []}}

    def get_latest_version(self, model: Model) -> int | None:
        return getattr(model, "latest_number", None)

    def get_can_edit(self, model: Model) -> bool:
        request = self.context.get("request")
        return bool(request and services.can_edit(request.user, model))


class ConversionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True,
                                       allow_null=True)

    class Meta:
        model = Conversion
        fields = ("id", "model", "original_name", "state", "error", "version", "created_at")
        read_only_fields = fields


class TryRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TryRun
        fields = ("id", "state", "output", "error", "seconds", "created_at")
        read_only_fields = fields


PUBLISH_HELP = (
    "multipart: `weights` (safetensors, ONNX, or a .pt/.pth state dict converted by a worker), "
    "optional `example_input` (safetensors, one tensor per declared input), and `metadata`, a "
    "JSON object with architecture, config, signature, card, changelog, metrics, datasets "
    "(identifiers of dataset versions), parent (a model version identifier) and aliases.")


def _publication(request: Request, metadata: dict[str, Any]) -> services.Publication:
    from erumlab.catalogue.models import DatasetVersion
    from erumlab.catalogue.selectors import datasets_visible_to

    allowed = {"architecture", "config", "signature", "card", "changelog", "metrics",
               "datasets", "parent", "aliases", "sha256", "example_sha256"}
    unknown = set(metadata) - allowed
    if unknown:
        raise ValidationError({"metadata": f"unknown keys {sorted(unknown)}"})
    identifiers = metadata.get("datasets") or []
    if not isinstance(identifiers, list) or not all(isinstance(i, str) for i in identifiers):
        raise ValidationError({"datasets": "a list of dataset version identifiers"})
    datasets = list(DatasetVersion.objects.filter(
        identifier__in=identifiers, state=DatasetVersion.State.PUBLISHED,
        dataset__in=datasets_visible_to(request.user)))
    missing = sorted(set(identifiers) - {d.identifier for d in datasets})
    if missing:
        raise ValidationError({"datasets": f"unknown or invisible dataset versions: {missing}"})
    parent = None
    if metadata.get("parent"):
        parent = selectors.versions_visible_to(request.user).filter(
            identifier=metadata["parent"]).first()
        if parent is None:
            raise ValidationError({"parent": f"unknown or invisible model version "
                                             f"{metadata['parent']!r}"})
    for key, kind in (("config", dict), ("signature", dict), ("aliases", list)):
        if not isinstance(metadata.get(key, kind()), kind):
            raise ValidationError({key: f"expected a JSON {kind.__name__}"})
    return services.Publication(
        architecture=str(metadata.get("architecture", "")), config=metadata.get("config", {}),
        signature=metadata.get("signature", {}), card=str(metadata.get("card", "")),
        changelog=str(metadata.get("changelog", "")), metrics=metadata.get("metrics") or [],
        training_datasets=datasets, parent=parent, produced_by=job_for_token(request.auth),
        aliases=metadata.get("aliases", []))


@extend_schema(parameters=[OpenApiParameter("q", str, description="full-text search"),
                           *[OpenApiParameter(f, str) for f in selectors.FACETS]])
class ModelViewSet(OwnCollaborationMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Models you may see; public ones also without an account."""

    serializer_class = ModelSerializer
    queryset = Model.objects.none()
    lookup_field = "name"
    permission_classes = [ReadAnonymously]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):  # noqa: ANN201
        models = selectors.with_latest_number(selectors.models_visible_to(self.request.user))
        if self.action == "list":
            params = {k: self.request.query_params.get(k, "") for k in selectors.FACETS}
            models = selectors.models_filtered(models, params)
            models = selectors.models_search(models, self.request.query_params.get("q", ""))
        return models

    def perform_create(self, serializer: ModelSerializer) -> None:
        data = dict(serializer.validated_data)
        collaboration = self._collaboration(data.pop("collaboration_slug", ""))
        try:
            serializer.instance = services.model_create(
                owner=self.request.user, collaboration=collaboration, **data)
        except DjangoValidationError as error:
            raise as_api_error(error) from error

    def perform_update(self, serializer: ModelSerializer) -> None:
        data = dict(serializer.validated_data)
        data.pop("name", None)
        if "collaboration_slug" in data:
            data["collaboration"] = self._collaboration(data.pop("collaboration_slug"))
        try:
            serializer.instance = services.model_update(
                model=serializer.instance, actor=self.request.user, **data)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error

    def _version(self, ref: str) -> ModelVersion:
        """A version by number, or by alias (``latest``, ``production``, ...)."""
        model = self.get_object()
        version = (selectors.version_resolve(model, number=int(ref)) if ref.isdigit()
                   else selectors.version_resolve(model, alias=ref))
        if version is None:
            raise NotFound(f"{model.name} has no version or alias {ref!r}.")
        return version

    @extend_schema(methods=["GET"], responses=ModelVersionSerializer(many=True))
    @extend_schema(methods=["POST"], description=PUBLISH_HELP,
                   request={"multipart/form-data": inline_serializer("Publish", {
                       "weights": serializers.FileField(),
                       "example_input": serializers.FileField(required=False),
                       "metadata": serializers.CharField()})},
                   responses={201: ModelVersionSerializer, 202: ConversionSerializer})
    @action(detail=True, methods=["get", "post"],
            parser_classes=[MultiPartParser, JSONParser])
    def versions(self, request: Request, name: str | None = None) -> Response:
        model = self.get_object()
        if request.method == "GET":
            versions = model.versions.prefetch_related("files", "metrics", "aliases",
                                                       "training_datasets")
            return Response(ModelVersionSerializer(versions, many=True).data)
        upload = request.FILES.get("weights")
        if upload is None:
            raise ValidationError({"weights": "Attach the model file as 'weights'."})
        try:
            metadata = json.loads(request.data.get("metadata") or "{}")
        except json.JSONDecodeError as error:
            raise ValidationError({"metadata": f"not JSON: {error}"}) from None
        if not isinstance(metadata, dict):
            raise ValidationError({"metadata": "expected a JSON object"})
        example = request.FILES.get("example_input")
        try:
            result = services.version_publish(
                model=model, actor=request.user,
                weights=services.Incoming(upload, upload.name, upload.size,
                                          str(metadata.get("sha256", ""))),
                example_input=services.Incoming(example, example.name, example.size,
                                                str(metadata.get("example_sha256", "")))
                if example else None,
                publication=_publication(request, metadata))
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        if isinstance(result, Conversion):
            return Response(ConversionSerializer(result).data, status=status.HTTP_202_ACCEPTED)
        return Response(ModelVersionSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=ModelVersionSerializer)
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<ref>[a-z0-9-]+)")
    def version(self, request: Request, name: str | None = None,
                ref: str | None = None) -> Response:
        return Response(ModelVersionSerializer(self._version(ref)).data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"],
            url_path=r"versions/(?P<ref>[a-z0-9-]+)/files/(?P<file_id>[0-9a-f-]+)/download")
    def download(self, request: Request, name: str | None = None, ref: str | None = None,
                 file_id: str | None = None) -> Any:
        version = self._version(ref)
        record = get_object_or_404(version.files.all(), pk=file_id)
        return file_response(request, record)

    @extend_schema(request=inline_serializer("AliasSet", {
        "name": serializers.CharField(), "version": serializers.IntegerField()}),
        responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"], url_path="aliases")
    def set_alias(self, request: Request, name: str | None = None) -> Response:
        model = self.get_object()
        try:
            alias = services.alias_set(model=model, actor=request.user,
                                       name=str(request.data.get("name", "")),
                                       number=int(request.data.get("version", 0)))
        except (TypeError, ValueError):
            raise ValidationError({"version": "a version number"}) from None
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(ModelVersionSerializer(alias.version).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"aliases/(?P<alias>[a-z0-9-]+)")
    def delete_alias(self, request: Request, name: str | None = None,
                     alias: str | None = None) -> Response:
        try:
            services.alias_delete(model=self.get_object(), actor=request.user, name=alias)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: TryRunSerializer})
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<ref>[a-z0-9-]+)/try")
    def try_it(self, request: Request, name: str | None = None,
               ref: str | None = None) -> Response:
        try:
            run = services.try_run_start(version=self._version(ref), actor=request.user)
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(TryRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ConversionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pickle-based uploads being converted to safetensors: your own."""

    serializer_class = ConversionSerializer
    queryset = Conversion.objects.none()

    def get_queryset(self):  # noqa: ANN201
        return Conversion.objects.filter(user=self.request.user).select_related(
            "model", "version")


class TryRunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Inference runs on example inputs, of models you may see."""

    serializer_class = TryRunSerializer
    queryset = TryRun.objects.none()
    permission_classes = [ReadAnonymously]

    def get_queryset(self):  # noqa: ANN201
        return TryRun.objects.filter(version__in=selectors.versions_visible_to(self.request.user))
