"""Thin Celery tasks for notebook sessions."""

from __future__ import annotations

from celery import shared_task

from erumlab.sessions import services
from erumlab.sessions.hub import HubUnavailable


@shared_task(name="erumlab.sessions.reconcile", acks_late=False)
def reconcile() -> dict[str, object]:
    try:
        result = services.sessions_reconcile()
    except HubUnavailable as error:  # nothing is ended while the hub cannot be asked
        return {"hub": str(error)}
    return {"refreshed": result.refreshed, "ended": result.ended, "started": result.started}


@shared_task(name="erumlab.sessions.advance_line", acks_late=False)
def advance_line() -> list[str]:
    return services.waiting_line_advance()
