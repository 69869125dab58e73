from __future__ import annotations

from celery import shared_task

from erumlab.catalogue import services


@shared_task(name="erumlab.catalogue.preview", acks_late=True, autoretry_for=(OSError,),
             retry_backoff=True, max_retries=3)
def compute_preview(file_id: str) -> str:
    return services.file_compute_preview(file_id=file_id).preview_state
