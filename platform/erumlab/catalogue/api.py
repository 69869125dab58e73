"""REST API for the catalogue (mounted under /api/v1/ by erumlab.api)."""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FileUploadParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from erumlab.accounts.selectors import collaborations_of
from erumlab.catalogue import metadata, selectors, services
from erumlab.catalogue.models import Dataset, DatasetFile, DatasetVersion, Upload
from erumlab.core.downloads import file_response
from erumlab.core.errors import as_api_error


def _job_of(request: Request):  # noqa: ANN202
    """The batch job whose token made this request (lineage), if any."""
    from erumlab.jobs.selectors import job_for_token

    return job_for_token(request.auth)


class ReadAnonymously(BasePermission):
    """Public datasets can be read without an account; everything else needs one."""

    def has_permission(self, request: Request, view) -> bool:  # noqa: ANN001
        return request.method in SAFE_METHODS or bool(request.user and
                                                      request.user.is_authenticated)


class OwnCollaborationMixin:
    """For viewsets that take a ``collaboration_slug``: it must name one of the caller's."""

    def _collaboration(self, slug: str):  # noqa: ANN202
        if not slug:
            return None
        found = collaborations_of(self.request.user).filter(slug=slug).first()
        if found is None:
            raise ValidationError({"collaboration_slug": "Not one of your collaborations."})
        return found


class FileSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetFile
        fields = ("id", "name", "size", "sha256", "media_type", "format", "preview_state",
                  "preview_error", "storage_key")


class FileDetailSerializer(FileSerializer):
    class Meta(FileSerializer.Meta):
        fields = (*FileSerializer.Meta.fields, "preview")


class VersionSerializer(serializers.ModelSerializer):
    files = FileSerializer(many=True, read_only=True)
    produced_by = serializers.PrimaryKeyRelatedField(read_only=True)
    derived_from = serializers.SlugRelatedField(slug_field="identifier", many=True,
                                                read_only=True)

    class Meta:
        model = DatasetVersion
        fields = ("number", "state", "changelog", "creators", "identifier", "citation",
                  "created_at", "published_at", "produced_by", "derived_from", "files")
        read_only_fields = fields


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    collaboration = serializers.SlugRelatedField(
        slug_field="slug", read_only=True)
    collaboration_slug = serializers.SlugField(write_only=True, required=False,
                                               allow_blank=True)
    creators = serializers.ListField(child=serializers.DictField(), write_only=True,
                                     required=False)
    keywords = serializers.ListField(child=serializers.CharField(max_length=50),
                                     required=False, max_length=30)

    class Meta:
        model = Dataset
        fields = ("slug", "title", "description", "owner", "collaboration",
                  "collaboration_slug", "visibility", "experiment", "data_level", "licence",
                  "keywords", "created_at", "updated_at", "creators")
        read_only_fields = ("owner", "created_at", "updated_at")
        extra_kwargs = {"slug": {"required": False, "validators": []}}


class VersionUpdateSerializer(serializers.Serializer):
    changelog = serializers.CharField(required=False, allow_blank=True)
    creators = serializers.ListField(child=serializers.DictField(), required=False)
    derived_from = serializers.ListField(child=serializers.CharField(), required=False,
                                         help_text="identifiers of published source versions")


class UploadSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugField(write_only=True)
    version = serializers.IntegerField(write_only=True)

    class Meta:
        model = Upload
        fields = ("id", "dataset", "version", "name", "size", "sha256", "received")
        read_only_fields = ("id", "received")


@extend_schema(parameters=[OpenApiParameter("q", str, description="full-text search"),
                           *[OpenApiParameter(f, str) for f in selectors.FACETS]])
