"""Resending task messages Redis may have lost: shared by jobs and course grading.

Both keep the truth in the database: a queued row carries a dispatch token and
the time it was sent, and Redis a marker with the token, set when the message
is sent and deleted when a worker claims the row. A queued row whose marker is
gone (Redis restarted and lost its queues) or that waited unusually long is
sent again with a fresh token; a worker drops any message whose token is stale,
so a resend never runs anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
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
