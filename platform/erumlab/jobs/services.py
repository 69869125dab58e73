"""Writes for jobs: templates, submission, dispatch, claiming, execution, cancel, reconcile.

The database is the truth. A job's Celery message only says "look at job X
with dispatch token T"; the task claims the job atomically and drops messages
whose token is stale, so redelivered or duplicated messages are harmless and
the reconciler may re-dispatch whenever a message could have been lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import nbformat
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from erumlab.accounts.models import ApiToken, Collaboration, Membership, User
from erumlab.accounts.services import api_token_issue, api_token_revoke
from erumlab.core.dispatch import ReconcileReport, reconcile
from erumlab.jobs import parameters as params
from erumlab.jobs.models import Artifact, Job, Template
from erumlab.jobs.selectors import jobs_manageable_by

log = logging.getLogger(__name__)

QUEUES = ("default", "gpu")
LOG_LIMIT = 1_000_000  # characters of log kept in the database


class Claim:
    RUN = "run"
    WAIT = "wait"
    DROP = "drop"


# Templates -----------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _template_fields(content: str) -> dict[str, Any]:
    try:
        notebook = params.read_notebook(content)
        declared = params.inspect(notebook)
    except params.NotebookError as exc:
        raise ValidationError({"notebook": str(exc)}) from exc
    meta = notebook.metadata.get("erumlab", {})
    queue = meta.get("queue", "default")
    if queue not in QUEUES:
        raise ValidationError({"notebook": f"metadata erumlab.queue must be one of {QUEUES}"})
    limit = meta.get("wall_time_limit")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValidationError({"notebook": "metadata erumlab.wall_time_limit must be seconds > 0"})
    return {
        "notebook": content,
        "content_hash": _sha256(content),
        "parameters": [p.as_dict() for p in declared],
        "title": str(meta.get("title", "")),
        "description": str(meta.get("description", "")),
        "default_queue": queue,
        "wall_time_limit": limit,
    }


@transaction.atomic
def template_save(*, content: str, slug: str, source: str, owner: User | None,
                  title: str = "") -> Template:
    """Create or update a template from notebook content (validated, parameters inspected)."""
    fields = _template_fields(content)
    fields["title"] = title or fields["title"] or slug.replace("-", " ").replace("_", " ").title()
    template = Template.objects.filter(slug=slug, owner=owner).first()
    if template is None:
        template = Template(slug=slug, owner=owner, source=source)
    elif template.content_hash == fields["content_hash"] and template.is_active:
        return template
    for name, value in fields.items():
        setattr(template, name, value)
    template.source = source
    template.is_active = True
    template.updated_at = timezone.now()
    template.full_clean()
    template.save()
    return template


def templates_sync_bundled(*, folder: Path) -> list[Template]:
    """Bring the bundled templates in line with the notebooks in ``folder``."""
    from django.utils.text import slugify

    synced = []
    for path in sorted(folder.glob("*.ipynb")):
        synced.append(
            template_save(content=path.read_text(), slug=slugify(path.stem),
                          source=Template.Source.BUNDLED, owner=None)
        )
    Template.objects.filter(owner__isnull=True).exclude(
        pk__in=[t.pk for t in synced]
    ).update(is_active=False)
    return synced


def template_upload(*, owner: User, filename: str, content: bytes) -> Template:
    from django.utils.text import slugify

    if not filename.endswith(".ipynb"):
        raise ValidationError({"notebook": "Upload a Jupyter notebook (.ipynb)."})
    if len(content) > settings.ERUMLAB_TEMPLATE_MAX_BYTES:
        raise ValidationError(
            {"notebook": f"The notebook is larger than "
                         f"{settings.ERUMLAB_TEMPLATE_MAX_BYTES // 1_000_000} MB."}
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError({"notebook": "The notebook is not UTF-8 text."}) from None
    slug = slugify(Path(filename).stem)[:80] or "notebook"
    return template_save(content=text, slug=slug, source=Template.Source.UPLOADED, owner=owner)


def template_import_from_server(*, owner: User, path: str) -> Template:
    """Make a template of a notebook on the owner's running notebook server."""
    from django.utils.text import slugify

    from erumlab.sessions.hub import HubClient

    try:
        content = HubClient.from_settings().read_notebook(
            user=owner.username, path=path, server_url=settings.ERUMLAB_HUB_PROXY_URL)
    except (ValueError, FileNotFoundError) as exc:
        raise ValidationError({"path": str(exc)}) from exc
    slug = slugify(Path(path).stem)[:80] or "notebook"
    return template_save(content=content, slug=slug, source=Template.Source.SERVER, owner=owner)


