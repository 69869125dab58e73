"""The health task goes through the real broker to a real worker process and back."""

from __future__ import annotations

import os
import sys

import pytest
from django.db import connection

from erumlab.cli import worker_argv
from erumlab.core.tasks import health
from erumlab.testing.processes import database_url, running

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_health_task_runs_in_a_worker_process(tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict)}
    argv = worker_argv(queues="default", concurrency="1")
    assert argv[0] == sys.executable
    with running(argv, env=env, log=tmp_path / "worker.log") as worker:
        result = health.apply_async(kwargs={"echo": "ping"}, queue="default").get(timeout=60)
        assert worker.poll() is None
    assert result["echo"] == "ping"
    assert result["database_ok"] == 1
    assert result["database"] == connection.vendor
    # It ran in the worker's process, not here.
    assert result["pid"] != os.getpid()
