"""Run the platform's processes side by side and stop them all cleanly.

Each child gets its own process group, so Ctrl-C reaches only this
supervisor, which then stops the children in order (hub, worker, web, Redis)
with SIGTERM and, after a grace period, SIGKILL on the whole group: nothing
is left behind, grandchildren included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, *, out: IO[str] | None = None, grace: float = 20.0) -> None:
        self.children: list[Child] = []
        self.out = out or sys.stdout
        self.grace = grace
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:>6} | {line.rstrip()}\n")
            self.out.flush()

    def start(self, child: Child) -> subprocess.Popen:
        process = subprocess.Popen(
            list(child.argv),
            env=dict(child.env) if child.env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
            bufsize=1,
            errors="replace",
        )
        child.process = process
        self.children.append(child)
        threading.Thread(
            target=self._pump, args=(child.name, process.stdout), daemon=True
        ).start()
        return process

    def _pump(self, name: str, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            self.say(name, line)

    def first_exit(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def wait(self, should_stop: Callable[[], bool]) -> Child | None:
        """Block until asked to stop (returns None) or until a child exits (returns it)."""
        while not should_stop():
            exited = self.first_exit()
            if exited is not None:
                return exited
            time.sleep(0.2)
        return None

    def stop_all(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        # Reverse start order: the hub stops user servers, the worker finishes
        # or re-queues its task, then the web server and Redis go.
        for child in reversed(self.children):
            self._stop(child)

    def _stop(self, child: Child) -> None:
        process = child.process
        if process is None:
            return
        if process.poll() is None:
            self.say("erumlab", f"stopping {child.name} (pid {process.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, child.stop_signal)
            try:
                process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.say("erumlab", f"{child.name} did not stop in {self.grace:.0f} s: killing it")
        # Whatever is left in the child's group (pool processes, proxies) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
