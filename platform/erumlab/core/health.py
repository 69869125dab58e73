"""Checks of the services the portal depends on, for /healthz and `erumlab up`."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, connection.vendor)
    except DatabaseError as exc:
        return Check("database", False, str(exc))


def check_redis() -> Check:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        return Check("redis", True)
    except (redis.RedisError, OSError) as exc:
        return Check("redis", False, str(exc))


def run_checks() -> list[Check]:
    return [check_database(), check_redis()]
