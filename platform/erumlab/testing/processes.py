"""Start real platform processes (worker, hub) from tests, against the test database."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
