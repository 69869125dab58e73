from django.urls import path

from erumlab.zoo import views

app_name = "zoo"

version = "<slug:name>/v<int:number>/"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("new/", views.model_create, name="create"),
    path("<slug:name>/", views.model_detail, name="model"),
    path("<slug:name>/publish/", views.version_publish, name="publish"),
    path("<slug:name>/aliases/", views.alias_set, name="alias_set"),
    path(version, views.model_detail, name="version"),
    path(version + "files/<uuid:file_id>/download", views.file_download, name="download"),
    path(version + "metrics/<str:metric>.png", views.metric_plot, name="metric_plot"),
    path(version + "try/", views.try_it, name="try"),
    path(version + "try/<uuid:run_id>/", views.try_run_fragment, name="try_run"),
]
