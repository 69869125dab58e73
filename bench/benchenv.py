"""A throw-away platform for a benchmark run: its own data dir, Redis and database."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def bench_platform(**environment: str) -> Iterator[Path]:
    """Django set up on a temporary data dir, migrated; embedded Redis unless REDIS_URL.

    DATABASE_URL, when set, names the database to use (it is migrated).
    """
    logging.disable(logging.WARNING)
    data_dir = Path(tempfile.mkdtemp(prefix="erumlab-bench-"))
    os.environ.update(ERUMLAB_DATA_DIR=str(data_dir), **environment)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erumlab.config.settings")
    redis = None
    if not os.environ.get("REDIS_URL"):
        from erumlab.config.layout import DataDir
        from erumlab.runtime.redis_server import redis_command, wait_for_redis

        layout = DataDir(data_dir).ensure()
        redis = subprocess.Popen(
            redis_command(socket_path=layout.redis_socket, data_dir=layout.redis_dir),
            stdout=subprocess.DEVNULL)
        wait_for_redis(layout.redis_socket, process=redis)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield data_dir
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait()
