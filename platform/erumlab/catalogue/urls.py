from django.urls import path

from erumlab.catalogue import views

app_name = "catalogue"

version = "<slug:slug>/v<int:number>/"
file = version + "files/<uuid:file_id>/"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_create, name="create"),
    path("pid/<path:identifier>", views.resolve_identifier, name="resolve"),
    path("<slug:slug>/", views.dataset_detail, name="dataset"),
    path("<slug:slug>/new-version/", views.version_new, name="version_new"),
    path(version, views.dataset_detail, name="version"),
    path(version + "edit/", views.version_edit, name="version_edit"),
    path(version + "publish/", views.version_publish, name="version_publish"),
    path(version + "datacite.json", views.datacite_json, name="datacite"),
    path(version + "citation.bib", views.bibtex_file, name="bibtex"),
    path(file, views.file_detail, name="file"),
    path(file + "preview/", views.file_preview_fragment, name="file_preview"),
    path(file + "histogram.png", views.file_histogram, name="file_histogram"),
    path(file + "download", views.file_download, name="file_download"),
    path(file + "image", views.file_raw_image, name="file_image"),
    path(file + "remove/", views.file_remove, name="file_remove"),
]
