from django.urls import path

from erumlab.sessions import views

app_name = "sessions"

urlpatterns = [
    path("", views.notebooks, name="notebooks"),
    path("status/", views.status, name="status"),
    path("start/", views.start, name="start"),
    path("stop/", views.stop, name="stop"),
    path("wait/", views.wait, name="wait"),
    path("wait/leave/", views.leave_line, name="leave_line"),
    path("all/", views.overview, name="overview"),
    path("all/stop/", views.stop_any, name="stop_any"),
]
