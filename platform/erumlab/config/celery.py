"""The Celery application: Redis broker, JSON only, queues ``default`` and ``gpu``."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erumlab.config.settings")

QUEUES = ("default", "gpu")


app = Celery("erumlab")
app.config_from_object("django.conf:settings", namespace="CELERY")


app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in QUEUES]
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
app.autodiscover_tasks()
