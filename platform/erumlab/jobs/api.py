"""REST API for jobs and templates (mounted under /api/v1/ by erumlab.api)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from erumlab.accounts.selectors import collaborations_of
from erumlab.core.errors import as_api_error
from erumlab.jobs import selectors, services
from erumlab.jobs.downloads import artifact_response, output_notebook_response
from erumlab.jobs.models import Artifact, Job, Template
from erumlab.jobs.parameters import ParameterError


def _drf_error(error: DjangoValidationError | ParameterError) -> ValidationError:
    if isinstance(error, ParameterError):
        return ValidationError({"parameters": error.errors})
    return as_api_error(error)


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Template
        fields = ("id", "slug", "title", "description", "source", "parameters", "default_queue",
                  "wall_time_limit", "content_hash", "updated_at")


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ("id", "name", "size", "sha256", "media_type")


class ProgressSerializer(serializers.Serializer):
    cells_done = serializers.IntegerField()
    cells_total = serializers.IntegerField()
    percent = serializers.IntegerField()
    current_cell = serializers.CharField()


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    collaboration = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    template = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ("id", "owner", "collaboration", "template", "template_title", "template_hash",
                  "parameters", "queue", "wall_time_limit", "state", "cancel_requested",
                  "attempts", "created_at", "started_at", "finished_at", "progress",
                  "message", "error", "wall_seconds", "peak_memory_bytes", "cloned_from")
        read_only_fields = fields

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, job: Job) -> dict[str, object]:
        return {"cells_done": job.cells_done, "cells_total": job.cells_total,
                "percent": job.progress_percent, "current_cell": job.current_cell}


class JobDetailSerializer(JobSerializer):
    log = serializers.CharField(read_only=True)
    artifacts = ArtifactSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = (*JobSerializer.Meta.fields, "log", "artifacts")
        read_only_fields = fields


class JobSubmitSerializer(serializers.Serializer):
    template = serializers.CharField(help_text="Template slug (yours first, then bundled) or id.")
    parameters = serializers.DictField(required=False, default=dict)
    queue = serializers.ChoiceField(choices=services.QUEUES, required=False)
    wall_time_limit = serializers.IntegerField(min_value=1, required=False)
    collaboration = serializers.SlugField(required=False, help_text="Share with this one.")


class JobCloneSerializer(serializers.Serializer):
    parameters = serializers.DictField(required=False)


class TemplateViewSet(viewsets.ReadOnlyModelViewSet):
    """Notebook templates you can run: bundled ones and your uploads."""

    serializer_class = TemplateSerializer
    queryset = Template.objects.none()

    def get_queryset(self):  # noqa: ANN201
        return selectors.templates_visible_to(self.request.user)


def resolve_template(user, reference: str) -> Template:  # noqa: ANN001
    visible = selectors.templates_visible_to(user)
    if reference.isdigit():
        found = visible.filter(pk=int(reference)).first()
    else:
        found = (visible.filter(slug=reference, owner=user).first()
                 or visible.filter(slug=reference, owner__isnull=True).first())
    if found is None:
        raise ValidationError({"template": f"No template {reference!r} that you can use."})
    return found


@extend_schema(parameters=[
    OpenApiParameter("scope", str, enum=["mine", "collaborations"]),
    OpenApiParameter("state", str, enum=list(Job.State.values)),
    OpenApiParameter("template", str, description="template slug"),
])
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Batch jobs you can see: yours, your collaborations' shared ones (all, for admins)."""

    queryset = Job.objects.none()

    def get_serializer_class(self):  # noqa: ANN201
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    def get_queryset(self):  # noqa: ANN201
        jobs = selectors.jobs_visible_to(self.request.user)
        if self.action == "list":
            params = self.request.query_params
            jobs = selectors.jobs_filtered(jobs, user=self.request.user,
                                           scope=params.get("scope", ""),
                                           state=params.get("state", ""),
                                           template=params.get("template", ""))
        return jobs.prefetch_related("artifacts")

    @extend_schema(request=JobSubmitSerializer, responses={201: JobDetailSerializer})
    def create(self, request: Request) -> Response:
        body = JobSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        template = resolve_template(request.user, data["template"])
        collaboration = None
        if data.get("collaboration"):
            collaboration = collaborations_of(request.user).filter(
                slug=data["collaboration"]).first()
            if collaboration is None:
                raise ValidationError({"collaboration": "Not one of your collaborations."})
        try:
            job = services.job_submit(
                owner=request.user, template=template, parameters=data["parameters"],
                queue=data.get("queue"), wall_time_limit=data.get("wall_time_limit"),
                collaboration=collaboration,
            )
        except (ParameterError, DjangoValidationError) as error:
            raise _drf_error(error) from error
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JobDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        try:
            job = services.job_cancel(job=job, actor=request.user)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(JobDetailSerializer(job).data)

    @extend_schema(request=JobCloneSerializer, responses={201: JobDetailSerializer})
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        body = JobCloneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            clone = services.job_clone(job=job, actor=request.user,
                                       parameters=body.validated_data.get("parameters"))
        except (ParameterError, DjangoValidationError) as error:
            raise _drf_error(error) from error
        return Response(JobDetailSerializer(clone).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path=r"artifacts/(?P<artifact_id>[0-9a-f-]{36})")
    def artifact(self, request: Request, pk: str | None = None,
                 artifact_id: str | None = None) -> FileResponse:
        artifact = self.get_object().artifacts.filter(pk=artifact_id).first()
        if artifact is None:
            raise Http404("No such artifact.")
        return artifact_response(artifact)

    @extend_schema(responses={(200, "application/x-ipynb+json"): bytes})
    @action(detail=True, methods=["get"])
    def output(self, request: Request, pk: str | None = None) -> FileResponse:
        return output_notebook_response(self.get_object())