# Submission and dispatch ---------------------------------------------------


def _marker(job_id: uuid.UUID | str) -> str:
    return f"jobs:dispatched:{job_id}"


def _send(job_id: str, token: str, queue: str) -> None:
    from erumlab.jobs.tasks import run_job

    try:
        # The marker lives and dies with Redis's data: the reconciler re-dispatches
        # queued jobs whose marker is gone (a Redis restart that lost its queues).
        cache.set(_marker(job_id), token, timeout=None)
        run_job.apply_async(args=[job_id, token], queue=queue, task_id=token)
    except Exception:  # the broker is down: the job stays queued for the reconciler
        log.warning("could not dispatch job %s now; the reconciler will", job_id, exc_info=True)


def _dispatch(job: Job) -> None:
    """Give the job a fresh token and send its message once the transaction commits."""
    token = uuid.uuid4().hex
    job.dispatch_token = token
    job.dispatched_at = timezone.now()
    Job.objects.filter(pk=job.pk).update(dispatch_token=token, dispatched_at=job.dispatched_at)
    job_id, queue = str(job.pk), job.queue
    transaction.on_commit(lambda: _send(job_id, token, queue))


def _wall_time(requested: int | None, template: Template) -> int:
    maximum = settings.ERUMLAB_JOB_MAX_WALL_TIME
    value = requested or template.wall_time_limit or settings.ERUMLAB_JOB_DEFAULT_WALL_TIME
    if value <= 0:
        raise ValidationError({"wall_time_limit": "must be a positive number of seconds"})
    if value > maximum:
        raise ValidationError(
            {"wall_time_limit": f"at most {maximum} s on this site (asked for {value} s)"}
        )
    return value


@transaction.atomic
def job_submit(*, owner: User, template: Template, parameters: dict[str, Any],
               queue: str | None = None, wall_time_limit: int | None = None,
               collaboration: Collaboration | None = None, from_form: bool = False,
               cloned_from: Job | None = None) -> Job:
    """Validate everything, record the job, and queue it once the record is committed."""
    values = params.coerce(template.parameters, parameters, from_form=from_form)
    queue = queue or template.default_queue
    if queue not in QUEUES:
        raise ValidationError({"queue": f"unknown queue {queue!r}; choose one of {QUEUES}"})
    if collaboration is not None and not (
        owner.is_superuser
        or Membership.objects.filter(user=owner, collaboration=collaboration).exists()
    ):
        raise ValidationError({"collaboration": "You can share jobs only with your collaborations."})
    job = Job.objects.create(
        owner=owner,
        collaboration=collaboration,
        template=template,
        template_title=template.title,
        template_hash=template.content_hash,
        input_notebook=template.notebook,
        parameters=values,
        queue=queue,
        wall_time_limit=_wall_time(wall_time_limit, template),
        cloned_from=cloned_from,
    )
    _dispatch(job)
    return job


