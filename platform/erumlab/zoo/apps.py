from django.apps import AppConfig


class ZooConfig(AppConfig):
    name = "erumlab.zoo"
    label = "zoo"
    verbose_name = "Model zoo"
    default_auto_field = "django.db.models.BigAutoField"
