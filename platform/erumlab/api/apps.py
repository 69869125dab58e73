from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "erumlab.api"
    label = "api"
    verbose_name = "REST API"
