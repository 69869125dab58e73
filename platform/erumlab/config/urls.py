from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("erumlab.core.urls")),
    path("accounts/", include("erumlab.accounts.urls")),
    path("notebooks/", include("erumlab.sessions.urls")),
    path("jobs/", include("erumlab.jobs.urls")),
    path("datasets/", include("erumlab.catalogue.urls")),
    path("models/", include("erumlab.zoo.urls")),
    path("courses/", include("erumlab.courses.urls")),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/", include("erumlab.api.urls")),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "erumlab administration"
admin.site.site_title = "erumlab"
if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
