from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "erumlab.jobs"
    label = "jobs"
    verbose_name = "Batch jobs"
