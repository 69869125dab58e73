"""Thin Celery tasks: ids in, a service call, retries here."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from erumlab.jobs import services


@shared_task(bind=True, name="erumlab.jobs.run", acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
def run_job(self, job_id: str, token: str) -> str:  # noqa: ANN001
    decision = services.job_claim(job_id=job_id, token=token, worker=self.request.hostname or "")
    if decision == services.Claim.WAIT:
        # Over the owner's concurrency limit, or a previous run may still be alive:
        # look again later. The job stays queued; nothing is lost.
        raise self.retry(countdown=settings.ERUMLAB_JOB_WAIT_COUNTDOWN)
    if decision == services.Claim.DROP:
        return "dropped"
    return services.job_execute(job_id=job_id).state


@shared_task(name="erumlab.jobs.reconcile", acks_late=False)
def reconcile() -> dict[str, list[str]]:
    report = services.jobs_reconcile()
    return {"requeued_lost": report.requeued_lost, "redispatched": report.redispatched}


@worker_ready.connect
def _reconcile_at_start(sender=None, **kwargs) -> None:  # noqa: ANN001, ANN003
    # A worker that starts after an outage picks up what the outage left behind.
    reconcile.apply_async(queue="default", countdown=1)
