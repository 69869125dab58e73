from django.apps import AppConfig


class SessionsConfig(AppConfig):
    name = "erumlab.sessions"
    # "sessions" is taken by django.contrib.sessions.
    label = "notebook_sessions"
    verbose_name = "Notebook sessions"
