"""The Celery application: Redis broker, JSON only, queues ``default``, ``gpu`` and ``grading``.

``grading`` is used when ERUMLAB_GRADING_QUEUE names it (a grader worker apart from
the rest, as in docker-compose.yml); by default submissions are graded on ``default``.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erumlab.config.settings")

QUEUES = ("default", "gpu", "grading")


app = Celery("erumlab")
app.config_from_object("django.conf:settings", namespace="CELERY")


app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in QUEUES]
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
app.autodiscover_tasks()
