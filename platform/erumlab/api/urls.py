from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from erumlab.api import views
from erumlab.catalogue.api import DatasetViewSet, UploadViewSet
from erumlab.courses.api import SubmissionViewSet
from erumlab.jobs.api import JobViewSet, TemplateViewSet
from erumlab.sessions import api as sessions
from erumlab.zoo.api import ConversionViewSet, ModelViewSet, TryRunViewSet

router = DefaultRouter()
router.register("tokens", views.ApiTokenViewSet, basename="token")
router.register("collaborations", views.CollaborationViewSet, basename="collaboration")
router.register("templates", TemplateViewSet, basename="template")
router.register("jobs", JobViewSet, basename="job")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("uploads", UploadViewSet, basename="upload")
router.register("models", ModelViewSet, basename="model")
router.register("conversions", ConversionViewSet, basename="conversion")
router.register("try-runs", TryRunViewSet, basename="try-run")
router.register("course-submissions", SubmissionViewSet, basename="course-submission")

app_name = "api"

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/me/", views.MeView.as_view(), name="me"),
    path("v1/worker-ping/", views.worker_ping, name="worker_ping"),
    # JupyterHub's calls, with its service token.
    path("v1/hub/sessions/authorize/", sessions.AuthorizeView.as_view(), name="hub_authorize"),
    path("v1/hub/sessions/started/", sessions.StartedView.as_view(), name="hub_started"),
    path("v1/hub/sessions/ended/", sessions.EndedView.as_view(), name="hub_ended"),
    path("v1/hub/profiles/<str:username>/", sessions.ProfilesView.as_view(),
         name="hub_profiles"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
