"""Thin Celery tasks: ids in, a service call."""

from __future__ import annotations

from celery import shared_task

from erumlab.courses import services


@shared_task(bind=True, name="erumlab.courses.grade", acks_late=True, reject_on_worker_lost=True)
def grade_submission(self, submission_id: str, token: str) -> str:  # noqa: ANN001
    decision = services.submission_claim(submission_id=submission_id, token=token,
                                         worker=self.request.hostname or "")
    if decision == services.Claim.DROP:
        return "dropped"
    return services.submission_grade(submission_id=submission_id).state


@shared_task(name="erumlab.courses.reconcile", acks_late=False)
def reconcile() -> dict[str, list[str]]:
    report = services.submissions_reconcile()
    return {"requeued_lost": report.requeued_lost, "redispatched": report.redispatched}
