"""Thin Celery tasks: ids in, a service call, retries here."""

from __future__ import annotations

from celery import shared_task

from erumlab.zoo import services


@shared_task(name="erumlab.zoo.convert", acks_late=True, autoretry_for=(OSError,),
             retry_backoff=True, max_retries=3)
def convert(conversion_id: str) -> str:
    return services.conversion_run(conversion_id=conversion_id).state


@shared_task(name="erumlab.zoo.try", acks_late=True, autoretry_for=(OSError,),
             retry_backoff=True, max_retries=3)
def try_model(run_id: str) -> str:
    return services.try_run_execute(run_id=run_id).state
