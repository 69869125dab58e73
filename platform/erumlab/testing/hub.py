"""A real JupyterHub for tests and benches, wired to the portal the settings name.

The portal's settings (ERUMLAB_HUB_URL and friends) must already point at
``url`` when the hub starts: ``hub_environment()`` derives the hub's whole
configuration from them, exactly as ``erumlab hub`` does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from erumlab.testing.processes import free_port, running, wait_for_http


@dataclass
class TestHub:
    """One hub's folder, ports and environment; ``run()`` may be entered again (a restart)."""

    folder: Path
    url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    def __post_init__(self) -> None:
        # Fixed for the hub's lifetime, restarts included: running servers keep
        # talking to the hub's API at the address they were given.
        self.env = {
            "ERUMLAB_HUB_DATA_DIR": str(self.folder / "hub"),
            "ERUMLAB_HUB_HOMES": str(self.folder / "homes"),
            "ERUMLAB_HUB_INTERNAL_PORT": str(free_port()),
            "ERUMLAB_HUB_PROXY_API_PORT": str(free_port()),
            "ERUMLAB_HUB_CULL_IDLE_SECONDS": "0",
            **self.env,
        }

    @property
    def api_url(self) -> str:
        return f"{self.url}/hub/api"

    @property
    def log(self) -> Path:
        return self.folder / f"hub-{self.runs}.log"

    @contextmanager
    def run(self, *, timeout: float = 60) -> Iterator[subprocess.Popen]:
        from erumlab.cli import hub_argv, hub_environment

        self.runs += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**hub_environment(), **self.env}
        with running(hub_argv(), env=env, log=self.log) as process:
            # The proxy answers 404 until the hub has registered its routes.
            wait_for_http(f"{self.api_url}/", timeout=timeout, process=process, log=self.log,
                          status=200)
            yield process

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text()[-chars:] if self.log.exists() else ""
