from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from django.conf import settings as django_settings
from nbformat.v4 import new_code_cell, new_notebook

from erumlab.jobs import services
from erumlab.jobs.models import Job, Template


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

