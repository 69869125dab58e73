from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    name = "erumlab.catalogue"
    label = "catalogue"
    verbose_name = "Dataset catalogue"
