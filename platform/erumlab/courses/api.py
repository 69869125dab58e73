"""REST API for course submissions (mounted under /api/v1/ by erumlab.api).

Students submit from their notebook (``Client().submit_exercise(...)``) and
read their results; teachers read their offerings' submissions. The graded
notebook (with hidden tests) is never served here.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from erumlab.core.errors import as_api_error
from erumlab.courses import selectors, services
from erumlab.courses.models import Release, Submission


class SubmissionSerializer(serializers.ModelSerializer):
    student = serializers.CharField(source="student.username", read_only=True)
    lecture = serializers.IntegerField(source="release.lecture.number", read_only=True)
    effective_score = serializers.FloatField(read_only=True)

    class Meta:
        model = Submission
        fields = ("id", "release", "lecture", "student", "attempt", "submitted_at", "due_at",
                  "late", "state", "outcome", "score", "effective_score", "max_score",
                  "results", "tampered", "message", "graded_at")


class SubmitSerializer(serializers.Serializer):
    release = serializers.IntegerField()
    notebook = serializers.CharField(help_text="The notebook's JSON text.", trim_whitespace=False)


class SubmissionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        viewsets.GenericViewSet):
    serializer_class = SubmissionSerializer

    def get_queryset(self):  # noqa: ANN201
        return selectors.submissions_visible_to(self.request.user).prefetch_related("overrides")

    def create(self, request: Request) -> Response:
        data = SubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = Release.objects.select_related("offering", "lecture").filter(
            pk=data.validated_data["release"]).first()
        if release is None or not selectors.releases_visible_to(
                release.offering, request.user).filter(pk=release.pk).exists():
            raise NotFound("No such lecture released to you.")
        try:
            submission = services.submission_create(
                release=release, student=request.user, content=data.validated_data["notebook"],
                source=Submission.Source.API)
        except DjangoValidationError as error:
            raise as_api_error(error) from error
        except DjangoPermissionDenied as denied:
            raise PermissionDenied(str(denied)) from denied
        return Response(SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED)
