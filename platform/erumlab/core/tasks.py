from __future__ import annotations

import os
import platform
import socket

from celery import shared_task
from django.db import connection
from django.utils import timezone


@shared_task(name="erumlab.health", acks_late=False)
def health(echo: str = "") -> dict[str, str | int]:
    """Answers from inside a worker: proves broker, worker and database are wired up."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {
        "echo": echo,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "database": connection.vendor,
        "database_ok": int(one == 1),
        "at": timezone.now().isoformat(),
    }
