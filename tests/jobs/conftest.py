from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from django.conf import settings as django_settings
from django.db import connection
from nbformat.v4 import new_code_cell, new_notebook

from erumlab.cli import worker_argv
from erumlab.jobs import services
from erumlab.jobs.models import Job, Template
from erumlab.testing.processes import database_url, running

# Job settings shared by the test process and the workers it starts: short
# heartbeats so lost workers are noticed in seconds, not minutes.
FAST_JOBS = {
    "ERUMLAB_JOB_HEARTBEAT_SECONDS": "1",
    "ERUMLAB_JOB_STALE_AFTER": "3",
    "ERUMLAB_JOB_WAIT_COUNTDOWN": "1",
}


def notebook(*sources: str, parameters: str = "", metadata: dict | None = None) -> str:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if metadata:
        nb.metadata["erumlab"] = metadata
    cells = []
    if parameters:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [new_code_cell(source) for source in sources]
    nb.cells = cells
    return nbformat.writes(nb)


@pytest.fixture
def fast_jobs(settings):
    for name, value in FAST_JOBS.items():
        setattr(settings, name, int(value))
    return settings


@pytest.fixture
def hello(db) -> Template:
    services.templates_sync_bundled(folder=Path(django_settings.ERUMLAB_TEMPLATES_DIR))
    return Template.objects.get(slug="hello", owner__isnull=True)


@pytest.fixture
def slow_template(user) -> Template:
    """Sleeps a little in each of many cells: long enough to interrupt mid-run."""
    sources = [f"import time\ntime.sleep(pause)\nprint('cell {i}')" for i in range(12)]
    return services.template_save(
        content=notebook(*sources, parameters="pause: float = 0.5  # seconds per cell"),
        slug="slow", source=Template.Source.UPLOADED, owner=user,
    )


@pytest.fixture
def start_worker(tmp_path, fast_jobs):
    """Start real Celery workers against the test database; stopped after the test."""
    stack = []

    def start(*, queues: str = "default,gpu", concurrency: str = "1",
              **env_overrides: str):
        env = {**os.environ, **FAST_JOBS,
               "DATABASE_URL": database_url(connection.settings_dict), **env_overrides}
        log = tmp_path / f"worker-{len(stack)}.log"
        context = running(worker_argv(queues=queues, concurrency=concurrency), env=env, log=log)
        process = context.__enter__()
        stack.append((context, process, log))
        return process

    yield start
    for context, _, log in reversed(stack):
        context.__exit__(None, None, None)
        if os.environ.get("ERUMLAB_SHOW_WORKER_LOGS"):
            print(log.read_text()[-5000:])


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def wait_for_state(job: Job, *states: str, timeout: float = 90) -> Job:
    def check():
        job.refresh_from_db()
        return job.state in states

    wait_for(check, timeout=timeout, what=f"job {job.pk} to be {states} (is {job.state})")
    return job

