from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "erumlab.core"
    label = "core"
    verbose_name = "Portal core"