def job_clone(*, job: Job, actor: User, parameters: dict[str, Any] | None = None,
              from_form: bool = False, **options: Any) -> Job:
    if job.template is None or not job.template.is_active:
        raise ValidationError({"template": "The template of this job no longer exists."})
    return job_submit(
        owner=actor, template=job.template,
        parameters=job.parameters if parameters is None else parameters,
        queue=options.get("queue") or job.queue,
        wall_time_limit=options.get("wall_time_limit") or job.wall_time_limit,
        collaboration=options.get("collaboration", job.collaboration if actor == job.owner
                                  else None),
        from_form=from_form, cloned_from=job,
    )


@transaction.atomic
def job_cancel(*, job: Job, actor: User) -> Job:
    if not jobs_manageable_by(actor).filter(pk=job.pk).exists():
        raise PermissionDenied("Only the owner or an administrator can cancel this job.")
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_terminal:
        raise ValidationError(f"The job has already ended ({job.get_state_display().lower()}).")
    if job.state == Job.State.QUEUED:
        job.state = Job.State.CANCELLED
        job.finished_at = timezone.now()
        job.message = f"Cancelled by {actor.username} before it started."
        job.save(update_fields=["state", "finished_at", "message"])
    else:
        # The worker's watcher sees this within a second and stops the kernel.
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested"])
    return job


@transaction.atomic
def job_requeue(*, job: Job, actor: User) -> Job:
    """Administrators: send a queued job's message again, or take back a job whose worker died."""
    if not actor.is_superuser:
        raise PermissionDenied("Only administrators can requeue jobs.")
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_terminal:
        raise ValidationError("The job has ended; clone it to run it again.")
    if job.state == Job.State.RUNNING and not _is_stale(job, timezone.now()):
        raise ValidationError("The job is running and its worker is alive; cancel it instead.")
    if job.state == Job.State.RUNNING:
        job.state = Job.State.QUEUED
        job.save(update_fields=["state"])
    _append_log(job, f"[erumlab] requeued by {actor.username}\n")
    _dispatch(job)
    return job


# Claiming and running (in the worker) ----------------------------------------


def _is_stale(job: Job, now) -> bool:  # noqa: ANN001
    limit = timedelta(seconds=settings.ERUMLAB_JOB_STALE_AFTER)
    return job.heartbeat_at is None or now - job.heartbeat_at > limit


