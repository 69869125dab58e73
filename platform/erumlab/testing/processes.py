"""Start real platform processes (worker, hub) from tests, against the test database."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port nobody listens on, never the same one twice in this process.

    The port is chosen below the kernel's ephemeral range: a port from
    ``bind(0)`` is released before its user binds it, and in that gap any
    outgoing connection (to Redis, PostgreSQL, a hub) may take it as its local
    port, or a second ``bind(0)`` may hand out the same number again (a hub's
    proxy once found its API port taken by its own public port this way).
    """
    low, high = 20000, min(_ephemeral_range()[0], 32768) - 1
    if high - low < 1000:  # an unusual range: fall back to the kernel's choice
        low, high = 0, 0
    for _ in range(200):
        candidate = random.randint(low, high) if high else 0  # noqa: S311 (not a secret)
        if candidate in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found in 200 tries")


def database_url(settings_dict: Mapping) -> str:
    """A DATABASE_URL naming the database a connection uses (the test database in tests)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if "postgresql" in engine:
        user = quote(settings_dict.get("USER") or "")
        password = settings_dict.get("PASSWORD")
        auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    raise ValueError(f"No URL form for database engine {engine}")


def wait_for_http(url: str, *, timeout: float, process: subprocess.Popen | None = None,
                  log: Path | None = None, status: int | None = None) -> None:
    """Until ``url`` answers below 500, or with exactly ``status`` when given.

    ``status`` matters behind a proxy that answers 404 before its backend has
    registered its routes (JupyterHub's proxy starts before the hub).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log else ""
            raise RuntimeError(f"process exited ({process.returncode}) before {url} answered:\n"
                               f"{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == status or (status is None and response.status < 500):
                    return
        except urllib.error.HTTPError as error:
            if error.code == status or (status is None and error.code < 500):
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log else ""
    raise TimeoutError(f"{url} did not answer within {timeout} s\n{tail}")


@contextmanager
def running(argv: list[str], *, env: Mapping[str, str], log: Path,
            stop_timeout: float = 30) -> Iterator[subprocess.Popen]:
    """Run a process in its own group for the duration of the block, then stop the group."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process, timeout=stop_timeout)


def stop_group(process: subprocess.Popen, *, timeout: float = 30) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
