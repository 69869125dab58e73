"""Refuse to start twice on one data dir, or on a port that is taken."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class StartRefused(Exception):
    """Start-up cannot go on; the message says why and what to do."""


class DataDirLock:
    """An exclusive, advisory lock on the data dir, held for the life of the process.

    flock() is released by the kernel when the process dies, so a crash never
    leaves a stale lock behind; the pid in the file only serves the message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StartRefused(
                f"erumlab is already running on the data dir {self.path.parent.parent} "
                f"(pid {holder}). Stop it first (Ctrl-C in its terminal), or set "
                f"ERUMLAB_DATA_DIR to another folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class Endpoint:
    role: str  # what would listen there, for the message
    host: str
    port: int
    variable: str  # where to change it


def ensure_ports_free(endpoints: list[Endpoint]) -> None:
    for endpoint in endpoints:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((endpoint.host, endpoint.port))
            except OSError as exc:
                raise StartRefused(
                    f"Port {endpoint.port} on {endpoint.host} is already in use, so the "
                    f"{endpoint.role} cannot start there ({exc.strerror}). Stop what uses it, "
                    f"or choose another port with {endpoint.variable}."
                ) from None