def job_claim(*, job_id: str, token: str, worker: str) -> str:
    """Decide what a delivered message does: run the job, wait and retry, or drop it."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.dispatch_token != token or job.is_terminal:
            return Claim.DROP
        if job.cancel_requested or job.state == Job.State.CANCELLED:
            _end(job, Job.State.CANCELLED, "Cancelled before it started.")
            return Claim.DROP
        if job.state == Job.State.RUNNING and not _is_stale(job, now):
            return Claim.WAIT  # its worker may still be alive; look again later
        # One owner at a time decides on the limit: lock the owner's row.
        User.objects.select_for_update().filter(pk=job.owner_id).first()
        running = Job.objects.filter(owner_id=job.owner_id, state=Job.State.RUNNING).exclude(
            pk=job.pk
        ).count()
        if running >= settings.ERUMLAB_JOB_MAX_RUNNING_PER_USER:
            return Claim.WAIT
        if job.attempts >= settings.ERUMLAB_JOB_MAX_ATTEMPTS:
            _end(job, Job.State.FAILED,
                 f"The worker running this job was lost {job.attempts} times; giving up.")
            return Claim.DROP
        if job.attempts:
            _append_log(job, f"[erumlab] attempt {job.attempts + 1} on {worker}\n")
        # Stamped now, not when the claim began: waiting for the locks above can take longer
        # than another job of the owner takes to finish and free the slot this one gets.
        started = timezone.now()
        job.state = Job.State.RUNNING
        job.attempts += 1
        job.worker = worker
        job.heartbeat_at = started
        job.started_at = job.started_at or started
        job.cells_done = 0
        job.save(update_fields=["state", "attempts", "worker", "heartbeat_at", "started_at",
                                "cells_done"])
    cache.delete(_marker(job_id))
    return Claim.RUN


def _end(job: Job, state: str, message: str) -> None:
    job.state = state
    job.message = message
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "message", "finished_at"])


def _append_log(job: Job, text: str) -> None:
    job.log = (job.log + text)[-LOG_LIMIT:]
    Job.objects.filter(pk=job.pk).update(log=job.log)


class _JobObserver:
    """Carries papermill's events into the job's row: progress, log and heartbeat.

    Cell events arrive on the executing thread; printed text is buffered and
    written by the watcher thread about once a second, with the heartbeat.
    """

    def __init__(self, job: Job) -> None:
        self.job_id = job.pk
        self.log = job.log
        self.heartbeat = settings.ERUMLAB_JOB_HEARTBEAT_SECONDS
        self._last_beat = 0.0
        self._lock = threading.Lock()
        self._dirty = False

    def _update(self, **fields: Any) -> None:
        Job.objects.filter(pk=self.job_id).update(heartbeat_at=timezone.now(), **fields)

    def _flush_fields(self) -> dict[str, Any]:
        with self._lock:
            if not self._dirty:
                return {}
            self._dirty = False
            return {"log": self.log}

    def stream(self, text: str) -> None:
        with self._lock:
            self.log = (self.log + text)[-LOG_LIMIT:]
            self._dirty = True

    def cell_started(self, index: int, total: int, description: str) -> None:
        self._update(cells_total=total, cells_done=index,
                     current_cell=f"cell {index + 1}: {description}"[:200],
                     **self._flush_fields())

    def cell_finished(self, index: int, total: int) -> None:
        self._update(cells_total=total, cells_done=index + 1, **self._flush_fields())

    def stop_reason(self) -> str | None:
        now = time.monotonic()
        fields = self._flush_fields()
        if fields or now - self._last_beat >= self.heartbeat:
            self._last_beat = now
            self._update(**fields)
        cancel = Job.objects.filter(pk=self.job_id).values_list("cancel_requested", flat=True)
        return "cancelled" if cancel.first() else None

    def close(self) -> None:
        connection.close()  # the watcher thread's own connection


def _kernel_env(job: Job, token: str, home: Path) -> dict[str, str]:
    from erumlab.jobs.execution import base_kernel_env

    env = base_kernel_env(home)
    env.update(
        ERUMLAB_URL=settings.ERUMLAB_PORTAL_INTERNAL_URL,
        ERUMLAB_API_TOKEN=token,
        ERUMLAB_JOB_ID=str(job.pk),
    )
    return env


def job_execute(*, job_id: str) -> Job:
    """Run a claimed job to its end and record the outcome. Never leaves it 'running'."""
    from erumlab.jobs.execution import run_notebook

    job = Job.objects.get(pk=job_id)
    folder = Path(settings.ERUMLAB_JOB_SCRATCH) / str(job.pk)
    shutil.rmtree(folder, ignore_errors=True)  # a previous attempt's leftovers
    workdir, output_path = folder / "work", folder / "output.ipynb"
    issued = api_token_issue(
        user=job.owner, name=f"job {job.short_id}",
        lifetime=timedelta(seconds=job.wall_time_limit + 600),
    )
    Job.objects.filter(pk=job.pk).update(api_token=issued.token)
    try:
        result = run_notebook(
            notebook=nbformat.reads(job.input_notebook, as_version=4),
            parameters=job.parameters,
            workdir=workdir,
            output_path=output_path,
            kernel_env=_kernel_env(job, issued.secret, folder / "home"),
            observer=_JobObserver(job),
            wall_time_limit=job.wall_time_limit,
        )
        return _record_outcome(job, result, workdir, output_path)
    except Exception as exc:
        log.exception("job %s failed inside erumlab", job.pk)
        job.refresh_from_db()
        _end(job, Job.State.FAILED, f"erumlab could not run the job: {type(exc).__name__}: {exc}")
        raise
    finally:
        with contextlib.suppress(ApiToken.DoesNotExist):  # the owner may have revoked it
            api_token_revoke(user=job.owner, token_id=issued.token.pk)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class _Collected:
    files: list[tuple[str, Path, int]] = field(default_factory=list)
    total: int = 0


def _collect_artifacts(workdir: Path) -> _Collected:
    collected = _Collected()
    for root, dirs, files in os.walk(workdir, followlinks=False):
        dirs[:] = [d for d in dirs if d not in (".ipynb_checkpoints", "__pycache__")]
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue  # links could point anywhere on the worker: never collected
            size = path.stat().st_size
            collected.files.append((str(path.relative_to(workdir)), path, size))
            collected.total += size
    collected.files.sort()
    return collected


def _store_file(key: str, path: Path) -> tuple[str, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        handle.seek(0)
        stored = default_storage.save(key, File(handle))
    return stored, digest.hexdigest()


def _record_outcome(job: Job, result, workdir: Path, output_path: Path) -> Job:  # noqa: ANN001
    base = f"jobs/{job.pk}"
    state = {"succeeded": Job.State.SUCCEEDED, "cancelled": Job.State.CANCELLED}.get(
        result.outcome, Job.State.FAILED
    )
    message = result.message
    collected = _collect_artifacts(workdir)
    quota = settings.ERUMLAB_JOB_ARTIFACT_QUOTA_MB * 1_000_000
    stored: list[Artifact] = []
    if collected.total > quota:
        state = Job.State.FAILED
        message = (f"Artifact quota exceeded: the job wrote {collected.total / 1e6:.1f} MB, the "
                   f"limit is {quota / 1e6:.0f} MB; no artifacts were kept.")
    else:
        for name, path, size in collected.files:
            artifact_id = uuid.uuid4()
            key, sha = _store_file(f"{base}/artifacts/{artifact_id}", path)
            media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            stored.append(Artifact(id=artifact_id, job=job, name=name[:500], storage_key=key,
                                   size=size, sha256=sha, media_type=media_type))
    output_key = html_key = ""
    if output_path.exists():
        output_key, _ = _store_file(f"{base}/output.ipynb", output_path)
        try:
            from erumlab.jobs.execution import render_html  # papermill: workers only

            html = render_html(nbformat.read(output_path, as_version=4))
            html_key = default_storage.save(f"{base}/output.html", ContentFile(html.encode()))
        except Exception:  # a notebook that cannot be rendered still has its .ipynb
            log.warning("could not render job %s to HTML", job.pk, exc_info=True)
    with transaction.atomic():
        Artifact.objects.bulk_create(stored)
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.cancel_requested and state != Job.State.SUCCEEDED:
            state = Job.State.CANCELLED
        current.state = state
        current.message = message
        current.error = result.error
        current.finished_at = timezone.now()
        current.wall_seconds = result.wall_seconds
        current.peak_memory_bytes = result.peak_memory_bytes
        current.output_notebook = output_key
        current.output_html = html_key
        if state == Job.State.SUCCEEDED:
            current.cells_done = current.cells_total
            current.current_cell = ""
        current.save()
    return current


# Reconciliation --------------------------------------------------------------


def jobs_reconcile() -> ReconcileReport:
    """Make Redis agree with the database again.

    - a running job whose heartbeat stopped (its worker died) goes back to the queue;
    - a queued job whose dispatch marker vanished from Redis (Redis restarted and
      lost its queues), or that waited unusually long, is dispatched again.
    """
    return reconcile(
        Job, running=Job.State.RUNNING, queued=Job.State.QUEUED, marker=_marker,
        dispatch=_dispatch, is_stale=_is_stale,
        stale_after=timedelta(seconds=settings.ERUMLAB_JOB_STALE_AFTER),
        overdue_after=timedelta(seconds=settings.ERUMLAB_JOB_REDISPATCH_AFTER),
        on_requeue=lambda job: _append_log(
            job, f"[erumlab] worker {job.worker or '?'} lost; job requeued\n"))
