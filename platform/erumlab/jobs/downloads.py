"""File responses for a job's outputs, shared by the web views and the API."""

from __future__ import annotations

import posixpath

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from erumlab.jobs.models import Artifact, Job


def artifact_response(artifact: Artifact) -> FileResponse:
    # The stored name is only a label: the bytes come from the generated storage key.
    filename = posixpath.basename(artifact.name.replace("\\", "/")) or "artifact"
    return FileResponse(default_storage.open(artifact.storage_key), as_attachment=True,
                        filename=filename, content_type=artifact.media_type)


def output_notebook_response(job: Job) -> FileResponse:
    if not job.output_notebook:
        raise Http404("This job has no output notebook (yet).")
    return FileResponse(default_storage.open(job.output_notebook), as_attachment=True,
                        filename=f"job-{job.short_id}-output.ipynb",
                        content_type="application/x-ipynb+json")
