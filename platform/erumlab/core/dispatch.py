"""Reconciling the database with Redis: shared by jobs and course grading.

Both keep the truth in the database: a queued row carries a dispatch token and
the time it was sent, and Redis a marker with the token, set when the message
is sent and deleted when a worker claims the row. A queued row whose marker is
gone (Redis restarted and lost its queues) or that waited unusually long is
sent again with a fresh token; a worker drops any message whose token is stale,
so a resend never runs anything twice. A running row whose worker stopped
beating its heart goes back to the queue (``requeue_stale``); ``reconcile``
does both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone

log = logging.getLogger(__name__)


def resend_lost(model: type[models.Model], *, queued: str, marker: Callable[[Any], str],
                dispatch: Callable[[Any], None], overdue_after: timedelta,
                limit: int = 1000) -> list[str]:
    """Dispatch again the rows in state ``queued`` whose message may be lost; their ids."""
    overdue_before = timezone.now() - overdue_after
    rows = list(model.objects.filter(state=queued).values_list(
        "pk", "dispatch_token", "dispatched_at")[:limit])
    try:
        markers = cache.get_many([marker(pk) for pk, _, _ in rows])
    except Exception:
        log.warning("Redis unreachable: queued %s not checked", model.__name__, exc_info=True)
        return []
    sent = []
    for pk, token, dispatched_at in rows:
        lost = markers.get(marker(pk)) != token
        overdue = dispatched_at is None or dispatched_at < overdue_before
        if not (lost or overdue):
            continue
        with transaction.atomic():
            row = model.objects.select_for_update().get(pk=pk)
            if row.state != queued or row.dispatch_token != token:
                continue  # claimed or re-sent meanwhile
            dispatch(row)
            sent.append(str(pk))
    return sent


def requeue_stale(model: type[models.Model], *, running: str, queued: str,
                  stale_after: timedelta, is_stale: Callable[[Any, datetime], bool],
                  dispatch: Callable[[Any], None],
                  on_requeue: Callable[[Any], None] | None = None) -> list[str]:
    """Rows in state ``running`` whose worker died go back to ``queued`` and are sent again.

    ``is_stale(row, now)`` decides under the row's lock (its heartbeat may
    have moved since the query); ``on_requeue(row)`` may note it (a job's log).
    """
    stale_before = timezone.now() - stale_after
    requeued = []
    for pk in model.objects.filter(state=running, heartbeat_at__lt=stale_before).values_list(
            "pk", flat=True):
        with transaction.atomic():
            row = model.objects.select_for_update().get(pk=pk)
            if row.state != running or not is_stale(row, timezone.now()):
                continue
            row.state = queued
            row.save(update_fields=["state"])
            if on_requeue is not None:
                on_requeue(row)
            dispatch(row)
            requeued.append(str(pk))
    return requeued


@dataclass
class ReconcileReport:
    requeued_lost: list[str] = field(default_factory=list)
    redispatched: list[str] = field(default_factory=list)


def reconcile(model: type[models.Model], *, running: str, queued: str,
              marker: Callable[[Any], str], dispatch: Callable[[Any], None],
              is_stale: Callable[[Any, datetime], bool], stale_after: timedelta,
              overdue_after: timedelta,
              on_requeue: Callable[[Any], None] | None = None) -> ReconcileReport:
    """``requeue_stale`` then ``resend_lost``: what a periodic reconciler runs."""
    return ReconcileReport(
        requeued_lost=requeue_stale(model, running=running, queued=queued,
                                    stale_after=stale_after, is_stale=is_stale,
                                    dispatch=dispatch, on_requeue=on_requeue),
        redispatched=resend_lost(model, queued=queued, marker=marker, dispatch=dispatch,
                                 overdue_after=overdue_after))
