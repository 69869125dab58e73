"""The Jupyter server extension that every user's notebook server loads.

A kernel that computes for hours without printing sends no messages, so
Jupyter's own notion of "last activity" stands still, the hub believes the
server idle, and the idle culler would stop it mid-training. Every
``ERUMLAB_BUSY_CHECK_SECONDS`` this extension looks at the kernels' execution
states and, while any is busy, records "now" under a settings key ending in
``_last_activity``, which Jupyter server counts as activity by design; the
hub hears of it through its usual activity reports. An idle server with no
busy kernel is left to the culler.

Loaded by the spawners (``--ServerApp.jpserver_extensions=erumlab.serverext=True``);
it must import neither Django nor the portal (import-linter checks).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

SETTING = "erumlab_busy_kernels_last_activity"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "erumlab.serverext"}]


def busy_kernels(kernel_manager: Any) -> int:
    """How many of the server's kernels are executing right now."""
    return sum(1 for model in kernel_manager.list_kernels()
               if model.get("execution_state") == "busy")


def mark_busy(server_app: Any) -> bool:
    """Record activity now if a kernel is busy; True when it did."""
    if busy_kernels(server_app.kernel_manager):
        server_app.web_app.settings[SETTING] = datetime.now(UTC)
        return True
    return False


def _load_jupyter_server_extension(server_app: Any) -> None:
    from tornado.ioloop import PeriodicCallback

    seconds = float(os.environ.get("ERUMLAB_BUSY_CHECK_SECONDS", "30"))
    if seconds <= 0:
        return
    callback = PeriodicCallback(lambda: mark_busy(server_app), seconds * 1000)
    callback.start()
    server_app.log.info("erumlab: busy kernels count as activity (checked every %g s)", seconds)
