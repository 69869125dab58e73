from django.urls import path

from erumlab.sessions import views

app_name = "sessions"

urlpatterns = [
    path("", views.notebooks, name="notebooks"),
    path("status/", views.status, name="status"),
    path("stop/", views.stop, name="stop"),
]