class DatasetViewSet(OwnCollaborationMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Datasets you may see; public ones also without an account."""

    serializer_class = DatasetSerializer
    queryset = Dataset.objects.none()
    lookup_field = "slug"
    permission_classes = [ReadAnonymously]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):  # noqa: ANN201
        datasets = selectors.datasets_visible_to(self.request.user)
        if self.action == "list":
            params = {k: self.request.query_params.get(k, "") for k in selectors.FACETS}
            datasets = selectors.datasets_filtered(datasets, params)
            datasets = selectors.datasets_search(datasets, self.request.query_params.get("q", ""))
        return datasets

    def perform_create(self, serializer: DatasetSerializer) -> None:
        data = dict(serializer.validated_data)
        collaboration = self._collaboration(data.pop("collaboration_slug", ""))
        try:
            serializer.instance = services.dataset_create(
                owner=self.request.user, collaboration=collaboration,
                produced_by=_job_of(self.request), **data)
        except DjangoValidationError as error:
            raise as_api_error(error) from error

    def perform_update(self, serializer: DatasetSerializer) -> None:
        data = dict(serializer.validated_data)
        data.pop("slug", None)
        data.pop("creators", None)
        if "collaboration_slug" in data:
            data["collaboration"] = self._collaboration(data.pop("collaboration_slug"))
        try:
            serializer.instance = services.dataset_update(
                dataset=serializer.instance, actor=self.request.user, **data)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error

    @extend_schema(responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, slug: str | None = None) -> Response:
        dataset = self.get_object()
        versions = selectors.versions_visible_to(request.user, dataset).prefetch_related("files")
        return Response(VersionSerializer(versions, many=True).data)

    def _version(self, number: str) -> DatasetVersion:
        return get_object_or_404(selectors.versions_visible_to(self.request.user,
                                                               self.get_object()),
                                 number=int(number))

    @extend_schema(methods=["GET"], responses=VersionSerializer)
    @extend_schema(methods=["PATCH"], request=VersionUpdateSerializer, responses=VersionSerializer)
    @action(detail=True, methods=["get", "patch"], url_path=r"versions/(?P<number>\d+)")
    def version(self, request: Request, slug: str | None = None,
                number: str | None = None) -> Response:
        version = self._version(number)
        if request.method == "PATCH":
            body = VersionUpdateSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            sources = None
            if "derived_from" in body.validated_data:
                sources = list(DatasetVersion.objects.filter(
                    identifier__in=body.validated_data["derived_from"],
                    dataset__in=selectors.datasets_visible_to(request.user)))
                if len(sources) != len(set(body.validated_data["derived_from"])):
                    raise ValidationError({"derived_from": "Unknown or invisible identifier."})
            try:
                version = services.version_update(
                    version=version, actor=request.user,
                    changelog=body.validated_data.get("changelog"),
                    creators=body.validated_data.get("creators"), derived_from=sources)
            except DjangoPermissionDenied as error:
                raise PermissionDenied(str(error)) from error
            except DjangoValidationError as error:
                raise as_api_error(error) from error
        return Response(VersionSerializer(version).data)

    @extend_schema(request=None, responses={201: VersionSerializer})
    @action(detail=True, methods=["post"], url_path="versions/new")
    def new_version(self, request: Request, slug: str | None = None) -> Response:
        try:
            draft = services.version_new_draft(dataset=self.get_object(), actor=request.user,
                                               produced_by=_job_of(request))
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(VersionSerializer(draft).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=VersionSerializer)
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>\d+)/publish")
    def publish(self, request: Request, slug: str | None = None,
                number: str | None = None) -> Response:
        try:
            version = services.version_publish(version=self._version(number), actor=request.user)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(VersionSerializer(version).data)

    @extend_schema(responses=dict)
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>\d+)/datacite")
    def datacite(self, request: Request, slug: str | None = None,
                 number: str | None = None) -> Response:
        version = self._version(number)
        if not version.is_published:
            raise ValidationError({"detail": "Drafts have no DataCite record."})
        return Response({"data": {"type": "dois", "attributes": metadata.datacite(version)}})

    @extend_schema(responses=FileDetailSerializer)
    @action(detail=True, methods=["get"],
            url_path=r"versions/(?P<number>\d+)/files/(?P<file_id>[0-9a-f-]{36})")
    def file(self, request: Request, slug: str | None = None, number: str | None = None,
             file_id: str | None = None) -> Response:
        record = get_object_or_404(self._version(number).files, pk=file_id)
        return Response(FileDetailSerializer(record).data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"],
            url_path=r"versions/(?P<number>\d+)/files/(?P<file_id>[0-9a-f-]{36})/download")
    def download(self, request: Request, slug: str | None = None, number: str | None = None,
                 file_id: str | None = None):  # noqa: ANN201
        record = get_object_or_404(self._version(number).files, pk=file_id)
        return file_response(request, record)

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "sha256": {"type": "string"}}}},
        responses={201: FileSerializer})
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>\d+)/files",
            parser_classes=[MultiPartParser])
    def add_file(self, request: Request, slug: str | None = None,
                 number: str | None = None) -> Response:
        """Add a whole file in one request (small files; use uploads/ for large ones)."""
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "Send the file as multipart field 'file'."})
        try:
            record = services.file_add(version=self._version(number), actor=request.user,
                                       name=upload.name, content=upload, size=upload.size,
                                       sha256=request.data.get("sha256", ""))
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(FileSerializer(record).data, status=status.HTTP_201_CREATED)


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class UploadViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin,
                    mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Resumable uploads: create, PUT chunks with Content-Range, GET to resume, complete."""

    serializer_class = UploadSerializer
    queryset = Upload.objects.none()
    parser_classes = [JSONParser, FileUploadParser]

    def get_queryset(self):  # noqa: ANN201
        return Upload.objects.filter(user=self.request.user)

    def perform_create(self, serializer: UploadSerializer) -> None:
        data = serializer.validated_data
        dataset = get_object_or_404(selectors.datasets_visible_to(self.request.user),
                                    slug=data["dataset"])
        version = get_object_or_404(dataset.versions, number=data["version"])
        try:
            serializer.instance = services.upload_start(
                version=version, actor=self.request.user, name=data["name"], size=data["size"],
                sha256=data.get("sha256", ""))
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise as_api_error(error) from error

    @extend_schema(request={"application/octet-stream": {"type": "string", "format": "binary"}},
                   responses=UploadSerializer)
    def update(self, request: Request, pk: str | None = None) -> Response:
        upload = self.get_object()
        match = _CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
        if not match:
            raise ValidationError({"Content-Range": "Send 'bytes FIRST-LAST/TOTAL'."})
        first, last, total = (int(g) for g in match.groups())
        if total != upload.size or last < first:
            raise ValidationError({"Content-Range": f"The total must be {upload.size}."})
        try:
            upload = services.upload_append(upload=upload, actor=request.user, offset=first,
                                            chunk=request.stream, length=last - first + 1)
        except services.OffsetMismatch as mismatch:
            return Response({"detail": str(mismatch.message), "received": mismatch.expected},
                            status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(UploadSerializer(upload).data)

    @extend_schema(request=None, responses={201: FileSerializer})
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        try:
            record = services.upload_complete(upload=self.get_object(), actor=request.user)
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        return Response(FileSerializer(record).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Upload) -> None:
        services.upload_cancel(upload=instance, actor=self.request.user)
